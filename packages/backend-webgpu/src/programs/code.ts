/** WGSL: the 16-bit code of a float32 (round to nearest even; NaN quieted), as in @edkm/core's half.ts. */
export function codeFunction(dtype: 'bf16' | 'fp16'): string {
  if (dtype === 'bf16') {
    return `
      fn edkmCode(v : f32) -> i32 {
        let b = bitcast<u32>(v);
        if ((b & 0x7fffffffu) > 0x7f800000u) { return i32(((b >> 16u) | 0x40u) & 0xffffu); }
        return i32(((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu);
      }`;
  }
  return `
      fn edkmCode(v : f32) -> i32 {
        let x = bitcast<u32>(v);
        let sign = (x >> 16u) & 0x8000u;
        let a = x & 0x7fffffffu;
        if (a >= 0x7f800000u) {
          return i32(sign | 0x7c00u | select(0u, 0x200u | ((a >> 13u) & 0x3ffu), a > 0x7f800000u));
        }
        if (a >= 0x477ff000u) { return i32(sign | 0x7c00u); }
        if (a < 0x38800000u) {
          if (a < 0x33000000u) { return i32(sign); }
          let shift = 126u - (a >> 23u);
          let m = (a & 0x7fffffu) | 0x800000u;
          let h = m >> shift;
          let rem = m & ((1u << shift) - 1u);
          let halfway = 1u << (shift - 1u);
          var r = h;
          if (rem > halfway || (rem == halfway && (h & 1u) == 1u)) { r = h + 1u; }
          return i32(sign | r);
        }
        let reb = a - 0x38000000u;
        return i32(sign | ((reb + 0x0fffu + ((reb >> 13u) & 1u)) >> 13u));
      }`;
}
