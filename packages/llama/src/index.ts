export {
  CheckpointReader,
  INDEX_FILE,
  SINGLE_FILE,
  decodeTensor,
  expectedWeightShapes,
} from './checkpoint';
export { writeFileAtomic, writeFully } from './atomic';
export { type LlamaConfig, type RopeScaling, parseLlamaConfig } from './config';
export { IOError } from './errors';
export {
  type GenerateOptions,
  generate,
  generateFromLogits,
  generateWith,
  sampleToken,
} from './generate';
export {
  type LoadLlamaOptions,
  type LoadedLlama,
  defaultModelDir,
  loadLlama,
  readLlamaFolder,
  readWeights,
  saveWeights,
} from './load';
export {
  type AttentionContext,
  type DecoderLayerWeights,
  type ForwardOptions,
  type KVCache,
  KvCacheStep,
  LlamaModel,
  type LinearFunction,
  type WeightTransform,
  applyRope,
  decoderLayer,
  layerPast,
  rmsNorm,
  rmsNormComposed,
  ropeInverseFrequencies,
  ropeTables,
  rotateHalfMatrix,
  selfAttention,
} from './model';
export {
  DTYPE_BYTES,
  type SafetensorsDtype,
  type SafetensorsBytes,
  SafetensorsFile,
  type TensorEntry,
  type TensorSpec,
  type TensorToWrite,
  writeSafetensors,
  writeSafetensorsStream,
} from './safetensors';
export { type LayerwiseStepOptions, groupVariables, layerwiseStep } from './layerwise';
export {
  MODEL_PRESETS,
  type MakeModelOptions,
  type MakeModelResult,
  type ModelPreset,
  makeRandomLlama,
} from './make';
export { type ShardedWriteResult, writeShardedSafetensors } from './sharded';
export { Tokenizer, textStream } from './tokenizer';
export {
  Decoder,
  type DecoderMemory,
  type DecoderOptions,
  type DecoderSource,
  DeviceSampler,
  safetensorsSource,
} from './decoder';
