// 16-lane float vector for AVX-512 (F/BW/DQ/VL). Include only from TUs compiled with the avx512 flags;
// see vec_avx2.h for why.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace mbl::kernels::avx512 {

struct Vec {
  using Reg = __m512;
  static constexpr std::size_t kWidth = 16;

  static __mmask16 mask(std::size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float v) { return _mm512_set1_ps(v); }
  // Masked-off lanes are neither read nor written (no fault past the end of a buffer).
  static Reg load(const float* p, std::size_t n) {
    return n == kWidth ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask(n), p);
  }
  static void store(float* p, Reg v, std::size_t n) {
    if (n == kWidth) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, mask(n), v);
  }
  static Reg keep(Reg v, std::size_t n) { return n == kWidth ? v : _mm512_maskz_mov_ps(mask(n), v); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  // Zero-masked extracts rather than _mm512_reduce_add_ps or _mm512_castps512_ps256: GCC 12 builds those
  // on _mm256_undefined_*(), which trips -Wmaybe-uninitialized inside its own headers.
  static float hsum(Reg v) {
    const __m256 lo = _mm512_maskz_extractf32x8_ps(0xFF, v, 0);
    const __m256 h = _mm256_add_ps(lo, _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace mbl::kernels::avx512
