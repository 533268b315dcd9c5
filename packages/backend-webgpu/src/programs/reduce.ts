/** WGSL: the shared scratch of `workgroupReduce` (declare it once per shader, at module scope). */
export const reduceScratch = 'var<workgroup> red : array<f32, 256>;';

/**
 * WGSL statements: the sum of `value` over a workgroup of 256 invocations, as a tree in shared
 * memory (a fixed order: deterministic), left in `red[0]`; then, with `onTotal`, invocation 0 runs
 * it and the workgroup waits for it. Every invocation must reach it; needs `tid : i32` (the local
 * index) and `reduceScratch`.
 */
export function workgroupReduce(value: string, onTotal?: string): string {
  const sum = `
        red[tid] = ${value};
        workgroupBarrier();
        for (var stride = 128; stride > 0; stride = stride / 2) {
          if (tid < stride) { red[tid] = red[tid] + red[tid + stride]; }
          workgroupBarrier();
        }`;
  if (onTotal === undefined) return sum;
  return `${sum}
        if (tid == 0) { ${onTotal} }
        workgroupBarrier();`;
}

/** WGSL: `workgroupSum(lid, s)`, the 256-wide workgroup sum of `s` to every invocation (every invocation must call it). */
export const workgroupSum256 = `
${reduceScratch}
fn workgroupSum(lid : u32, s : f32) -> f32 {
  let tid = i32(lid);
  ${workgroupReduce('s')}
  let total = red[0];
  workgroupBarrier();
  return total;
}`;
