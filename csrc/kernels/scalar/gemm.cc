// Scalar GEMM microkernel (4x8): the portable tier and the plain statement of the ukernel contract in
// kernels/kernels.h. float32 accumulation in the contract's order (bias, then k = 0, 1, ...), like the SIMD
// tiers; this file is compiled without ISA flags, so each step is a separate multiply and add.
#include <cstddef>

#include "kernels/generic/gemm_pack_impl.h"
#include "kernels/kernels.h"

namespace mbl::kernels::scalar {

void gemm_ukernel(const GemmTile& t) {
  constexpr std::size_t MR = kGemmMr, NR = kGemmNr;
  float acc[MR][NR];
  for (std::size_t m = 0; m < t.mr; ++m)
    for (std::size_t n = 0; n < NR; ++n) acc[m][n] = t.bias[n];
  const float* w = t.panel;
  for (std::size_t k = 0; k < t.K; ++k, w += NR)
    for (std::size_t m = 0; m < t.mr; ++m) {
      const float a = t.A[m * t.lda + k];
      for (std::size_t n = 0; n < NR; ++n) acc[m][n] += a * w[n];
    }
  for (std::size_t m = 0; m < t.mr; ++m)
    for (std::size_t n = 0; n < t.nr; ++n) {
      float v = acc[m][n];
      v = v < t.lo ? t.lo : v;  // written out, not std::max: a NaN must pass through
      v = v > t.hi ? t.hi : v;
      t.C[m * t.ldc + n] = v;
    }
}

void gemm_pack(const float* W, std::size_t N, std::size_t K, float* packed) {
  pack_panels<kGemmNr>(W, N, K, packed);
}

float fma_probe(std::size_t iters) {
  float acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const float a = 0.999999f, b = 1e-7f;
  for (std::size_t i = 0; i < iters; ++i)
    for (float& x : acc) x = x * a + b;
  float s = 0;
  for (float x : acc) s += x;
  return s;
}

}  // namespace mbl::kernels::scalar
