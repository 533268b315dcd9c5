export { type DkmConfig, defaultDkmConfig, resolveDkmConfig } from './config';
export { initCentroids } from './init';
export { DkmTensor, type DkmRuntimeOptions, type DkmState, type Palettized } from './layer';
export { dequantize } from '@edkm/codec';
export { attention, dkmPlain, iterate, sqDistances, tableGradients, updateCentroids } from './math';
export { uniquePoints } from './unique';
export {
  type LayerConfig,
  type PalettizationLayer,
  type PalettizationMethod,
  Palettizer,
  type PalettizerConfig,
  configFor,
  palettizationMethods,
  parsePalettizerConfig,
  registerPalettizationMethod,
  resolveLayerConfig,
} from './palettizer';
