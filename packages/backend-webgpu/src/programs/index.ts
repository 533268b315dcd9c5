/** The WebGPU programs of the plugin's kernels, one per file (WGSL helpers: code.ts, reduce.ts). */
export { EdkmProgram, FlatProgram } from './base';
export { codeFunction } from './code';
export { reduceScratch, workgroupReduce, workgroupSum256 } from './reduce';
export { GatherRowsProgram } from './gather-rows';
export { ZerosProgram } from './zeros';
export { ScatterAddRowsProgram } from './scatter-add-rows';
export { GatherAffineProgram } from './gather-affine';
export { CodeHistogramCopiesProgram } from './code-histogram-copies';
export { HistogramMergeProgram } from './histogram-merge';
export { GatherByCodeVec4Program } from './gather-by-code-vec4';
export { GatherByCodeProgram } from './gather-by-code';
export { GatherAffineByCodeProgram } from './gather-affine-by-code';
export { TableIterateProgram } from './table-iterate';
export { TableBackwardProgram } from './table-backward';
export { CodeContractPartialProgram } from './code-contract-partial';
export { SoftContractPartialProgram } from './soft-contract-partial';
export { ColumnSumProgram } from './column-sum';
