// NEON GEMM microkernel, same contract and layout as the x86 ones (kernels.h GemmTile, gemm_pack_impl.h).
// AArch64 6x12: 18 q accumulators + 3 weight vectors + 6 registers of A (4 consecutive k of one row each) = 27
// of the 32; the k loop runs 4 steps per iteration, each FMA taking its A value by lane (vfmaq_laneq_f32), so A is
// read with one plain vector load per row and 4 k steps instead of lane-by-lane gathers every step.
// ARMv7 4x8: 8 accumulators + 2 weight vectors + 1 broadcast of its 16 q-registers (needs VFPv4 for
// the fused vfmaq_f32; the contract asks for one rounding per multiply-add).
// Per k: NV weight loads from the packed panel, MR scalar loads of A, MR*NV FMAs. The
// row count is a template parameter so every M tail gets its own unrolled body; the N tail goes through
// a stack tile (panel and bias are zero-padded, so loads are always full).
#include <arm_neon.h>

#include <cstddef>
#include <cstring>
#include <utility>

#include "kernels/arm/vec_neon.h"
#include "kernels/generic/gemm_pack_impl.h"
#include "kernels/kernels.h"

namespace mbl::kernels::neon {
namespace {

constexpr std::size_t kW = Vec::kWidth;
constexpr std::size_t kNr = kGemmNr;
constexpr std::size_t kNv = kNr / kW;  // weight vectors per k step
static_assert(kNr % kW == 0, "nr must be a whole number of vectors");

// Fully unrolled, as in the AVX2 kernel: a loop left rolled makes GCC keep the accumulators in memory.
#define MBL_UNROLL _Pragma("GCC unroll 16")

// clamp(v, lo, hi) exactly as the contract (and the scalar tier) writes it, with compares and selects
// rather than vmaxq/vminq: those would turn -0 into +0 under ReLU and, on ARMv7, replace a NaN's payload.
inline float32x4_t clamp(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  v = vbslq_f32(vcltq_f32(v, lo), lo, v);
  return vbslq_f32(vcgtq_f32(v, hi), hi, v);
}

#if defined(__aarch64__)
// One k step j (0..3) for every row: the weights of step j, times lane j of each row's A vector.
template <std::size_t MR, int J>
inline void step_lane(float32x4_t (&acc)[MR][kNv], const float32x4_t (&a4)[MR], const float* w) {
  float32x4_t wv[kNv];
  MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) wv[v] = vld1q_f32(w + J * kNr + v * kW);
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v)
      acc[m][v] = vfmaq_laneq_f32(acc[m][v], wv[v], a4[m], J);
}

template <std::size_t MR>
inline void step4(float32x4_t (&acc)[MR][kNv], const float32x4_t (&a4)[MR], const float* w) {
  step_lane<MR, 0>(acc, a4, w);
  step_lane<MR, 1>(acc, a4, w);
  step_lane<MR, 2>(acc, a4, w);
  step_lane<MR, 3>(acc, a4, w);
}
#endif

template <std::size_t MR>
void tile(const GemmTile& t) {
  float32x4_t acc[MR][kNv];
  float32x4_t b[kNv];
  MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) b[v] = vld1q_f32(t.bias + v * kW);
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v)
      acc[m][v] = b[v];

  const float* a = t.A;
  const std::size_t lda = t.lda;
  const float* w = t.panel;
  std::size_t k = 0;
#if defined(__aarch64__)
  // 4 k steps at a time; each row's A[k..k+3] is one vector load, lane j feeds step k+j. The FMAs happen in the
  // same order as one step at a time (k ascending per accumulator), so results are bitwise the same.
  for (; k + 4 <= t.K; k += 4) {
    float32x4_t a4[MR];
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) a4[m] = vld1q_f32(a + m * lda + k);
    step4<MR>(acc, a4, w);
    w += 4 * kNr;
  }
#endif
  for (; k < t.K; ++k, w += kNr) {
    float32x4_t wv[kNv];
    MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) wv[v] = vld1q_f32(w + v * kW);
#if defined(__aarch64__)
    // A of 4 rows gathered into the lanes of one register, then FMA by element: 2 registers for 8 rows.
    // (Broadcasting each row's A separately, GCC keeps 8 scalars live and spills 3 accumulators per k.)
    MBL_UNROLL for (std::size_t m0 = 0; m0 < MR; m0 += 4) {
      float32x4_t a4 = vld1q_dup_f32(a + m0 * lda + k);
      if (m0 + 1 < MR) a4 = vld1q_lane_f32(a + (m0 + 1) * lda + k, a4, 1);
      if (m0 + 2 < MR) a4 = vld1q_lane_f32(a + (m0 + 2) * lda + k, a4, 2);
      if (m0 + 3 < MR) a4 = vld1q_lane_f32(a + (m0 + 3) * lda + k, a4, 3);
      MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) {
        acc[m0][v] = vfmaq_laneq_f32(acc[m0][v], wv[v], a4, 0);
        if (m0 + 1 < MR) acc[m0 + 1][v] = vfmaq_laneq_f32(acc[m0 + 1][v], wv[v], a4, 1);
        if (m0 + 2 < MR) acc[m0 + 2][v] = vfmaq_laneq_f32(acc[m0 + 2][v], wv[v], a4, 2);
        if (m0 + 3 < MR) acc[m0 + 3][v] = vfmaq_laneq_f32(acc[m0 + 3][v], wv[v], a4, 3);
      }
    }
#else
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      const float32x4_t am = vld1q_dup_f32(a + m * lda + k);
      MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) acc[m][v] = vfmaq_f32(acc[m][v], am, wv[v]);
    }
#endif
  }

  const float32x4_t lo = vdupq_n_f32(t.lo), hi = vdupq_n_f32(t.hi);
  float* c = t.C;
  if (t.nr == kNr) {
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v)
        vst1q_f32(c + m * t.ldc + v * kW, clamp(acc[m][v], lo, hi));
    return;
  }
  // N tail: the rows go through a stack tile, then exactly nr floats of each are copied out.
  float buf[MR][kNr];
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v)
      vst1q_f32(&buf[m][v * kW], clamp(acc[m][v], lo, hi));
  for (std::size_t m = 0; m < MR; ++m) std::memcpy(c + m * t.ldc, buf[m], t.nr * sizeof(float));
}

template <std::size_t... MR>
void dispatch_rows(const GemmTile& t, std::index_sequence<MR...>) {
  // tile<1> .. tile<kGemmMr>, selected by t.mr; anything else touches nothing (as the x86 kernels).
  (void)((t.mr == MR + 1 ? (tile<MR + 1>(t), true) : false) || ...);
}

}  // namespace

void gemm_ukernel(const GemmTile& t) { dispatch_rows(t, std::make_index_sequence<kGemmMr>{}); }

void gemm_pack(const float* W, std::size_t N, std::size_t K, float* packed) {
  pack_panels<kGemmNr>(W, N, K, packed);
}

float fma_probe(std::size_t iters) {
  // Enough independent chains to cover FMA latency x pipes (A76: 2 x 4 cycles; A72: 2 x 5 incl. forwarding).
  constexpr int kChains = static_cast<int>(kProbeFlops / (2 * kW));
  float32x4_t acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = vdupq_n_f32(static_cast<float>(i));
  const float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-7f);
  for (std::size_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = vfmaq_f32(b, acc[i], a);
  float32x4_t s = acc[0];
  for (int i = 1; i < kChains; ++i) s = vaddq_f32(s, acc[i]);
  return Vec::hsum(s);
}

#undef MBL_UNROLL

}  // namespace mbl::kernels::neon
