/**
 * Where the plugin's subgroup kernels (the decode GEMV, CachedAttention on subgroups) may run:
 * what the device offers, set once by init(), and each kernel's mode. 'auto': on a hardware
 * adapter with the `subgroups` feature; 'on': also on a software one (the tests, on lavapipe);
 * 'off': never.
 */
export type SubgroupMode = 'auto' | 'on' | 'off';

let device = {
  subgroups: false,
  software: false,
  invocations: 256,
  workgroupStorage: 16384,
  subgroupMinSize: 4,
  subgroupMaxSize: 128,
};

/**
 * The device's `subgroups` feature, whether it is a software rasteriser, its workgroup size limit
 * and its smallest and largest subgroup sizes (WebGPU's 4 and 128 where the adapter does not say).
 */
export function setSubgroupDevice(d: {
  subgroups: boolean;
  software: boolean;
  invocations: number;
  /** maxComputeWorkgroupStorageSize (WebGPU's 16,384 where not given). */
  workgroupStorage?: number;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}): void {
  device = {
    ...d,
    workgroupStorage: d.workgroupStorage || 16384,
    subgroupMinSize: d.subgroupMinSize || 4,
    subgroupMaxSize: d.subgroupMaxSize || 128,
  };
}

/** Whether a subgroup kernel in `mode` runs on this device. */
export function subgroupKernelOn(mode: SubgroupMode): boolean {
  return device.subgroups && (mode === 'on' || (mode === 'auto' && !device.software));
}

/** Whether the device is a software rasteriser (lavapipe, SwiftShader). */
export function softwareDevice(): boolean {
  return device.software;
}

/** The device's maxComputeWorkgroupStorageSize. */
export function maxWorkgroupStorage(): number {
  return device.workgroupStorage;
}

/** The device's maxComputeInvocationsPerWorkgroup. */
export function maxInvocations(): number {
  return device.invocations;
}

/** The device's largest subgroup size (128 where unknown). */
export function maxSubgroupSize(): number {
  return device.subgroupMaxSize;
}

/** The device's smallest subgroup size (4 where unknown). */
export function minSubgroupSize(): number {
  return device.subgroupMinSize;
}
