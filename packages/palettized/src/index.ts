export {
  type DenseWeight,
  FORMAT,
  FORMAT_VERSION,
  MODEL_FILES,
  PalettizedFile,
  type SizeReport,
  type WriteOptions,
  writePalettized,
} from './format';
export { type HfExportOptions, type HfExportResult, writeHfExport } from './hf';
export { type LoadedModel, isPalettized, loadModel, loadPalettized } from './load';
export {
  type Inspection,
  type TensorSummary,
  formatInspection,
  formatSizeReport,
  inspect,
} from './inspect';
export { type PaletteTensor, dequantize } from '@edkm/codec';
export { decoderSource, palettizedSource, palettizedSourceOf } from './decoder-source';
