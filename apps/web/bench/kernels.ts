// The page's kernels timed one by one in the browser (bundled by kernels.mjs): one decoder layer of
// the open model at T rows (the prefill's shape), the LM head at one row, the argmax, and a whole
// Decoder.forward of T tokens, in the linear kernels' current shape (linearRoute).
import '@edkm/backend-cpu';
import { type LinearRoute, setLinearRoute } from '@edkm/backend-webgpu';
import {
  type HostWeight,
  cachedAttention,
  disposePackedWeight,
  kvWrite,
  packedMatMul,
  rmsNormRows,
  ropeTable,
  siluMul,
  stackHostWeights,
  tf,
  uploadHostWeight,
  useBackend,
} from '@edkm/core';
import { ropeInverseFrequencies } from '@edkm/llama';
import { palettizedSourceOf } from '@edkm/palettized';
import { closeModel, generateText, openModel, prepareModel, urlReader } from '../src/model';

/** Median milliseconds of `f` (its result read back each time), after one warm-up call. */
async function time(f: () => tf.Tensor, reps: number): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    const out = f();
    await out.data();
    out.dispose();
    return performance.now() - t0;
  };
  await once();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) ms.push(await once());
  ms.sort((a, b) => a - b);
  return Number(ms[ms.length >> 1].toFixed(2));
}

async function run(route: LinearRoute, rows: number, reps = 5): Promise<Record<string, unknown>> {
  setLinearRoute(route);
  const model = await openModel(urlReader('./model/'));
  const c = model.config;
  const result: Record<string, unknown> = { route, rows, backend: tf.getBackend() };
  result.prepareMs = Math.round(await prepareModel(model));
  const prompt = Array.from({ length: rows }, (_, i) => i + 10);
  const text = model.tokenizer.decode(prompt);
  result.promptTokens = model.tokenizer.encode(text).length;
  // a first and a second generation after preparing (prompt of `rows` ids, 2 new tokens)
  const first = async () =>
    Math.round((await generateText(model, text, { maxNewTokens: 2 })).firstTokenMs);
  result.firstTokenMs = [await first(), await first()];
  const source = palettizedSourceOf(model.file);
  const p = 'model.layers.0.';
  const upload = (names: string[]) => {
    const hosts: HostWeight[] = names.map((n) => source.matrix(n));
    return uploadHostWeight(stackHostWeights(hosts) ?? hosts[0]);
  };
  const qkvW = upload(['q_proj', 'k_proj', 'v_proj'].map((m) => `${p}self_attn.${m}.weight`));
  const oW = upload([`${p}self_attn.o_proj.weight`]);
  const guW = upload(['gate_proj', 'up_proj'].map((m) => `${p}mlp.${m}.weight`));
  const downW = upload([`${p}mlp.down_proj.weight`]);
  const headW = upload([c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight']);
  const norm = tf.tensor1d(source.vector(`${p}input_layernorm.weight`));
  const D = c.headDim;
  const length = Math.max(64, rows);
  const cache = tf.zeros([2, 1, c.numKeyValueHeads, length, D]);
  const rope = tf.tensor2d(ropeTable(length, ropeInverseFrequencies(c)), [length, D]);
  const starts = tf.zeros([1], 'int32') as tf.Tensor1D;
  const attrs = { heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, pos: 0 };
  const x = tf.randomNormal([rows, c.hiddenSize]) as tf.Tensor2D;
  const qkv = packedMatMul(x, qkvW);
  const gu = packedMatMul(x, guW);
  const h = siluMul(gu);
  const x1 = x.slice([rows - 1, 0], [1, c.hiddenSize]) as tf.Tensor2D;
  const logits = packedMatMul(x1, headW);
  const ms: Record<string, number> = {};
  ms.rmsNorm = await time(() => rmsNormRows(x, norm, c.rmsNormEps), reps);
  ms.qkv = await time(() => packedMatMul(x, qkvW), reps);
  // as the Decoder runs them: the RMSNorm fused into q/k/v, the residual add into o
  const rmsNorm = { weight: norm, eps: c.rmsNormEps };
  ms.qkvWithNorm = await time(() => packedMatMul(x, qkvW, { rmsNorm }), reps);
  ms.kvWrite = await time(() => kvWrite(cache, qkv, rope, starts, attrs), reps);
  ms.attention = await time(() => cachedAttention(qkv, cache, rope, starts, attrs), reps);
  ms.o = await time(() => packedMatMul(x, oW), reps);
  ms.oWithResidual = await time(() => packedMatMul(x, oW, { residual: x }), reps);
  ms.gateUp = await time(() => packedMatMul(x, guW), reps);
  ms.siluMul = await time(() => siluMul(gu), reps);
  ms.down = await time(() => packedMatMul(h, downW), reps);
  ms.add = await time(() => x.add(x), reps);
  ms.headOneRow = await time(() => packedMatMul(x1, headW), reps);
  ms.argMax = await time(() => tf.argMax(logits, 1), reps);
  const decoder = model.decoder;
  if (decoder)
    ms.forward = await time(() => {
      decoder.reset();
      return tf.tidy(() => decoder.forward(tf.tensor1d(Int32Array.from(prompt), 'int32'), rows));
    }, reps);
  result.ms = ms;
  tf.dispose([norm, cache, rope, starts, x, qkv, gu, h, x1, logits]);
  for (const w of [qkvW, oW, guW, downW, headW]) disposePackedWeight(w);
  closeModel(model);
  setLinearRoute('auto');
  return result;
}

Object.assign(globalThis, { kernels: { ready: useBackend('webgpu'), run } });
