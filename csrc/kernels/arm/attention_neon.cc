// Attention for NEON: generic/attention_impl.h with this ISA's Vec plus the few extra ops it needs.
// Tiles (scores R x C vectors; P V RP x CP vectors):
//   AArch64 4 x 4: 16 accumulators + 4 key vectors + 1 broadcast of the 32 q-registers (4 rows x 16 keys);
//   ARMv7   4 x 2: 8 accumulators + 2 key vectors + 1 broadcast of its 16 (4 rows x 8 keys).
// ARMv7 NEON has no across-lane max; see hmax(). ARMv7 NEON arithmetic also flushes subnormals to zero
// (architecturally, whatever FPSCR says), so an exp that should be subnormal (x < -87.3) comes out as 0
// there: an absolute error below 2^-126, invisible after the softmax.
#include <arm_neon.h>

#include <cstddef>

#include "kernels/arm/vec_neon.h"
#include "kernels/kernels.h"

namespace mbl::kernels::neon {
namespace {

struct AttnVec : Vec {
  // x86 semantics (attention_impl.h): a > b ? a : b returns b when either is NaN. vmaxq/vminq would
  // return NaN instead, and differ on -0 vs +0.
  static Reg min(Reg a, Reg b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  static Reg max(Reg a, Reg b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static float hmax(Reg v) {
#if defined(__aarch64__)
    return vmaxvq_f32(v);
#else
    float32x2_t m = vpmax_f32(vget_low_f32(v), vget_high_f32(v));
    m = vpmax_f32(m, m);
    return vget_lane_f32(m, 0);
#endif
  }
  // p * 2^n as p * 2^(n >> 1) * 2^(n - (n >> 1)), as on x86: both factors are normal for n in [-150, 129]
  // and the first product is exact, so the result is rounded once. n is integer-valued, so the truncating
  // conversion is exact.
  static Reg scale2(Reg p, Reg n) {
    const int32x4_t ni = vcvtq_s32_f32(n);
    const int32x4_t n1 = vshrq_n_s32(ni, 1);
    const int32x4_t n2 = vsubq_s32(ni, n1);
    const int32x4_t bias = vdupq_n_s32(127);
    const Reg f1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    const Reg f2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    return vmulq_f32(vmulq_f32(p, f1), f2);
  }
};

}  // namespace
}  // namespace mbl::kernels::neon

#include "kernels/generic/attention_impl.h"

namespace mbl::kernels::neon {

#if defined(__aarch64__)
void attention_head(const AttentionHead& a) { attention_head_impl<AttnVec, 4, 4, 4, 4>(a); }
#else
void attention_head(const AttentionHead& a) { attention_head_impl<AttnVec, 4, 2, 4, 2>(a); }
#endif
void exp_row(const float* x, float* y, std::size_t n) { exp_rows<AttnVec>(x, y, n); }

}  // namespace mbl::kernels::neon
