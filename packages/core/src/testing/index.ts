import { getPlugin, listPlugins, reference, seededRandom, useBackend } from '@edkm/core';
import * as tf from '@tensorflow/tfjs-core';
import { codeCases } from './code-cases';
import { int8Cases } from './int8-cases';
import { int8LinearCases } from './int8-linear-cases';
import { decodeCases, linearCases } from './linear-cases';
import { matMulCases } from './matmul';
import { nearestCases } from './nearest';
import { normCases } from './norm';
import { optimCases } from './optim';
import { rowCases } from './row-cases';
import { tableCases } from './table-cases';

/** One check of one custom kernel: inputs, the reference output and how close a backend must be. */
export interface ConformanceCase {
  kernelName: string;
  name: string;
  /** Runs the kernel on the active backend; returns [actual, expected] as flat arrays. */
  run: () => Promise<{ actual: Float32Array; expected: Float32Array; tolerance: number }>;
}

export interface ConformanceResult {
  kernelName: string;
  name: string;
  passed: boolean;
  maxAbsError: number;
  message?: string;
}

export interface ConformanceReport {
  backend: string;
  results: ConformanceResult[];
  failures: ConformanceResult[];
}

/** Every conformance case of the project's custom kernels, grouped by kernel family (one file each). */
export function conformanceCases(): ConformanceCase[] {
  return [
    ...rowCases(),
    ...codeCases(),
    ...tableCases(),
    ...linearCases(),
    ...decodeCases(),
    ...optimCases(),
    ...normCases(),
    ...nearestCases(),
    ...int8Cases(),
    ...int8LinearCases(),
    ...matMulCases(seededRandom(21)),
  ];
}

/**
 * Runs every custom kernel on the named tfjs backend (or backend plugin) and compares it with the
 * plain reference. Restores the previously active backend afterwards.
 */
export async function runConformance(
  backend: string,
  cases = conformanceCases(),
): Promise<ConformanceReport> {
  const previous = tf.getBackend();
  if (getPlugin(backend)) await useBackend(backend);
  else if (!(await tf.setBackend(backend)))
    throw new Error(`backend '${backend}' could not be set`);
  const results: ConformanceResult[] = [];
  try {
    for (const c of cases) {
      try {
        const { actual, expected, tolerance } = await c.run();
        if (actual.length !== expected.length) {
          results.push({
            ...pick(c),
            passed: false,
            maxAbsError: Number.POSITIVE_INFINITY,
            message: `length ${actual.length} != ${expected.length}`,
          });
          continue;
        }
        let maxAbsError = 0;
        let worst = -1;
        for (let i = 0; i < actual.length; i++) {
          const err = Math.abs(actual[i] - expected[i]);
          if (!(err <= maxAbsError)) {
            maxAbsError = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
            worst = i;
          }
        }
        const passed = maxAbsError <= tolerance;
        results.push({
          ...pick(c),
          passed,
          maxAbsError,
          message: passed
            ? undefined
            : `element ${worst}: got ${actual[worst]}, expected ${expected[worst]} (tolerance ${tolerance})`,
        });
      } catch (err) {
        results.push({
          ...pick(c),
          passed: false,
          maxAbsError: Number.POSITIVE_INFINITY,
          message: err instanceof Error ? err.message : String(err),
        });
      }
    }
  } finally {
    if (previous && previous !== tf.getBackend()) await tf.setBackend(previous);
  }
  return { backend, results, failures: results.filter((r) => !r.passed) };
}

function pick(c: ConformanceCase): { kernelName: string; name: string } {
  return { kernelName: c.kernelName, name: c.name };
}

/**
 * The backends a test file should run its backend-dependent tests on: every registered plugin
 * whose init succeeds; one that fails is skipped and the reason reported (see `reportSkipped`).
 * With EDKM_TEST_BACKENDS=cpu,wasm,webgpu only those are used and a registered
 * one that fails to start throws, so that CI cannot silently skip WebGPU. A listed plugin that the
 * test file does not import is not tested there.
 */
export async function testBackends(): Promise<string[]> {
  const required = (globalThis as { process?: { env?: Record<string, string | undefined> } })
    .process?.env?.EDKM_TEST_BACKENDS;
  // e.g. 'cpu,wasm,webgpu' (spaces and empty entries ignored)
  const requiredNames = required
    ? new Set(
        required
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
    : undefined;
  const usable: string[] = [];
  // lowest priority last, so that the file's default backend after this call is the best one
  for (const plugin of listPlugins().reverse()) {
    if (requiredNames && !requiredNames.has(plugin.name)) continue;
    try {
      await useBackend(plugin.name);
      usable.push(plugin.name);
    } catch (err) {
      if (requiredNames) throw err;
      await reportSkipped(plugin.name, err instanceof Error ? err.message : String(err));
    }
  }
  return usable;
}

/**
 * Says why a backend's tests are skipped. Under `pnpm test` (scripts/test.mjs sets
 * EDKM_TEST_SKIP_LOG) the reason goes to that file and the runner prints each distinct reason once,
 * in one line; a file run alone by vitest prints it on stderr.
 */
async function reportSkipped(plugin: string, reason: string): Promise<void> {
  const line = `${plugin}: ${reason.replace(/\s+/g, ' ')}`;
  const log = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env?.EDKM_TEST_SKIP_LOG;
  if (log) {
    const { appendFileSync } = await import('node:fs');
    appendFileSync(log, `${line}\n`);
  } else {
    console.warn(
      `skipping the ${plugin} tests of this file (${line}); EDKM_TEST_BACKENDS=cpu,wasm,${plugin} makes this an error`,
    );
  }
}

export { seededRandom };
export { randomPalette, type PaletteCase } from './linear-cases';
export { randomFloats } from './util';
