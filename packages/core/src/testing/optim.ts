import {
  type AdamWAttrs,
  OptimKernelNames,
  adamwSchedule,
  adamwUpdate,
  copyInto,
  globalNormClip,
  optimReference,
  seededRandom,
  sumSquaresChunks,
} from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';

const floats = (n: number, rnd: () => number, scale = 1) =>
  Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale);

/** Conformance cases of the optimizer kernels (SumSquares, ClipScale, AdamW). */
export function optimCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const n of [1, 7, 1000, 200_003]) {
    cases.push({
      kernelName: OptimKernelNames.SumSquares,
      name: `sumSquares n=${n} into an offset`,
      run: async () => {
        const rnd = seededRandom(n);
        const x = floats(n, rnd);
        const chunks = sumSquaresChunks(n);
        const acc0 = Float32Array.from({ length: chunks + 5 }, (_, i) => i + 0.5);
        const expected = optimReference.sumSquares(x, acc0, 3);
        const acc = tf.tensor1d(acc0.slice());
        const xt = tf.tensor1d(x);
        const out = tf.engine().runKernel(OptimKernelNames.SumSquares, { x: xt, acc }, {
          offset: 3,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const actual = Float32Array.from(await out.data());
        // in place: acc holds the same values
        const same = Float32Array.from(await acc.data());
        tf.dispose([out, acc, xt]);
        if (same.some((v, i) => v !== actual[i])) throw new Error('acc was not updated in place');
        const scale = Math.max(...expected.map(Math.abs));
        return { actual, expected, tolerance: 1e-5 * scale };
      },
    });
  }
  for (const [label, maxNorm, values] of [
    ['clipped', 1, [3, 4, 0, 0]],
    ['below the limit', 10, [3, 4, 0, 0]],
    ['off', 0, [3, 4, 0, 0]],
    ['NaN stays NaN', 1, [Number.NaN, 1]],
  ] as const) {
    cases.push({
      kernelName: OptimKernelNames.ClipScale,
      name: `clipScale ${label}`,
      run: async () => {
        const acc = Float32Array.from(values, (v) => v * v);
        const t = tf.tensor1d(acc);
        const out = tf.engine().runKernel(OptimKernelNames.ClipScale, { acc: t }, {
          maxNorm,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const actual = Float32Array.from(await out.data());
        tf.dispose([t, out]);
        const expected = optimReference.clipScale(acc, maxNorm);
        if (Number.isNaN(expected[1]) && Number.isNaN(actual[1]) && Number.isNaN(actual[0]))
          return { actual: new Float32Array(1), expected: new Float32Array(1), tolerance: 0 };
        return { actual, expected, tolerance: 1e-6 };
      },
    });
  }
  // readFirst: the tensors were read before the in-place update (a backend that keeps a host copy
  // of what it read must not return that stale copy afterwards: a checkpoint reads the weights)
  // sched: the schedule from a device tensor (a replayed training step), attrs set to other values
  for (const [n, readFirst, sched] of [
    [5, false, false],
    [4099, false, false],
    [4099, true, false],
    [4099, false, true],
  ] as const) {
    cases.push({
      kernelName: OptimKernelNames.AdamW,
      name: `adamw n=${n}, step 3, weight decay, clipped gradient${readFirst ? ', read before the update' : ''}${sched ? ', schedule from a device tensor' : ''}`,
      run: async () => {
        const rnd = seededRandom(100 + n);
        const w = floats(n, rnd);
        const g = floats(n, rnd, 3);
        const m = floats(n, rnd, 0.1);
        const v = Float32Array.from(floats(n, rnd, 0.1), Math.abs);
        const a: AdamWAttrs = {
          lr: 1e-2,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0.1,
          step: 3,
        };
        const ref = optimReference.adamw(w, g, m, v, 0.5, a);
        const [wt, gt, mt, vt] = [w, g, m, v].map((x) => tf.tensor1d(x.slice()));
        const clip = tf.tensor1d([2, 0.5]);
        const st = sched ? tf.tensor1d(adamwSchedule(a)) : undefined;
        if (readFirst) await Promise.all([wt, mt, vt].map((t) => t.data()));
        // with a schedule tensor, the attrs' lr, decay and step must be ignored
        adamwUpdate(wt, gt, mt, vt, clip, sched ? { ...a, lr: 5, weightDecay: 3, step: 1 } : a, st);
        st?.dispose();
        const read = async (t: tf.Tensor) => Float32Array.from(await t.data());
        const actual = new Float32Array(3 * n);
        actual.set(await read(wt), 0);
        actual.set(await read(mt), n);
        actual.set(await read(vt), 2 * n);
        tf.dispose([wt, gt, mt, vt, clip]);
        const expected = new Float32Array(3 * n);
        expected.set(ref.w, 0);
        expected.set(ref.m, n);
        expected.set(ref.v, 2 * n);
        return { actual, expected, tolerance: 2e-5 };
      },
    });
  }
  for (const [n, readFirst] of [
    [3, false],
    [70_001, true],
  ] as const) {
    cases.push({
      kernelName: OptimKernelNames.CopyInto,
      name: `copyInto n=${n}${readFirst ? ', dst read before the copy' : ''}`,
      run: async () => {
        const rnd = seededRandom(900 + n);
        const src = floats(n, rnd);
        const st = tf.tensor1d(src);
        const dt = tf.tensor1d(floats(n, rnd));
        if (readFirst) await dt.data(); // a host copy of the old values must not be returned
        copyInto(st, dt);
        const actual = Float32Array.from(await dt.data());
        const unchanged = Float32Array.from(await st.data());
        tf.dispose([st, dt]);
        if (unchanged.some((v, i) => v !== src[i])) throw new Error('copyInto changed src');
        return { actual, expected: src, tolerance: 0 };
      },
    });
  }
  cases.push({
    kernelName: OptimKernelNames.ClipScale,
    name: 'globalNormClip over several tensors',
    run: async () => {
      const rnd = seededRandom(7);
      const parts = [floats(3, rnd), floats(70_000, rnd), floats(1, rnd)];
      const ts = parts.map((p) => tf.tensor1d(p));
      const out = globalNormClip(ts, 0.5);
      const actual = Float32Array.from(await out.data());
      tf.dispose([...ts, out]);
      let s = 0;
      for (const p of parts) for (const x of p) s += x * x;
      const norm = Math.sqrt(s);
      return { actual, expected: Float32Array.from([norm, 0.5 / norm]), tolerance: 1e-4 };
    },
  });
  return cases;
}
