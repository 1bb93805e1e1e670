// 8-lane float vector for AVX2 + FMA. Include only from TUs compiled with the avx2 flags (-mavx2 -mfma):
// the member functions are inline with external linkage, which is safe only because every TU that
// defines them is compiled for the same ISA and they live in this ISA's own namespace.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace mbl::kernels::avx2 {

struct Vec {
  using Reg = __m256;
  static constexpr std::size_t kWidth = 8;

  // Lane j of mask(n) is all-ones iff j < n: a window into 8 ones followed by 8 zeros.
  static __m256i mask(std::size_t n) {
    static const int32_t kOnesThenZeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kOnesThenZeros + 8 - n));
  }

  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float v) { return _mm256_set1_ps(v); }
  // maskload/maskstore never touch memory in masked-off lanes, so a tail cannot fault or clobber.
  static Reg load(const float* p, std::size_t n) {
    return n == kWidth ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask(n));
  }
  static void store(float* p, Reg v, std::size_t n) {
    if (n == kWidth) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask(n), v);
  }
  static Reg keep(Reg v, std::size_t n) {
    return n == kWidth ? v : _mm256_and_ps(v, _mm256_castsi256_ps(mask(n)));
  }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(Reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace mbl::kernels::avx2
