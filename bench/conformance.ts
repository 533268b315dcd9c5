// The conformance suite on a real adapter (CI runs it on lavapipe only), plus what lavapipe never
// exercises: the GEMM's hardware tiles (128×128, split-K) at training shapes against a float64
// reference on sampled entries, and one training step's loss and gradients through the plugin's
// GEMM against tfjs's stock BatchMatMul.
// Usage: tsx conformance.ts [--backend webgpu] [--batch 32] [--seq 256] [--only NAME,NAME]
// (--only: the cases of those kernels only, e.g. PaletteMatMul, and no GEMM or step checks)
import '@edkm/backend-cpu';
import '@edkm/backend-wasm';
import { getWebGPUDeviceInfo, setMatMulRoute } from '@edkm/backend-webgpu';
import { seededRandom, tf, useBackend } from '@edkm/core';
import { conformanceCases, runConformance } from '@edkm/core/testing';
import { defaultModelDir, loadLlama } from '@edkm/llama';
import { type Form, argNumber, argValue, gemmSides, printJson } from './util';

const selection = await useBackend(argValue('backend') ?? 'auto');
const only = argValue('only')?.split(',');
const report = await runConformance(
  selection.plugin,
  only ? conformanceCases().filter((c) => only.includes(c.kernelName)) : undefined,
);
if (only && report.results.length === 0)
  throw new Error(`--only ${only.join(',')}: no conformance case has that kernel name`);
process.stderr.write(
  `conformance: ${report.results.length - report.failures.length}/${report.results.length} passed\n`,
);

/** Largest |ours − float64| over 256 sampled entries, relative to the entries' scale √k. */
async function gemmCheck(m: number, k: number, n: number, form: Form) {
  const rnd = seededRandom(m * 7 + k * 3 + n);
  const av = Float32Array.from({ length: m * k }, () => rnd() * 2 - 1);
  const bv = Float32Array.from({ length: k * n }, () => rnd() * 2 - 1);
  const { got, ref } = await gemmSides(av, bv, m, k, n, form);
  let worst = 0;
  for (let s = 0; s < 256; s++) {
    // the corners and edges of tiles are where a bad bound or a race shows first
    const i = s < 4 ? [0, m - 1, 0, m - 1][s] : Math.floor(rnd() * m);
    const j = s < 4 ? [0, 0, n - 1, n - 1][s] : Math.floor(rnd() * n);
    worst = Math.max(worst, Math.abs(got[i * n + j] - ref(i, j)) / Math.sqrt(k));
  }
  return worst;
}

const gemm: { shape: string; form: Form; relError: number; passed: boolean }[] = [];
if (selection.tfjsBackend === 'webgpu' && !only) {
  const shapes: [number, number, number][] = [
    [8192, 256, 688], // edkm-tiny at 32×256 tokens: forward (128×128 tiles)
    [256, 8192, 688], // weight gradient: split-K
    [8192, 688, 256],
    [2048, 4096, 4096], // LLaMA-7B layer at 2048 tokens
    [4096, 2048, 11008],
    [1000, 300, 130], // ragged everything
  ];
  // a software adapter (lavapipe) takes minutes for these: there only the ragged one
  const run = getWebGPUDeviceInfo()?.software ? shapes.slice(-1) : shapes;
  for (const [m, k, n] of run)
    for (const form of ['NN', 'NT', 'TN', 'TT'] as Form[]) {
      const relError = await gemmCheck(m, k, n, form);
      gemm.push({ shape: `${m}x${k}x${n}`, form, relError, passed: relError < 1e-5 });
    }
}

/** Loss and gradients of one step of the shipped model: the plugin's GEMM against stock. */
async function stepCompare() {
  if (selection.tfjsBackend !== 'webgpu' || only) return undefined;
  const batch = argNumber('batch', 32);
  const seq = argNumber('seq', 256);
  const { model } = loadLlama(argValue('model') ?? defaultModelDir());
  const ids = Array.from({ length: batch }, (_, b) =>
    Array.from({ length: seq }, (_, t) => 3 + ((b * 131 + t * 17) % 4000)),
  );
  const weights = model.getWeights();
  const names = [...weights.keys()];
  const vars = names.map((n) => weights.get(n)! as tf.Variable);
  const run = async (route: 'gemm' | 'stock') => {
    setMatMulRoute(route);
    const { value, grads } = tf.variableGrads(() => model.loss(ids, ids), vars);
    const out = {
      loss: (await value.data())[0],
      grads: await Promise.all(vars.map((v) => grads[v.name].data() as Promise<Float32Array>)),
    };
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  };
  const ours = await run('gemm');
  const stock = await run('stock');
  setMatMulRoute('auto');
  const worst = names
    .map((name, i) => {
      let num = 0;
      let den = 0;
      const x = ours.grads[i];
      const y = stock.grads[i];
      for (let j = 0; j < x.length; j++) {
        num += (x[j] - y[j]) ** 2;
        den += y[j] ** 2;
      }
      return { name, relError: Math.sqrt(num / Math.max(den, 1e-30)) };
    })
    .sort((a, b) => b.relError - a.relError);
  model.dispose();
  return {
    batch,
    seq,
    loss: { gemm: ours.loss, stock: stock.loss },
    worstGradients: worst.slice(0, 8),
    passed: Math.abs(ours.loss - stock.loss) < 1e-4 && worst[0].relError < 1e-3,
  };
}

const step = await stepCompare();
printJson({
  bench: 'conformance',
  backend: selection.description,
  device: getWebGPUDeviceInfo(),
  passed: report.failures.length === 0 && gemm.every((g) => g.passed) && (step?.passed ?? true),
  kernels: { cases: report.results.length, failures: report.failures },
  gemm,
  step,
});
