export { type IndexForm, type Uniquified, type UniquifyOptions, uniquify } from './uniquify';
export { gatherFromTable, scatterToTable } from './table';
export { gatherFromTableTensor, rowIndexTensor, scatterToTableTensor } from './tensor';
export { type Shard, type ShardOptions, localIndices, merge, shard } from './shard';
export {
  type PackedIndices,
  fromPacked,
  packIndices,
  packedByteLength,
  toPacked,
  unpackIndices,
} from './pack';
export {
  type PaletteTensor,
  dequantize,
  groupRowsOf,
  paletteBytes,
  validatePalette,
} from './palette';
