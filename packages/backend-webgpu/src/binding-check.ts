import { BackendError, DeviceLimitError, tf } from '@edkm/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

function binarySize(bytes: number): string {
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

/**
 * WebGPU binds each tensor as one storage buffer, and a binding larger than the device's
 * maxStorageBufferBindingSize fails validation without stopping tfjs (the kernel then reads and
 * writes nothing). Every project kernel checks its tensors first and says what to do instead.
 */
export function withBindingCheck(kernelName: string, kernelFunc: tf.KernelFunc): tf.KernelFunc {
  const check = (gpu: WebGPUBackend, t: tf.TensorInfo, role: string) => {
    const limit = gpu.device.limits.maxStorageBufferBindingSize;
    const bytes =
      tf.util.sizeFromShape(t.shape) * (t.dtype === 'float32' || t.dtype === 'int32' ? 4 : 1);
    if (bytes > limit)
      throw new DeviceLimitError(
        `${kernelName}: its ${role} [${t.shape}] is ${binarySize(bytes)}, over this WebGPU device's ${binarySize(limit)} storage-binding limit; palettize the weight in row groups (groupSize) small enough to fit, or use a device with a larger limit`,
      );
  };
  return (args) => {
    const gpu = args.backend as WebGPUBackend;
    for (const [name, t] of Object.entries(args.inputs))
      if (t) check(gpu, t as tf.TensorInfo, `input '${name}'`);
    const out = kernelFunc(args) as tf.TensorInfo | tf.TensorInfo[];
    const outs = Array.isArray(out) ? out : [out];
    try {
      for (const o of outs) check(gpu, o, 'output');
    } catch (err) {
      for (const o of outs) gpu.disposeData(o.dataId);
      throw err;
    }
    return out;
  };
}
