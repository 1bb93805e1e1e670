// The GEMM weight packer, written once over the panel width NR; each ISA's gemm TU instantiates it with
// its own nr (see gemm_pack_fn in kernels/kernels.h for the layout). Anonymous namespace for the same
// reason as rowops_impl.h: every ISA object keeps a private copy compiled with its own flags.
#pragma once

#include <cstddef>

namespace mbl::kernels {
namespace {

template <std::size_t NR>
void pack_panels(const float* W, std::size_t N, std::size_t K, float* packed) {
  for (std::size_t n0 = 0; n0 < N; n0 += NR) {
    const std::size_t cols = N - n0 < NR ? N - n0 : NR;
    float* panel = packed + n0 * K;  // panel j starts at j*NR*K = n0*K
    for (std::size_t k = 0; k < K; ++k) {
      float* row = panel + k * NR;
      for (std::size_t c = 0; c < cols; ++c) row[c] = W[(n0 + c) * K + k];
      for (std::size_t c = cols; c < NR; ++c) row[c] = 0.0f;
    }
  }
}

}  // namespace
}  // namespace mbl::kernels
