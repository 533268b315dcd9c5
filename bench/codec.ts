// Throughput of @edkm/codec's plain typed-array functions on one core, on one LLaMA-7B MLP matrix
// (11008×4096 = 45,088,768 weights), and the bytes per element of every encoded form.
// Usage: tsx codec.ts [--n 45088768] [--reps 5] [--bits 3] [--shards 4]
// "fresh" allocates its output per call (first-touch page faults included); "reuse" passes the
// previous output buffer as `out`, the steady state of a training loop. packUnpackAllBits: reuse.
import {
  gatherFromTable,
  packIndices,
  packedByteLength,
  scatterToTable,
  shard,
  uniquify,
  unpackIndices,
} from '@edkm/codec';
import { toHalfBits } from '@edkm/core';
import { argNumber, llamaWeights, median, printJson } from './util';

const n = argNumber('n', 11008 * 4096);
const reps = argNumber('reps', 5);
const bits = argNumber('bits', 3);
const parts = argNumber('shards', 4);
const K = 2 ** bits;

/** Runs fn `reps` times (after one warm-up) → elements/s of the median and the best run. */
function throughput(elements: number, fn: () => unknown) {
  fn();
  const seconds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    seconds.push((performance.now() - t0) / 1000);
  }
  return {
    elementsPerSec: Math.round(elements / median(seconds)),
    bestElementsPerSec: Math.round(elements / Math.min(...seconds)),
    medianMs: +(median(seconds) * 1000).toFixed(2),
  };
}

const weights = llamaWeights(n, 7); // float32 holding bf16-representable values
const codes = toHalfBits(weights, 'bf16');
const u = uniquify(weights, { dtype: 'bf16' });
const U = u.values.length;
// cluster assignments in [0, 2^bits): the value each weight is palettized to
let s = 1;
const assign = new Uint8Array(n);
for (let i = 0; i < n; i++) {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  assign[i] = s >>> (32 - bits);
}
const grads = new Float32Array(n).fill(1e-3);
const gathered = new Float32Array(n);
const table = new Float32Array(U);
const packed = packIndices(assign, bits);
const packedOut = new Uint8Array(packed.length);
const unpacked = new Uint8Array(n);
const n8 = Math.floor(n / 8); // DKM tables are U×K: gather/scatter rows of K = 2^bits floats
const tableK = new Float32Array(U * K).fill(0.5);
const outK = new Float32Array(n8 * K);
const gradsK = new Float32Array(n8 * K).fill(1e-3);
const idx8 = u.indices.subarray(0, n8);

const reuse = new Uint16Array(n);
const results = {
  uniquify_bf16_compact_fresh: throughput(n, () => uniquify(weights, { dtype: 'bf16' })),
  uniquify_bf16_compact_reuse: throughput(n, () =>
    uniquify(weights, { dtype: 'bf16', out: reuse }),
  ),
  uniquify_bf16_code_fresh: throughput(n, () =>
    uniquify(weights, { dtype: 'bf16', index: 'code' }),
  ),
  uniquify_bf16_code_reuse: throughput(n, () =>
    uniquify(weights, { dtype: 'bf16', index: 'code', out: reuse }),
  ),
  uniquify_bf16_fromCodes_compact_reuse: throughput(n, () =>
    uniquify(codes, { dtype: 'bf16', out: reuse }),
  ),
  uniquify_fp16_compact_reuse: throughput(n, () =>
    uniquify(weights, { dtype: 'fp16', out: reuse }),
  ),
  gather_k1: throughput(n, () => gatherFromTable(u.values, 1, u.indices, gathered)),
  scatterAdd_k1: throughput(n, () => scatterToTable(grads, 1, u.indices, U, table)),
  [`gather_k${K}`]: throughput(n8, () => gatherFromTable(tableK, K, idx8, outK)),
  [`scatterAdd_k${K}`]: throughput(n8, () => scatterToTable(gradsK, K, idx8, U)),
  [`pack_${bits}bit_fresh`]: throughput(n, () => packIndices(assign, bits)),
  [`pack_${bits}bit_reuse`]: throughput(n, () => packIndices(assign, bits, packedOut)),
  [`unpack_${bits}bit`]: throughput(n, () => unpackIndices(packed, bits, n, unpacked)),
  [`shard_${parts}`]: throughput(n, () => shard(u.indices, parts)),
};
const packAll: Record<string, number> = {};
for (let b = 1; b <= 8; b++) {
  const a = b === bits ? assign : assign.map((v) => v & ((1 << b) - 1));
  const p = packIndices(a, b);
  packAll[`pack_${b}bit`] = throughput(n, () => packIndices(a, b, p)).elementsPerSec;
  packAll[`unpack_${b}bit`] = throughput(n, () => unpackIndices(p, b, n, unpacked)).elementsPerSec;
}
unpackIndices(packIndices(assign, bits), bits, n, unpacked);
for (let i = 0; i < n; i++) if (unpacked[i] !== assign[i]) throw new Error('pack round trip');

const shards = shard(u.indices, parts);
const tableBytes = u.byteSize - u.indices.byteLength;
printJson({
  bench: 'codec',
  n,
  reps,
  bits,
  distinctBf16Values: U,
  elementsPerSec: Object.fromEntries(
    Object.entries(results).map(([k, v]) => [k, v.elementsPerSec]),
  ),
  detail: results,
  packUnpackAllBits: packAll,
  bytesPerElement: {
    float32: 4,
    codeIndices: u.indices.BYTES_PER_ELEMENT,
    compactIndices: u.indices.BYTES_PER_ELEMENT,
    uniquifiedTotal: u.byteSize / n,
    uniquifiedTableBytes: tableBytes,
    [`packed_${bits}bit`]: packedByteLength(n, bits) / n,
    [`shards_${parts}_total`]: shards.reduce((t, sh) => t + sh.byteSize, 0) / n,
    [`dkmMapNxK${K}_f32`]: 4 * K,
    [`edkmTableUxK${K}_f32_plus_index`]: (U * K * 4) / n + u.indices.BYTES_PER_ELEMENT,
  },
});
