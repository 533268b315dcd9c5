export { type LlamaConfig, parseLlamaConfig } from './config';
export { IOError } from './errors';
export { type GenerateOptions, generate, generateWith, sampleToken } from './generate';
export {
  type LoadLlamaOptions,
  type LoadedLlama,
  decodeTensor,
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
  LlamaModel,
  type LinearFunction,
  type WeightTransform,
  applyRope,
  decoderLayer,
  rmsNorm,
  ropeInverseFrequencies,
  ropeTables,
  rotateHalfMatrix,
  selfAttention,
} from './model';
export {
  DTYPE_BYTES,
  type SafetensorsDtype,
  SafetensorsFile,
  type TensorEntry,
  type TensorToWrite,
  writeSafetensors,
} from './safetensors';
export { Tokenizer } from './tokenizer';
export {
  Decoder,
  type DecoderMemory,
  type DecoderOptions,
  type DecoderSource,
  DeviceSampler,
  safetensorsSource,
} from './decoder';
