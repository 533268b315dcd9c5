;; y[r] = Σⱼ x[j] · W[r, j] for r < n: W [n, k] bf16 (two to a 32-bit word, row-major), x and y
;; float32; pointers are byte offsets into the memory tfjs-backend-wasm allocates its tensors in.
;; k a multiple of 16. Per 16 weights: two 128-bit loads of W, each widened to two f32x4 (the bf16
;; bits shifted into a float's high half), four multiply-adds with x, four accumulators.
;; Built by scripts/build-simd.mjs (wabt) into src/simd-modules.ts; SHARED is replaced by `shared`
;; for the threaded build's memory (the import line only).
(module
  (import "env" "memory" (memory 1 65536 SHARED))
  (func (export "bf16_gemv")
    (param $w i32) (param $x i32) (param $y i32) (param $n i32) (param $k i32)
    (local $r i32) (local $j i32) (local $wp i32) (local $xp i32)
    (local $v0 v128) (local $v1 v128)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local.set $wp (local.get $w))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $n)))
        (local.set $a (v128.const f32x4 0 0 0 0))
        (local.set $b (v128.const f32x4 0 0 0 0))
        (local.set $c (v128.const f32x4 0 0 0 0))
        (local.set $d (v128.const f32x4 0 0 0 0))
        (local.set $xp (local.get $x))
        (local.set $j (i32.const 0))
        (block $rowdone
          (loop $cols
            (br_if $rowdone (i32.ge_u (local.get $j) (local.get $k)))
            (local.set $v0 (v128.load (local.get $wp)))
            (local.set $v1 (v128.load offset=16 (local.get $wp)))
            (local.set $a (f32x4.add (local.get $a) (f32x4.mul
              (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v0)) (i32.const 16))
              (v128.load (local.get $xp)))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul
              (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v0)) (i32.const 16))
              (v128.load offset=16 (local.get $xp)))))
            (local.set $c (f32x4.add (local.get $c) (f32x4.mul
              (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v1)) (i32.const 16))
              (v128.load offset=32 (local.get $xp)))))
            (local.set $d (f32x4.add (local.get $d) (f32x4.mul
              (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v1)) (i32.const 16))
              (v128.load offset=48 (local.get $xp)))))
            (local.set $wp (i32.add (local.get $wp) (i32.const 32)))
            (local.set $xp (i32.add (local.get $xp) (i32.const 64)))
            (local.set $j (i32.add (local.get $j) (i32.const 16)))
            (br $cols)))
        (local.set $a (f32x4.add (f32x4.add (local.get $a) (local.get $b))
                                 (f32x4.add (local.get $c) (local.get $d))))
        (f32.store (i32.add (local.get $y) (i32.shl (local.get $r) (i32.const 2)))
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
            (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))))
