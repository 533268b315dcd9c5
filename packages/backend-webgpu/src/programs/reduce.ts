/** WGSL: a 256-wide workgroup sum of `s` into part[0] (every invocation must call it). */
export const workgroupSum256 = `
var<workgroup> part : array<f32, 256>;
fn workgroupSum(lid : u32, s : f32) -> f32 {
  part[lid] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k = k >> 1u) {
    if (lid < k) { part[lid] = part[lid] + part[lid + k]; }
    workgroupBarrier();
  }
  let total = part[0];
  workgroupBarrier();
  return total;
}`;
