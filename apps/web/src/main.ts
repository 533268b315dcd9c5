// The page: open a palettized export (the shipped tiny one by default, a URL, or a folder the user
// picks), generate with streaming output on WebGPU (the cpu plugin, with a notice, where the
// browser has no WebGPU), and show tokens/s, the backend and the size report.
import '@edkm/backend-cpu';
import { type LinearRoute, setLinearRoute } from '@edkm/backend-webgpu';
import { useBackend } from '@edkm/core';
import { formatSizeReport } from '@edkm/palettized';
import {
  type FileReader,
  type GenerateResult,
  type OpenedModel,
  closeModel,
  filesReader,
  generateText,
  openModel,
  prepareModel,
  urlReader,
} from './model';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string, error = false) => {
  const el = $('status');
  el.textContent = text;
  el.className = error ? 'error' : '';
};

let backend = '';
let model: OpenedModel | undefined;

async function startBackend(): Promise<string> {
  try {
    const sel = await useBackend('webgpu');
    $('notice').textContent = '';
    return sel.description;
  } catch (err) {
    const sel = await useBackend('cpu');
    $('notice').textContent =
      `This browser has no usable WebGPU (${(err as Error).message}): generating on the CPU, much more slowly.`;
    return sel.description;
  }
}

async function open(read: FileReader, label: string): Promise<OpenedModel> {
  status(`opening ${label} …`);
  if (model) closeModel(model);
  model = undefined;
  $('size').textContent = '';
  let opened: OpenedModel;
  try {
    opened = await openModel(read);
  } catch (err) {
    status(`cannot open ${label}: ${(err as Error).message}`, true);
    throw err;
  }
  $('size').textContent = formatSizeReport(opened.size);
  // the Decoder and its kernels now, not at the first press of generate (which waits for this)
  status(`${label}: preparing the decoder …`);
  try {
    const ms = await prepareModel(opened);
    status(`${label}: ready (${backend}; decoder prepared in ${ms.toFixed(0)} ms)`);
  } catch (err) {
    closeModel(opened);
    status(`cannot prepare ${label}: ${(err as Error).message}`, true);
    throw err;
  }
  model = opened;
  return model;
}

async function generate(
  prompt: string,
  opts: { maxNewTokens?: number; temperature?: number; seed?: number } = {},
): Promise<GenerateResult & { backend: string; prepareMs?: number }> {
  if (!model) throw new Error('no model is open');
  $('output').textContent = prompt;
  status('generating …');
  const result = await generateText(model, prompt, {
    ...opts,
    greedy: opts.temperature === undefined,
    onText: (t) => {
      $('output').textContent += t;
    },
  });
  $('stats').textContent =
    `${result.ids.length} tokens · first after ${result.firstTokenMs.toFixed(0)} ms · ${result.tokensPerSecond.toFixed(1)} tokens/s · ${backend}`;
  status('done');
  return { ...result, backend, prepareMs: model.prepareMs };
}

async function onGenerate() {
  const temperature = Number($<HTMLInputElement>('temperature').value);
  try {
    await generate($<HTMLTextAreaElement>('prompt').value, {
      maxNewTokens: Number($<HTMLInputElement>('tokens').value) || 32,
      temperature: temperature > 0 ? temperature : undefined,
    });
  } catch (err) {
    status(`generation failed: ${(err as Error).message}`, true);
  }
}

const ready = (async () => {
  backend = await startBackend();
  $('backend').textContent = backend;
  $<HTMLButtonElement>('generate').onclick = onGenerate;
  $<HTMLButtonElement>('open-url').onclick = () =>
    open(urlReader($<HTMLInputElement>('url').value), $<HTMLInputElement>('url').value).catch(
      () => {},
    );
  $<HTMLInputElement>('files').onchange = (e) => {
    const files = [...((e.target as HTMLInputElement).files ?? [])];
    open(filesReader(files), `${files.length} picked files`).catch(() => {});
  };
  const params = new URLSearchParams(location.search);
  const url = params.get('model') ?? './model/';
  $<HTMLInputElement>('url').value = url;
  await open(urlReader(url), url).catch(() => {});
})();

// for scripts and the browser test: the same calls the buttons make
Object.assign(globalThis, {
  edkm: {
    ready,
    open: (url: string) => open(urlReader(url), url).then(() => undefined),
    generate,
    backend: () => backend,
    // the shape of the linear kernels on WebGPU ('auto': serial on a software adapter), to compare
    linearRoute: (route: LinearRoute) => setLinearRoute(route),
  },
});
