// Scalar attention for one (batch, head): the portable tier and the plain statement of the contract in
// kernels/kernels.h. Dot products, exp, the softmax sum and P V accumulate in double; the scores and the
// probabilities are rounded to float32 once each (HF keeps both as float32 tensors), ctx once at the end.
// Masked keys get mask_value added to their (float32) score, as HF adds its mask.
#include <cfloat>
#include <cmath>
#include <cstddef>

#include "kernels/kernels.h"

namespace mbl::kernels::scalar {

void attention_head(const AttentionHead& a) {
  const std::size_t L = a.L, d = a.d;
  float* p = a.scratch;  // one row of scores, then of probabilities
  for (std::size_t i = 0; i < L; ++i) {
    const float* qi = a.q + i * a.ldq;
    float mx = -FLT_MAX;
    for (std::size_t j = 0; j < L; ++j) {
      const float* kj = a.k + j * a.ldk;
      double dot = 0.0;
      for (std::size_t t = 0; t < d; ++t) dot += static_cast<double>(qi[t]) * kj[t];
      p[j] = static_cast<float>(dot * a.scale);
      if (a.keep != nullptr && a.keep[j] == 0) p[j] += a.mask_value;
      mx = p[j] > mx ? p[j] : mx;
    }
    // exp is evaluated twice per score (for the sum, then for the quotient) rather than kept: this tier has
    // only L floats of scratch per row and should not round e to float32 before dividing.
    double sum = 0.0;
    for (std::size_t j = 0; j < L; ++j) sum += std::exp(static_cast<double>(p[j]) - mx);
    for (std::size_t j = 0; j < L; ++j) p[j] = static_cast<float>(std::exp(static_cast<double>(p[j]) - mx) / sum);
    if (a.probs != nullptr)
      for (std::size_t j = 0; j < L; ++j) a.probs[i * L + j] = p[j];
    float* ci = a.ctx + i * a.ldc;
    for (std::size_t t = 0; t < d; ++t) {
      double acc = 0.0;
      for (std::size_t j = 0; j < L; ++j) acc += static_cast<double>(p[j]) * a.v[j * a.ldv + t];
      ci[t] = static_cast<float>(acc);
    }
  }
}

void exp_row(const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::exp(static_cast<double>(x[i])));
}

}  // namespace mbl::kernels::scalar
