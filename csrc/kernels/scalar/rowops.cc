// Scalar row ops: the portable fallback tier and the C++ statement of what the SIMD tiers compute.
//
// Everything after the float32 inputs is computed in double and rounded to float32 once per output
// (except LayerNorm's y, see below), so this tier is, to within that rounding, the exact math. The SIMD
// tiers accumulate in float32 lanes; all tiers are tested against a float64 NumPy oracle.
#include <cmath>

#include "kernels/kernels.h"

namespace mbl::kernels::scalar {

void add_norm(const AddNormParams& p) {
  const std::size_t N = p.N;
  for (std::size_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * N;
    const float* res = p.residual != nullptr ? p.residual + m * N : nullptr;
    float* out = p.out + m * N;

    // y = x + bias + residual. Reading x[i] and res[i] before writing out[i] at the same index is what
    // makes out == x and out == residual safe.
    auto y_at = [&](std::size_t i) {
      double y = x[i];
      if (p.bias != nullptr) y += p.bias[i];
      if (res != nullptr) y += res[i];
      return y;
    };

    if (!p.layer_norm) {
      // NoNorm (MobileBERT's replacement for LayerNorm): an elementwise affine map, no statistics.
      for (std::size_t i = 0; i < N; ++i) out[i] = static_cast<float>(y_at(i) * p.weight[i] + p.beta[i]);
      continue;
    }

    // LayerNorm. y has to be kept somewhere between the statistics and the normalisation, and out is the
    // only buffer we own; with out == x, x is gone after this pass anyway. So y is a float32 here, summed
    // as (x + bias) + residual in float32 like every SIMD tier does -- and like a framework running the
    // adds as separate float32 ops. Every tier then normalises bitwise the same y.
    double sum = 0.0;
    for (std::size_t i = 0; i < N; ++i) {
      float y = x[i];
      if (p.bias != nullptr) y += p.bias[i];
      if (res != nullptr) y += res[i];
      out[i] = y;
      sum += y;
    }
    const double mean = sum / static_cast<double>(N);

    // Two-pass variance: sum((y - mean)^2) rather than sum(y^2) - N*mean^2, which cancels catastrophically
    // when |mean| >> std (common after a residual add).
    double sq = 0.0;
    for (std::size_t i = 0; i < N; ++i) {
      const double d = out[i] - mean;
      sq += d * d;
    }
    const double inv_std = 1.0 / std::sqrt(sq / static_cast<double>(N) + static_cast<double>(p.eps));

    for (std::size_t i = 0; i < N; ++i)
      out[i] = static_cast<float>((out[i] - mean) * inv_std * p.weight[i] + p.beta[i]);
  }
}

}  // namespace mbl::kernels::scalar
