// AArch64 int8 GEMM with sdot (ARMv8.2 dotprod: Cortex-A55/A76, Pi 5); kernels.h states the contract. One
// packed k-group of 4 columns is one 16-byte vector, so vdotq gives 4 int32 column sums of 4 k each: 16 MACs
// per instruction, exact for any int8 (A in [-128, 127]). The k loop takes 4 groups per step and each row's
// A[4g .. 4g+15] is one plain load used lane by lane (vdotq_laneq_s32), as the fp32 kernel does with
// vfmaq_laneq_f32.
// 8x8: 16 accumulators + 8 A vectors + 2 weight vectors per group of the 32 q-registers (GCC 12 preloads the
// 4 groups' 8: exactly 32, no spill); 8x12 would need 35 and spill. Per 4 groups 64 sdot for 8 A + 8 weight
// loads. 8 also divides MobileBERT's 128 / 512 widths.
// No contraction of a * b + c into an fma (GCC's C++ default is -ffp-contract=fast): the epilogue's roundings
// are the contract's, as in qgemm_neon.cc (which explains it). The explicit fmas (vfmaq_f32) are unaffected.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/arm/qgemm_neon_common.h"
#include "kernels/generic/qgemm_impl.h"
#include "kernels/kernels.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "qgemm_neon_dotprod.cc needs -march=armv8.2-a+dotprod"
#endif

namespace mbl::kernels::neon_dotprod {
namespace {

constexpr std::size_t kNr = kQGemmNr;
constexpr std::size_t kNq = kNr / 4;  // weight vectors per k-group
static_assert(kNr % 4 == 0, "nr must be a whole number of 4-column vectors");

#define MBL_UNROLL _Pragma("GCC unroll 16")

// k-group J of the 4 in a[m] for every row.
template <std::size_t MR, int J>
inline void step_lane(int32x4_t (&acc)[MR][kNq], const int8x16_t (&a)[MR], const std::int8_t* w) {
  int8x16_t wv[kNq];
  MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v) wv[v] = vld1q_s8(w + J * 4 * kNr + 16 * v);
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v)
      acc[m][v] = vdotq_laneq_s32(acc[m][v], wv[v], a[m], J);
}

template <std::size_t MR>
struct Tile {
  static void run(const QGemmTile& t) {
    int32x4_t acc[MR][kNq];
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v)
        acc[m][v] = vdupq_n_s32(0);
    const std::uint8_t* a = t.A;
    const std::size_t lda = t.lda;
    const std::int8_t* w = t.panel;
    std::size_t g = 0;
    for (; g + 4 <= t.K4; g += 4, w += 16 * kNr) {
      int8x16_t a4[MR];
      MBL_UNROLL for (std::size_t m = 0; m < MR; ++m)
        a4[m] = vreinterpretq_s8_u8(vld1q_u8(a + m * lda + 4 * g));
      step_lane<MR, 0>(acc, a4, w);
      step_lane<MR, 1>(acc, a4, w);
      step_lane<MR, 2>(acc, a4, w);
      step_lane<MR, 3>(acc, a4, w);
    }
    // The last 1-3 groups one at a time: 4-byte broadcasts (ld1r), so nothing past Kp is read.
    for (; g < t.K4; ++g, w += 4 * kNr) {
      int8x16_t wv[kNq];
      MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v) wv[v] = vld1q_s8(w + 16 * v);
      MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
        std::uint32_t bytes;
        std::memcpy(&bytes, a + m * lda + 4 * g, 4);
        const int8x16_t am = vreinterpretq_s8_u32(vdupq_n_u32(bytes));
        MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v) acc[m][v] = vdotq_s32(acc[m][v], wv[v], am);
      }
    }
    qneon::store_tile<MR, kNq>(t, acc);
  }
};

}  // namespace

void qgemm_ukernel(const QGemmTile& t) { qneon::dispatch_rows<Tile>(t, std::make_index_sequence<kQGemmMr>{}); }

void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed) {
  pack_qpanels<kQGemmNr>(W, N, K, packed);
}

#undef MBL_UNROLL
#undef MBL_QUNROLL

}  // namespace mbl::kernels::neon_dotprod
