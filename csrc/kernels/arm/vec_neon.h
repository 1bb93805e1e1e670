// 4-lane float vector for NEON: AArch64 ASIMD, or ARMv7 NEON (built with -mfpu=neon-vfpv4). Include only from
// TUs compiled for NEON; see ../x86/vec_avx2.h for why.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

// Every NEON kernel promises one rounding per multiply-add (kernels.h), so ARMv7 needs VFPv4's vfmaq_f32.
#if !defined(__aarch64__) && !defined(__ARM_FEATURE_FMA)
#error "ARMv7 NEON kernels need -mfpu=neon-vfpv4 (fused multiply-add)"
#endif

namespace mbl::kernels::neon {

struct Vec {
  using Reg = float32x4_t;
  static constexpr std::size_t kWidth = 4;

  static Reg zero() { return vdupq_n_f32(0.0f); }
  static Reg set1(float v) { return vdupq_n_f32(v); }
  // NEON has no masked loads; a partial chunk goes through a small stack buffer so that exactly n floats
  // are read or written.
  static Reg load(const float* p, std::size_t n) {
    if (n == kWidth) return vld1q_f32(p);
    float tmp[kWidth] = {0.0f, 0.0f, 0.0f, 0.0f};
    std::memcpy(tmp, p, n * sizeof(float));
    return vld1q_f32(tmp);
  }
  static void store(float* p, Reg v, std::size_t n) {
    if (n == kWidth) return vst1q_f32(p, v);
    float tmp[kWidth];
    vst1q_f32(tmp, v);
    std::memcpy(p, tmp, n * sizeof(float));
  }
  static Reg keep(Reg v, std::size_t n) {
    if (n == kWidth) return v;
    static const uint32_t kLane[kWidth] = {0, 1, 2, 3};
    const uint32x4_t m = vcltq_u32(vld1q_u32(kLane), vdupq_n_u32(static_cast<uint32_t>(n)));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), m));
  }
  static Reg add(Reg a, Reg b) { return vaddq_f32(a, b); }
  static Reg sub(Reg a, Reg b) { return vsubq_f32(a, b); }
  static Reg mul(Reg a, Reg b) { return vmulq_f32(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return vfmaq_f32(c, a, b); }
  // Pairwise adds available on ARMv7 too (vaddvq_f32 is AArch64 only).
  static float hsum(Reg v) {
    float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    s = vpadd_f32(s, s);
    return vget_lane_f32(s, 0);
  }
};

}  // namespace mbl::kernels::neon
