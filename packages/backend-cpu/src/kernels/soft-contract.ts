import { type SoftContractAttrs, fromHalfBits, tableReference, type tf } from '@edkm/core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { codesOf, values } from './util';

/**
 * The soft-contraction seed. Every term depends on a weight only through its 16-bit code, so the
 * upstream gradient is first summed per code (O(N), float64) and the attention is computed once
 * per present code (≤ 65,536 × K), not once per weight as the per-weight reference does.
 */
export const softContract: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const cpu = backend as MathBackendCPU;
  const { x, g, centroids } = inputs as Record<string, tf.TensorInfo>;
  const { dtype, tau } = attrs as unknown as SoftContractAttrs;
  const k = centroids.shape[1];
  const codes = codesOf(cpu, x, attrs);
  const up = values(cpu, g) as Float32Array;
  const gByCode = new Float64Array(65536);
  const present = new Uint8Array(65536);
  for (let i = 0; i < codes.length; i++) {
    gByCode[codes[i]] += up[i];
    present[codes[i]] = 1;
  }
  const presentCodes: number[] = [];
  for (let c = 0; c < 65536; c++) if (present[c]) presentCodes.push(c);
  const codeValues = fromHalfBits(Uint16Array.from(presentCodes), dtype);
  const out = tableReference.softContract(
    codeValues,
    Float64Array.from(presentCodes, (c) => gByCode[c]),
    values(cpu, centroids) as Float32Array,
    k,
    tau,
  );
  return cpu.makeTensorInfo([2 * k], 'float32', out);
};
