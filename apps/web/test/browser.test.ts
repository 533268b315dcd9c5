// The page in a real browser (Debian's chromium, headless, WebGPU on SwiftShader where there is
// no GPU): greedy tokens equal the CLI's on the same export and prompt, the backend is WebGPU, and
// bad folders give a message in the page. Without a chromium this file is skipped (one line says
// why) unless EDKM_TEST_BROWSER=1 asks for it (CI), when a missing browser is an error.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = join(__dirname, '..');
const repo = join(here, '../..');
const chromium = [process.env.EDKM_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => !!p && existsSync(p),
);
const required = process.env.EDKM_TEST_BROWSER === '1';
if (!chromium && !required)
  console.log(
    'apps/web browser test skipped: no chromium (apt install chromium; CI sets EDKM_TEST_BROWSER=1)',
  );

const PROMPT = 'KING RICHARD III:\nNow is the winter of our discontent';
const NEW_TOKENS = 12;

describe.skipIf(!chromium && !required)('the web page in chromium', () => {
  const root = mkdtempSync(join(tmpdir(), 'edkm-web-'));
  let server: Server;
  let url: string;
  let browser: Browser | undefined;
  let page: Page;

  beforeAll(async () => {
    if (!chromium) throw new Error('EDKM_TEST_BROWSER=1 but no chromium was found (EDKM_CHROMIUM)');
    const dist = join(here, 'dist');
    if (!existsSync(join(dist, 'main.js'))) throw new Error('apps/web is not built (pnpm build)');
    for (const f of ['index.html', 'main.js']) copyFileSync(join(dist, f), join(root, f));
    // the shipped model exported at 3 bits (round-to-nearest per row: seconds, LUTs and scales)
    const edkm = (...args: string[]) => {
      const r = spawnSync(process.execPath, [join(repo, 'scripts/edkm.mjs'), ...args], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`edkm ${args[0]} failed: ${r.stderr}`);
      return r.stdout;
    };
    edkm(
      'export',
      ...['--model', join(repo, 'models/edkm-tiny'), '--method', 'rtn', '--bits', '3'],
      ...['--out', join(root, 'model'), '--backend', 'cpu'],
    );
    // bad folders: no config, a 16-bit model, a truncated export
    mkdirSync(join(root, 'empty'));
    cpSync(join(repo, 'models/edkm-tiny'), join(root, 'dense'), { recursive: true });
    cpSync(join(root, 'model'), join(root, 'truncated'), { recursive: true });
    const st = readFileSync(join(root, 'model/model.safetensors'));
    writeFileSync(join(root, 'truncated/model.safetensors'), st.subarray(0, st.length >> 1));

    const { serveStatic } = await import('../serve.mjs');
    ({ server, url } = await serveStatic(root));
    const { default: puppeteer } = await import('puppeteer-core');
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
    });
    page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction('globalThis.edkm', { timeout: 60_000 });
    await page.evaluate('globalThis.edkm.ready');
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('generates the CLI greedy tokens on WebGPU, and takes a screenshot', async () => {
    const cli = spawnSync(
      process.execPath,
      [
        join(repo, 'scripts/edkm.mjs'),
        ...['generate', '--model', join(root, 'model'), '--prompt', PROMPT],
        ...['--max-new-tokens', String(NEW_TOKENS), '--greedy', '--json', '--backend', 'cpu'],
      ],
      { encoding: 'utf8' },
    );
    expect(cli.status).toBe(0);
    const expected = JSON.parse(cli.stdout.trim().split('\n').pop()!);
    const generate = () =>
      page.evaluate(
        (p: string, n: number) =>
          (
            globalThis as unknown as {
              edkm: { generate(p: string, o: object): Promise<Record<string, unknown>> };
            }
          ).edkm.generate(p, { maxNewTokens: n }),
        PROMPT,
        NEW_TOKENS,
      );
    const linearRoute = (route: string) =>
      page.evaluate(
        (r: string) =>
          (globalThis as unknown as { edkm: { linearRoute(r: string): void } }).edkm.linearRoute(r),
        route,
      );
    // opening the model made its Decoder and compiled the kernels (prepareMs); generate reuses them
    const first = await generate();
    expect(first.backend).toMatch(/^webgpu/);
    expect(first.prepareMs).toBeGreaterThan(0);
    expect(first.decoderMs).toBeLessThan(first.prepareMs as number);
    expect(first.ids).toEqual(expected.ids);
    expect(await page.$eval('#output', (e: Element) => e.textContent)).toBe(PROMPT + expected.text);
    const again = await generate();
    expect(again.ids).toEqual(expected.ids);
    const ms = (r: Record<string, unknown>) => Math.round(r.firstTokenMs as number);
    console.log(
      `apps/web in chromium: ${first.backend}; first token after ${ms(first)} ms (Decoder made and kernels compiled when the model opened, ${Math.round(first.prepareMs as number)} ms), ${ms(again)} ms on a second generation, ${(again.tokensPerSecond as number).toFixed(2)} tokens/s`,
    );
    // EDKM_WEB_COMPARE=1: the same generations with the linear kernels in the GPU ('reduce') shape
    if (process.env.EDKM_WEB_COMPARE === '1') {
      await linearRoute('reduce');
      try {
        const cold = await generate();
        const warm = await generate();
        expect(cold.ids).toEqual(expected.ids);
        expect(warm.ids).toEqual(expected.ids);
        console.log(
          `apps/web in chromium, linear kernels in the reduce shape: first token after ${ms(cold)} ms (new kernels compiled), ${ms(warm)} ms on a second generation, ${(warm.tokensPerSecond as number).toFixed(2)} tokens/s`,
        );
      } finally {
        await linearRoute('auto');
      }
    }
    const shot = (process.env.EDKM_WEB_SCREENSHOT ?? join(root, 'page.png')) as `${string}.png`;
    await page.screenshot({ path: shot, fullPage: true });
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
  }, 240_000);

  it.each([
    ['empty', /has no config\.json/],
    ['dense', /not a palettized export/],
    ['truncated', /truncated|runs past the end|past the end/],
  ])(
    'a bad folder (%s) shows a clear message in the page',
    async (dir, message) => {
      await page.evaluate((u: string) => {
        const api = (globalThis as unknown as { edkm: { open(u: string): Promise<void> } }).edkm;
        return api.open(u).catch(() => {});
      }, `./${dir}/`);
      const status = await page.$eval('#status', (e: Element) => ({
        text: e.textContent,
        error: e.className === 'error',
      }));
      expect(status.error).toBe(true);
      expect(status.text).toMatch(message);
    },
    60_000,
  );
});
