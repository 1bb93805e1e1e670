// Pieces shared by the NEON int8 ukernels (qgemm_neon.cc, qgemm_neon_dotprod.cc): the epilogue of
// kernels.h QGemmTile from per-row int32 sums of 4 columns, and the row-count dispatch. Everything is in an
// anonymous namespace: each ISA object keeps its own copy built with its own flags (no sdot leaking into
// the baseline through a shared inline symbol; see /work/shared/reference/arm_testing.md).
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/kernels.h"

namespace mbl::kernels {
namespace {
namespace qneon {

#define MBL_QUNROLL _Pragma("GCC unroll 16")

// a > b per lane, false for NaN.
inline uint32x4_t greater(float32x4_t a, float32x4_t b) {
#if defined(__aarch64__)
  return vcgtq_f32(a, b);
#else
  // GCC writes vcgtq_f32 as a > b and, NEON float compares not being IEEE (flush to zero) unless
  // -funsafe-math-optimizations, lowers it to 4 scalar VFP compares; the NEON instruction is what we want.
  uint32x4_t r;
  asm("vcgt.f32 %q0, %q1, %q2" : "=w"(r) : "w"(a), "w"(b));
  return r;
#endif
}

// As gemm_neon.cc: compares and selects, so -0 and NaN pass through as the scalar clamp lets them.
inline float32x4_t clamp(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  v = vbslq_f32(greater(lo, v), lo, v);
  return vbslq_f32(greater(v, hi), hi, v);
}

// C = clamp(fma(float(acc + comp), a_scale[m] * w_scale[n], fma(a_zero[m], w_sum[n], bias[n])), lo, hi) for
// sums[m][q] = columns 4q..4q+3 of row m. comp, w_scale, w_sum and bias hold nr_max entries, so their loads are
// whole vectors. vcvtq_f32_s32 rounds to nearest even; vmulq_n_f32 is the one float32 product a_scale * w_scale;
// the two vfmaq_f32 are the two fused roundings, inner first. ARMv7 NEON flushes subnormals (as the fp32
// kernel there): only outputs, scales, zeros, w_sum or bias below 2^-126 can differ.
template <std::size_t MR, std::size_t NQ>
inline void store_tile(const QGemmTile& t, const int32x4_t (&sums)[MR][NQ]) {
  constexpr std::size_t kNr = 4 * NQ;
  const float32x4_t lo = vdupq_n_f32(t.lo), hi = vdupq_n_f32(t.hi);
  float32x4_t out[MR][NQ];
  MBL_QUNROLL for (std::size_t q = 0; q < NQ; ++q) {
    const int32x4_t comp = vld1q_s32(t.comp + 4 * q);
    const float32x4_t ws = vld1q_f32(t.w_scale + 4 * q), wsum = vld1q_f32(t.w_sum + 4 * q),
                      bias = vld1q_f32(t.bias + 4 * q);
    MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) {
      const float32x4_t acc = vcvtq_f32_s32(vaddq_s32(sums[m][q], comp));
      const float32x4_t base = vfmaq_f32(bias, wsum, vdupq_n_f32(t.a_zero[m]));  // a_zero * w_sum + bias
      out[m][q] = clamp(vfmaq_f32(base, acc, vmulq_n_f32(ws, t.a_scale[m])), lo, hi);
    }
  }
  float* c = t.C;
  if (t.nr == kNr) {
    MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) MBL_QUNROLL for (std::size_t q = 0; q < NQ; ++q)
        vst1q_f32(c + m * t.ldc + 4 * q, out[m][q]);
    return;
  }
  // N tail: exactly nr floats per row leave the stack tile.
  float buf[MR][kNr];
  MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) MBL_QUNROLL for (std::size_t q = 0; q < NQ; ++q)
      vst1q_f32(&buf[m][4 * q], out[m][q]);
  for (std::size_t m = 0; m < MR; ++m) std::memcpy(c + m * t.ldc, buf[m], t.nr * sizeof(float));
}

// TILE<1> .. TILE<MR_MAX> selected by t.mr (one fully unrolled body per row count); anything else touches
// nothing, as the other ukernels.
template <template <std::size_t> class TILE, std::size_t... MR>
inline void dispatch_rows(const QGemmTile& t, std::index_sequence<MR...>) {
  (void)((t.mr == MR + 1 ? (TILE<MR + 1>::run(t), true) : false) || ...);
}

}  // namespace qneon
}  // namespace
}  // namespace mbl::kernels
