// The int8 GEMM pieces written once (kernels/kernels.h states the contract): the weight packer over the
// panel width NR, a portable ukernel and the activation quantiser. The scalar tier is exactly these; SIMD
// tiers instantiate the packer with their own NR and may use the portable parts as their reference. Anonymous
// namespace for the same reason as rowops_impl.h: each ISA object keeps a private copy built with its flags.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "kernels/kernels.h"

namespace mbl::kernels {
namespace {

inline std::size_t round_up4(std::size_t k) { return (k + 3) / 4 * 4; }

template <std::size_t NR>
void pack_qpanels(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed) {
  const std::size_t Kp = round_up4(K);
  for (std::size_t n0 = 0; n0 < N; n0 += NR) {
    std::int8_t* panel = packed + n0 * Kp;
    for (std::size_t g = 0; g < Kp / 4; ++g)
      for (std::size_t c = 0; c < NR; ++c)
        for (std::size_t i = 0; i < 4; ++i) {
          const std::size_t n = n0 + c, k = 4 * g + i;
          panel[(g * NR + c) * 4 + i] = (n < N && k < K) ? W[n * K + k] : std::int8_t{0};
        }
  }
}

// The row statistics of the quantiser: lo, hi and whether every y is finite.
struct RowRange {
  float lo, hi;
  bool finite;
};

inline RowRange row_range(const float* x, const float* smooth, std::size_t K) {
  RowRange r{std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), true};
  for (std::size_t k = 0; k < K; ++k) {
    const float y = smooth ? x[k] * smooth[k] : x[k];
    if (!std::isfinite(y)) r.finite = false;
    r.lo = y < r.lo ? y : r.lo;
    r.hi = y > r.hi ? y : r.hi;
  }
  return r;
}

// One row: scale, zero and bytes, given its range. The rounding is rint in the default (to nearest even) mode.
inline void quantize_row_portable(const float* x, const float* smooth, std::size_t K, RowRange r, int a_offset,
                                  std::uint8_t* q, float* scale, float* zero) {
  const std::size_t Kp = round_up4(K);
  const auto zero_byte = static_cast<std::uint8_t>(a_offset);
  const float range = r.hi - r.lo;
  const float inv = 255.0f / range;
  if (!r.finite || !std::isfinite(range) || !std::isfinite(inv)) {
    const bool constant = r.finite && std::isfinite(range);  // range 0, or so small that inv overflows
    *scale = constant ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    *zero = constant ? r.lo : std::numeric_limits<float>::quiet_NaN();
    for (std::size_t k = 0; k < Kp; ++k) q[k] = zero_byte;
    return;
  }
  *scale = range / 255.0f;
  *zero = r.lo + 128.0f * *scale;
  for (std::size_t k = 0; k < K; ++k) {
    const float y = smooth ? x[k] * smooth[k] : x[k];
    float u = std::nearbyint((y - r.lo) * inv);
    u = u < 0.0f ? 0.0f : (u > 255.0f ? 255.0f : u);
    q[k] = static_cast<std::uint8_t>(static_cast<int>(u) - 128 + a_offset);
  }
  for (std::size_t k = K; k < Kp; ++k) q[k] = zero_byte;
}

inline void quantize_rows_portable(const QuantizeRows& p) {
  for (std::size_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * p.ldx;
    quantize_row_portable(x, p.smooth, p.K, row_range(x, p.smooth, p.K), p.a_offset, p.q + m * p.ldq,
                          p.scale + m, p.zero + m);
  }
}

// The epilogue of one output: clamp(fma(float(acc), a_scale * w_scale, fma(a_zero, w_sum, bias)), lo, hi); NaN
// passes the clamp.
inline float dequantize(std::int32_t acc, float a_scale, float a_zero, float w_scale, float w_sum, float bias,
                        float lo, float hi) {
  float v = std::fma(static_cast<float>(acc), a_scale * w_scale, std::fma(a_zero, w_sum, bias));
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// Portable ukernel: exact int32 dot products; A bytes unsigned if UNSIGNED_A (a_offset 128), else signed.
template <std::size_t MR, std::size_t NR, bool UNSIGNED_A>
void qgemm_tile_portable(const QGemmTile& t) {
  std::int32_t acc[MR][NR];
  for (std::size_t m = 0; m < t.mr; ++m)
    for (std::size_t n = 0; n < NR; ++n) acc[m][n] = t.comp[n];
  const std::int8_t* w = t.panel;
  for (std::size_t g = 0; g < t.K4; ++g, w += NR * 4)
    for (std::size_t m = 0; m < t.mr; ++m) {
      const std::uint8_t* a = t.A + m * t.lda + 4 * g;
      std::int32_t av[4];
      for (int i = 0; i < 4; ++i)
        av[i] = UNSIGNED_A ? static_cast<std::int32_t>(a[i]) : static_cast<std::int32_t>(static_cast<std::int8_t>(a[i]));
      for (std::size_t n = 0; n < NR; ++n)
        acc[m][n] += av[0] * w[n * 4] + av[1] * w[n * 4 + 1] + av[2] * w[n * 4 + 2] + av[3] * w[n * 4 + 3];
    }
  for (std::size_t m = 0; m < t.mr; ++m)
    for (std::size_t n = 0; n < t.nr; ++n) {
      float v = dequantize(acc[m][n], t.a_scale[m], t.a_zero[m], t.w_scale[n], t.w_sum[n], t.bias[n], t.lo, t.hi);
      if (t.norm_weight != nullptr) {  // fused NoNorm
        if (t.residual != nullptr) v += t.residual[m * t.ldr + n];
        v = std::fma(v, t.norm_weight[n], t.norm_bias[n]);
      }
      t.C[m * t.ldc + n] = v;
    }
}

}  // namespace
}  // namespace mbl::kernels
