export { type DkmConfig, defaultDkmConfig, resolveDkmConfig } from './config';
export { initCentroids } from './init';
export { DkmTensor, type Palettized } from './layer';
export { dequantize } from './palette';
export { attention, dkmPlain, iterate, sqDistances, tableGradients, updateCentroids } from './math';
export { uniquePoints } from './unique';
