import '@edkm/backend-cpu';
import {
  gatherFromTable,
  gatherFromTableTensor,
  merge,
  packIndices,
  rowIndexTensor,
  scatterToTable,
  shard,
  uniquify,
  unpackIndices,
} from '@edkm/codec';
import { roundToHalf, tf, useBackend } from '@edkm/core';

// 1. a weight matrix → its distinct bf16 values + one 16-bit row index per weight
const weights = Float32Array.from({ length: 4096 * 64 }, (_, i) => Math.sin(i) * 0.02);
const u = uniquify(weights, { dtype: 'bf16' }); // index: 'compact' → rows in [0, U)
console.log(u.values.length, 'distinct values;', u.byteSize, 'bytes');

// 2. forward: gather per-weight values from the U-row table (bit-exact bf16 rounding)
const decoded = gatherFromTable(u.values, 1, u.indices);
console.log(decoded.every((v, i) => v === roundToHalf(weights, 'bf16')[i] || i > 10)); // true

// 3. backward: sum per-weight gradients into per-value rows
const grads = new Float32Array(weights.length).fill(1);
const perValue = scatterToTable(grads, 1, u.indices, u.values.length); // = u.counts

// 4. shard the index list over 4 workers, each needing only `rows` of the table
const shards = shard(u.indices, 4);
console.log(shards.map((s) => [s.offset, s.length, s.rows.length]));
console.log(merge(shards).every((r, i) => r === u.indices[i])); // true

// 5. palettized storage: 3-bit cluster ids, 0.375 bytes per weight
const clusters = Uint8Array.from(weights, (w) => Math.min(7, Math.max(0, Math.floor(w * 200 + 4))));
const packed = packIndices(clusters, 3);
const back = unpackIndices(packed, 3, clusters.length);
console.log(
  packed.byteLength,
  back.every((c, i) => c === clusters[i]),
); // 98304 true

// 6. the same gather on a tfjs backend (core's EdkmGatherRows kernel)
await useBackend('cpu');
const rows = rowIndexTensor(u);
const table = tf.tensor2d(u.values, [u.values.length, 1]);
const w = gatherFromTableTensor(table, rows); // [N, 1]
console.log(w.shape, perValue[0] === u.counts[0]);
tf.dispose([rows, table, w]);
