// The ymm pieces shared by the AVX2-class int8 GEMMs (avx2, avx2_vnni): the dequantising epilogue of a tile
// and the per-row-count dispatch. Include only from TUs built with at least -mavx2 -mfma; the anonymous
// namespace gives each TU its own copy under its own flags (as qgemm_impl.h).
#pragma once

#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/kernels.h"

namespace mbl::kernels {
namespace {

#define MBL_QUNROLL _Pragma("GCC unroll 16")

// Lane j all-ones iff j < n, for 0 <= n <= 8: a window into 8 ones followed by 8 zeros.
inline __m256i qmask8(std::size_t n) {
  static const std::int32_t kOnesThenZeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kOnesThenZeros + 8 - n));
}

// C = clamp(fma(float(acc), a_scale[m] * w_scale[n], fma(a_zero[m], w_sum[n], bias[n])), lo, hi) for a tile
// of MR rows x NV*8 columns, of which t.nr are stored. w_scale, w_sum and bias are padded to NV*8, so their
// loads are full.
template <std::size_t MR, std::size_t NV>
inline void qstore_tile_avx2(const QGemmTile& t, __m256i (&acc)[MR][NV]) {
  __m256 ws[NV], wz[NV], bs[NV];
  MBL_QUNROLL for (std::size_t v = 0; v < NV; ++v) {
    ws[v] = _mm256_loadu_ps(t.w_scale + 8 * v);
    wz[v] = _mm256_loadu_ps(t.w_sum + 8 * v);
    bs[v] = _mm256_loadu_ps(t.bias + 8 * v);
  }
  // max(lo, v) then min(hi, v): the second operand wins on unordered, so NaN passes as the contract says.
  const __m256 lo = _mm256_set1_ps(t.lo), hi = _mm256_set1_ps(t.hi);
  const bool full = t.nr == NV * 8;
  __m256i keep[NV];  // masked-off lanes are never written (vmaskmovps only for a partial panel: slow on AMD)
  MBL_QUNROLL for (std::size_t v = 0; v < NV; ++v) {
    const std::size_t n = t.nr > 8 * v ? t.nr - 8 * v : 0;
    keep[v] = qmask8(n < 8 ? n : 8);
  }
  float* c = t.C;
  MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) {
    const __m256 as = _mm256_set1_ps(t.a_scale[m]), az = _mm256_set1_ps(t.a_zero[m]);
    MBL_QUNROLL for (std::size_t v = 0; v < NV; ++v) {
      const __m256 off = _mm256_fmadd_ps(az, wz[v], bs[v]);
      __m256 r = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[m][v]), _mm256_mul_ps(as, ws[v]), off);
      r = _mm256_min_ps(hi, _mm256_max_ps(lo, r));
      if (full) _mm256_storeu_ps(c + m * t.ldc + 8 * v, r);
      else _mm256_maskstore_ps(c + m * t.ldc + 8 * v, keep[v], r);
    }
  }
}

// Tile<1> .. Tile<MAX>(t) by t.mr: each row count gets its own fully unrolled body.
template <template <std::size_t> class Tile, std::size_t... I>
constexpr std::array<qgemm_ukernel_fn, sizeof...(I)> qtile_table(std::index_sequence<I...>) {
  return {&Tile<I + 1>::run...};
}

}  // namespace
}  // namespace mbl::kernels
