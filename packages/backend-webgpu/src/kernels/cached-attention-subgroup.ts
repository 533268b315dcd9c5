import { BackendError, type DecodeAttrs, type tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { linearGroupWgsl, linearGroups } from '../grid';
import { allocate, runRaw, uniformBlock } from '../raw';
import { ropeFunction } from './kv-write';
import {
  type SubgroupMode,
  maxInvocations,
  maxWorkgroupStorage,
  minSubgroupSize,
  subgroupKernelOn,
} from './subgroup-route';

/** Threads of a workgroup (4 subgroups of 32 on NVIDIA, 16 of 8 on lavapipe). */
const DEFAULT_THREADS = 128;
/** Cached positions a subgroup takes per step (their loads and subgroup sums in flight together). */
const STEP = 4;
/** Positions per workgroup (one split of the cache). */
export const SUBGROUP_SPAN = 32;
/** Workgroups the split aims for. */
const TARGET_WORKGROUPS = 512;
/** Subgroups of the wide form's one workgroup a head (SubgroupAttentionForm.threads). */
const WIDE_SUBGROUPS = 32;
/**
 * Slots up to which a decoding step takes the wide form (beyond: flash-decoding's splits, which
 * spread a long context over more of the GPU: at 1,001 live positions of 1,024 the wide form took
 * 35.0 µs against 31.8 on one H200, bench/results/h200-2026-12-04/decode-ops-wide-s7-3.txt).
 */
export const WIDE_SLOTS = 1024;

let attentionMode: SubgroupMode = 'auto';
let bounded = true;
let interleaved = true;
let wide = true;
/**
 * Where the subgroup attention runs (see SubgroupMode), and its form (SubgroupAttentionForm: both
 * on by default; off for A/B only).
 */
export function setSubgroupAttention(
  mode: SubgroupMode,
  opts: Pick<SubgroupAttentionForm, 'bounded' | 'interleaved'> & { wide?: boolean } = {},
): void {
  attentionMode = mode;
  bounded = opts.bounded ?? true;
  interleaved = opts.interleaved ?? true;
  wide = opts.wide ?? true;
}

/**
 * The wide form's workgroup (see subgroupAttention): WIDE_SUBGROUPS subgroups of the device's
 * smallest size (1,024 threads on NVIDIA, 256 on lavapipe), where the device allows it, for a
 * decoding step (one new position a row) over at most WIDE_SLOTS slots and heads of ≤ 128; else 0.
 */
export function wideAttentionThreads(t: number, slots: number, d: number): number {
  const threads = WIDE_SUBGROUPS * minSubgroupSize();
  // workgroup memory: each subgroup's (max, sum, D outputs), the query, key and value
  const bytes = WIDE_SUBGROUPS * (d + 2) * 4 + 3 * d * 4 + 8;
  return wide &&
    t === 1 &&
    slots <= WIDE_SLOTS &&
    d <= 128 &&
    threads <= maxInvocations() &&
    bytes <= maxWorkgroupStorage()
    ? threads
    : 0;
}

/** Whether CachedAttention takes the subgroup kernel for head size d. */
export function useSubgroupAttention(d: number): boolean {
  return subgroupKernelOn(attentionMode) && d % 4 === 0 && d <= 512;
}

/**
 * Splits of the cache's slots: SUBGROUP_SPAN positions each, enough to fill the GPU. (With the
 * position on the device, `slots` is the whole cache. One split per SUBGROUP_SPAN slots there —
 * 32 of 32 for 1,024 slots instead of 16 of 64 — was slower: the device-position attention op of
 * a 7B-shaped layer 33.3 → 39.5 µs, calls s6-2 and s6-3.)
 */
export function subgroupSplits(groups: number, slots: number): { splits: number; span: number } {
  const blocks = Math.max(1, Math.ceil(slots / SUBGROUP_SPAN));
  const want = Math.min(blocks, Math.max(1, Math.ceil(TARGET_WORKGROUPS / groups)));
  const span = Math.ceil(blocks / want) * SUBGROUP_SPAN;
  return { splits: Math.ceil((blocks * SUBGROUP_SPAN) / span), span };
}

/** Forms of subgroupAttentionWgsl's kernel. */
export interface SubgroupAttentionForm {
  /**
   * A split with no live slot writes an empty partial and returns, a live one steps only over
   * its live slots, and the slots past the end within a step re-read the last live one (cached)
   * instead of their own (default true): with the position on the device the grid covers the
   * whole cache (a 7B-shaped decode at position 161 of 1,024 has 13 of 16 splits empty), and each
   * of them read its keys and values in full.
   */
  bounded?: boolean;
  /**
   * (With `bounded`) split s takes the blocks s, s + S, s + 2S … of SUBGROUP_SPAN slots instead of
   * one run of `span`, so that the live slots of a short context spread over as many splits as
   * they fill (a 7B-shaped decode at position 161 of 1,024: 6 live splits of 32 instead of 3 of
   * 64, as with the position on the host).
   */
  interleaved?: boolean;
  /**
   * KvWriteAttention in this one kernel (one new position a row: decoding): each workgroup ropes
   * the new key and takes the new value from qkv into workgroup memory and uses them at the new
   * slot (its loads stop one slot short), and the KV head's first query head writes them to the
   * cache in the split that holds the slot.
   */
  write?: boolean;
  /**
   * Threads of the workgroup (default 128, 4 subgroups on NVIDIA). The wide form (see
   * subgroupAttention) runs 1,024: WIDE_SUBGROUPS subgroups share one head's slots.
   */
  threads?: number;
  /** The device's smallest subgroup size (sizes the subgroups' slots in workgroup memory; default 4). */
  minSubgroup?: number;
}

/**
 * CachedAttention on subgroups (flash-decoding's shape): one workgroup per (row, query head,
 * split of the cached slots). The roped, scaled query waits in workgroup memory; each subgroup
 * takes STEP cached positions at a time, its lanes splitting the head dimension as vec4s: a key's
 * dot product is one subgroupAdd, the online softmax runs in every lane alike, and each lane keeps
 * its own dims of the output (value rows read whole by the subgroup: coalesced). The subgroups'
 * (max, sum, output) meet in workgroup memory at the end. Every subgroup runs the same number of
 * steps (positions past the end count as probability 0), so the subgroup sums stay in uniform
 * control flow. The older kernel (CachedAttentionProgram) gave a thread a whole key and a serial
 * 64-step loop per block for the softmax and the value pass. See SubgroupAttentionForm for the
 * forms.
 */
export function subgroupAttentionWgsl(
  d: number,
  whole: boolean,
  devicePosition: boolean,
  form: SubgroupAttentionForm = {},
): string {
  const bound = form.bounded ?? true;
  const write = form.write ?? false;
  const WG = form.threads ?? DEFAULT_THREADS;
  const sgSlots = WG / Math.max(1, Math.min(form.minSubgroup ?? 4, WG));
  // (interleaved splits only where bounded: the unbounded form is the A/B reference)
  const il = (form.interleaved ?? false) && bound;
  const d4 = d / 4;
  const jmax = Math.ceil(d4 / 4); // vec4 slots a lane may hold (subgroups of 4 lanes and up)
  const slots = (f: (j: number) => string) =>
    Array.from({ length: jmax }, (_, j) => f(j)).join('\n      ');
  /**
   * A cached key or value vec4 (`load`), or under `write` at the new slot this step's own from
   * workgroup memory (`fromS`[i]): the kernel writes the slot itself, so no workgroup reads it.
   */
  const fresh = (load: string, fromS: string, i: string, u: number) =>
    write ? `select(${load}, ${fromS}[${i}], j${u} == slot)` : load;
  /** Thread tid's vec4 of the head at `at` of a qkv row, roped to position p. */
  const rope4 = (at: string) =>
    `vec4<f32>(${[0, 1, 2, 3].map((i) => `edkmRope(${at}, 4u * tid + ${i}u, p)`).join(', ')})`;
  const step: string[] = [];
  for (let u = 0; u < STEP; u++) {
    step.push(
      ...(il
        ? [
            `let q${u} = li + ${u}u;`,
            `let j${u} = (split + q${u} / ${SUBGROUP_SPAN}u * u.splits) * ${SUBGROUP_SPAN}u + q${u} % ${SUBGROUP_SPAN}u;`,
            `let live${u} = q${u} < u.span && j${u} >= first && j${u} < len;`,
          ]
        : [`let j${u} = base + ${u}u;`, `let live${u} = j${u} < len;`]),
      `let kr${u} = kBase + min(j${u}, last);`,
      `let vr${u} = vBase + min(j${u}, last);`,
      `var part${u} = 0.0;`,
      slots(
        (j) =>
          `if (sl + ${j}u * sgs < ${d4}u) { part${u} = part${u} + dot(qS[sl + ${j}u * sgs], ${fresh(`cache[kr${u} * ${d4}u + sl + ${j}u * sgs]`, 'kS', `sl + ${j}u * sgs`, u)}); }`,
      ),
    );
  }
  for (let u = 0; u < STEP; u++)
    step.push(`let s${u} = select(-3.0e38, subgroupAdd(part${u}), live${u});`);
  step.push(
    'let mx = max(max(max(m, s0), max(s1, s2)), s3);',
    'let corr = exp(m - mx);',
    ...Array.from(
      { length: STEP },
      (_, u) => `let p${u} = select(0.0, exp(s${u} - mx), live${u});`,
    ),
    'l = l * corr + ((p0 + p1) + (p2 + p3));',
    'm = mx;',
    slots(
      (j) =>
        `if (sl + ${j}u * sgs < ${d4}u) { let i = sl + ${j}u * sgs; o${j} = o${j} * corr + ${Array.from({ length: STEP }, (_, u) => `p${u} * ${fresh(`cache[vr${u} * ${d4}u + i]`, 'vS', 'i', u)}`).join(' + ')}; }`,
    ),
  );
  const output = whole
    ? `let inv = select(0.0, 1.0 / total, total > 0.0);
    out[(bt * u.h + hq) * ${d}u + tid] = acc * inv;`
    : `let at = wgi * ${d + 2}u;
    if (tid == 0u) { out[at] = mAll; out[at + 1u] = total; }
    out[at + 2u + tid] = acc;`;
  return `
enable subgroups;
struct U { b : u32, t : u32, h : u32, kv : u32, l : u32, pos : u32, scale : f32, splits : u32, span : u32, p0 : u32, p1 : u32, p2 : u32 };
@group(0) @binding(0) var<storage, read> qkv : array<f32>;
@group(0) @binding(1) var<storage, ${write ? 'read_write' : 'read'}> cache : array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> rope : array<f32>;
@group(0) @binding(3) var<storage, read> starts : array<i32>;
@group(0) @binding(4) var<storage, read> position : array<i32>;
@group(0) @binding(5) var<storage, read_write> out : array<f32>;
@group(0) @binding(6) var<uniform> u : U;
var<workgroup> qS : array<vec4<f32>, ${d4}>;
${
  write
    ? `var<workgroup> kS : array<vec4<f32>, ${d4}>;
var<workgroup> vS : array<vec4<f32>, ${d4}>;`
    : ''
}
var<workgroup> mS : array<f32, ${sgSlots}>;
var<workgroup> lS : array<f32, ${sgSlots}>;
var<workgroup> oS : array<vec4<f32>, ${sgSlots * d4}>;
var<workgroup> bounds : vec2<u32>;
${ropeFunction(`${d}u`, 'u32')}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>, @builtin(local_invocation_index) tid : u32,
        @builtin(subgroup_invocation_id) sl : u32, @builtin(subgroup_size) sgs : u32) {
  let wgi = ${linearGroupWgsl()};
  if (wgi >= u.b * u.t * u.h * u.splits) { return; }
  let split = wgi % u.splits;
  let g = wgi / u.splits;
  let hq = g % u.h;
  let bt = g / u.h;
  let b = bt / u.t;
  let t = bt - b * u.t;
  let pos = ${devicePosition ? 'u32(position[0])' : 'u.pos + 0u * u32(position[0])'};
  let start0 = u32(starts[b]);
  let p = u32(max(0, i32(pos + t) - i32(start0)));
  ${write ? 'let slot = pos + t;' : ''}
  let kvh = hq / (u.h / u.kv);
  let row = bt * (u.h + 2u * u.kv) * ${d}u;
  if (tid == 0u) {
    bounds = ${il ? 'vec2<u32>(start0, pos + t + 1u)' : 'vec2<u32>(max(start0, split * u.span), min(pos + t + 1u, (split + 1u) * u.span))'};
  }
  let bd = workgroupUniformLoad(&bounds);
  let first = bd.x;
  let len = bd.y;
  ${
    bound
      ? `if (${il ? `split * ${SUBGROUP_SPAN}u >= len` : 'first >= len'}) {
    ${
      whole
        ? `if (tid < ${d}u) { out[(bt * u.h + hq) * ${d}u + tid] = 0.0; }`
        : `let at = wgi * ${d + 2}u;
    if (tid == 0u) { out[at] = -3.0e38; out[at + 1u] = 0.0; }
    if (tid < ${d}u) { out[at + 2u + tid] = 0.0; }`
    }
    return;
  }`
      : ''
  }
  if (tid < ${d4}u) {
    let at = row + hq * ${d}u;
    qS[tid] = ${rope4('at')} * u.scale;
    ${
      write
        ? `// this step's key (roped) and value of the row's one new position (slot pos + t)
    let ak = row + (u.h + kvh) * ${d}u;
    kS[tid] = ${rope4('ak')};
    let av = row + (u.h + u.kv + kvh) * ${d}u + 4u * tid;
    vS[tid] = vec4<f32>(qkv[av], qkv[av + 1u], qkv[av + 2u], qkv[av + 3u]);`
        : ''
    }
  }
  workgroupBarrier();
  let nsg = ${WG}u / sgs;
  let sg = tid / sgs;
  let kBase = (b * u.kv + kvh) * u.l;
  let vBase = ((u.b + b) * u.kv + kvh) * u.l;
  ${
    write
      ? `// the cache's copy: by the first query head of the KV head, in the split holding the slot
  if (hq % (u.h / u.kv) == 0u && ${il ? `(slot / ${SUBGROUP_SPAN}u) % u.splits == split` : 'slot >= split * u.span && slot < (split + 1u) * u.span'} && tid < ${d4}u) {
    cache[(kBase + slot) * ${d4}u + tid] = kS[tid];
    cache[(vBase + slot) * ${d4}u + tid] = vS[tid];
  }`
      : ''
  }
  // the last slot a load reads (past it, positions count 0): under \`write\` not the new slot,
  // whose key and value come from workgroup memory (slot 0 aside: the load is discarded there)
  let last = ${write ? 'min(len, max(slot, 1u)) - 1u' : bound ? 'len - 1u' : 'u.l - 1u'};
  var m = -3.0e38;
  var l = 0.0;
  ${slots((j) => `var o${j} = vec4<f32>(0.0);`)}
  let per = nsg * ${STEP}u;
  ${
    !bound
      ? 'let steps = (u.span + per - 1u) / per;'
      : il
        ? `// (bounded) only the steps over this split's live blocks: those holding a slot below len
  let mine = (((len + ${SUBGROUP_SPAN - 1}u) / ${SUBGROUP_SPAN}u) - split + u.splits - 1u) / u.splits;
  let steps = min((u.span + per - 1u) / per, (mine * ${SUBGROUP_SPAN}u + per - 1u) / per);`
        : `// (bounded) only the steps over live slots
  let steps = (len - first + per - 1u) / per;`
  }
  for (var it = 0u; it < steps; it = it + 1u) {
    ${il ? `let li = (it * nsg + sg) * ${STEP}u;` : `let base = first + (it * nsg + sg) * ${STEP}u;`}
    ${step.join('\n    ')}
  }
  if (sl == 0u) { mS[sg] = m; lS[sg] = l; }
  ${slots((j) => `if (sl + ${j}u * sgs < ${d4}u) { oS[sg * ${d4}u + sl + ${j}u * sgs] = o${j}; }`)}
  workgroupBarrier();
  var mAll = -3.0e38;
  for (var s = 0u; s < nsg; s = s + 1u) { mAll = max(mAll, mS[s]); }
  var total = 0.0;
  var acc = 0.0;
  for (var s = 0u; s < nsg; s = s + 1u) {
    let f = select(0.0, exp(mS[s] - mAll), lS[s] > 0.0);
    total = total + lS[s] * f;
    if (tid < ${d}u) { acc = acc + oS[s * ${d4}u + tid / 4u][tid % 4u] * f; }
  }
  if (tid < ${d}u) {
    ${output}
  }
}`;
}

/**
 * CachedAttention through subgroupAttentionWgsl: the partials of several splits (max, sum, D
 * values each) or, with one split, the normalised output. The caller merges the partials.
 */
export function subgroupAttention(
  backend: WebGPUBackend,
  inputs: {
    qkv: tf.TensorInfo;
    cache: tf.TensorInfo;
    rope: tf.TensorInfo;
    starts: tf.TensorInfo;
    position?: tf.TensorInfo;
  },
  a: DecodeAttrs,
  write = false,
): { out: tf.TensorInfo; splits: number } {
  const { qkv, cache, rope, starts, position } = inputs;
  const [, b, kv, l, d] = cache.shape;
  const rows = qkv.shape[0];
  const t = rows / b;
  if (write && t !== 1)
    throw new BackendError('subgroupAttention: write takes one new position a row');
  const slots = position ? l : a.pos + t;
  // the wide form: a decoding step's heads each in one workgroup of 1,024 threads (32 subgroups
  // sharing the live slots), normalised there — no merge dispatch, one a layer fewer (7B-shaped
  // decode: 163 dispatches a step instead of 195, the host's encoding of a replay 1.1–1.6 ms
  // instead of 1.3–2.0; the fused KV write + attention op at 161 positions 22.8 µs against 26.7,
  // decode tokens/s the same, 250.1 / 251.4 against 251.0 / 251.1: calls s7-3, s7-4)
  const threads = wideAttentionThreads(t, slots, d);
  const { splits, span } = threads
    ? { splits: 1, span: Math.ceil(slots / SUBGROUP_SPAN) * SUBGROUP_SPAN }
    : subgroupSplits(rows * a.heads, slots);
  const whole = splits === 1;
  const minSubgroup = minSubgroupSize();
  const out = allocate(backend, whole ? [rows, a.heads * d] : [rows * a.heads * splits * (d + 2)]);
  // without a device position the binding still needs a buffer: starts stands in (its value
  // multiplied by 0: the binding must be used for the pipeline's layout to have it)
  runRaw(backend, {
    key: `${write ? 'EdkmKvWriteAttentionSubgroup' : 'EdkmCachedAttentionSubgroup'}:${d}_${whole}_${!!position}_${bounded}_${interleaved}_${threads || DEFAULT_THREADS}_${minSubgroup}`,
    wgsl: () =>
      subgroupAttentionWgsl(d, whole, !!position, {
        bounded,
        interleaved,
        write,
        threads: threads || DEFAULT_THREADS,
        minSubgroup,
      }),
    tensors: [qkv, cache, rope, starts, position ?? starts, out],
    uniforms: uniformBlock([
      ['u', b],
      ['u', t],
      ['u', a.heads],
      ['u', kv],
      ['u', l],
      ['u', position ? 0 : a.pos],
      ['f', 1 / Math.sqrt(d)],
      ['u', splits],
      ['u', span],
    ]),
    groups: linearGroups(rows * a.heads * splits, 'EdkmCachedAttention'),
  });
  return { out, splits };
}
