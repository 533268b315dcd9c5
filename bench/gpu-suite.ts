export {};
// One entry for the GPU machine (packed with gpu-pack): `run.sh <bench> [flags]`.
const benches: Record<string, () => Promise<unknown>> = {
  'gpu-info': () => import('./gpu-info'),
  'dkm-layer': () => import('./dkm-layer'),
  marshal: () => import('./marshal'),
  llama: () => import('./llama'),
  layer7b: () => import('./layer7b'),
  generate: () => import('./generate'),
  eval: () => import('./eval'),
  scale: () => import('./scale'),
  'hf-logits': () => import('./hf-logits'),
  dispatch: () => import('./dispatch'),
  'decode-ops': () => import('./decode-ops'),
  bandwidth: () => import('./bandwidth'),
  gemm: () => import('./gemm'),
  int8: () => import('./int8'),
  split: () => import('./split'),
  conformance: () => import('./conformance'),
  // the app's command line: `run.sh edkm demo --backend webgpu …`, `run.sh edkm finetune …`
  edkm: () =>
    import('../apps/edkm/src/cli').then((cli) =>
      cli.main(['node', 'edkm', ...process.argv.slice(3)]),
    ),
};
const name = process.argv[2];
const bench = benches[name];
if (!bench) {
  process.stderr.write(`usage: gpu-suite <${Object.keys(benches).join('|')}> [flags]\n`);
  process.exit(2);
}
await bench();
