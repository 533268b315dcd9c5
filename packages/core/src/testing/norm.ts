import { NormKernelNames, normReference, seededRandom } from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ConformanceCase } from './index';

/** Conformance cases of the fused RMSNorm kernels (forward; backward with dweight). */
export function normCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const [R, C] of [
    [1, 1],
    [3, 7],
    [70, 288],
    [5, 1000],
  ]) {
    const make = (seed: number) => {
      const rnd = seededRandom(seed);
      const f = (n: number, s: number) =>
        Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * s);
      return { x: f(R * C, 2), w: f(C, 1.5), dy: f(R * C, 1) };
    };
    cases.push({
      kernelName: NormKernelNames.RmsNorm,
      name: `rmsNorm [${R}, ${C}]`,
      run: async () => {
        const { x, w } = make(R * 31 + C);
        const xt = tf.tensor2d(x, [R, C]);
        const wt = tf.tensor1d(w);
        const out = tf.engine().runKernel(NormKernelNames.RmsNorm, { x: xt, weight: wt }, {
          eps: 1e-5,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const actual = Float32Array.from(await out.data());
        tf.dispose([xt, wt, out]);
        return { actual, expected: normReference.rmsNorm(x, w, 1e-5), tolerance: 2e-5 };
      },
    });
    cases.push({
      kernelName: NormKernelNames.RmsNormGrad,
      name: `rmsNormGrad [${R}, ${C}] (dx, then dweight)`,
      run: async () => {
        const { x, w, dy } = make(R * 17 + C);
        const [xt, dyt] = [x, dy].map((a) => tf.tensor2d(a, [R, C]));
        const wt = tf.tensor1d(w);
        const outs = tf
          .engine()
          .runKernel(NormKernelNames.RmsNormGrad, { x: xt, weight: wt, dy: dyt }, {
            eps: 1e-5,
          } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        const actual = new Float32Array(R * C + C);
        actual.set(await outs[0].data(), 0);
        actual.set(await outs[1].data(), R * C);
        tf.dispose([xt, wt, dyt, ...outs]);
        const ref = normReference.rmsNormGrad(x, w, dy, 1e-5);
        const expected = new Float32Array(R * C + C);
        expected.set(ref.dx, 0);
        expected.set(ref.dweight, R * C);
        return { actual, expected, tolerance: 1e-4 * Math.sqrt(R) };
      },
    });
  }
  return cases;
}
