// The kernel contract: what every ISA variant of a kernel takes, may touch and must compute.
//
// Kernels are single-threaded, never allocate, and never read or write outside the extents documented
// here (no over-reads past a row end: tails use masked loads or small stack copies). No alignment is
// required of any pointer. Each ISA provides its variants in its own namespace (mbl::kernels::<isa>);
// dispatch (cpu/dispatch.h) picks one per op. Only the declarations live here, so this header is safe to
// include from any translation unit regardless of its compile flags.
#pragma once

#include <cstddef>

namespace mbl::kernels {

// add_norm: the fused epilogue at every MobileBERT norm site. For each row m of an [M, N] matrix:
//   y = x[m] + bias + residual[m]                 (bias and residual optional, added in that order)
//   NoNorm    (layer_norm = false): out[m] = y * weight + beta
//   LayerNorm (layer_norm = true):  out[m] = (y - mean(y)) / sqrt(var(y) + eps) * weight + beta,
//                                   var is the biased (divide by N) variance.
// Rows are independent. For LayerNorm, y is materialised as a float32 row, computed as (x + bias) +
// residual in float32 in every variant, so all variants normalise the same y.
struct AddNormParams {
  const float* x;         // [M, N] row-major, row stride N
  const float* bias;      // [N], or nullptr
  const float* residual;  // [M, N] row-major, or nullptr
  const float* weight;    // [N]
  const float* beta;      // [N]
  float* out;             // [M, N] row-major. May be exactly x or exactly residual (in place); must not
                          // otherwise overlap any input. LayerNorm uses it as scratch for y.
  std::size_t M;          // >= 0; M == 0 touches nothing
  std::size_t N;          // >= 1
  bool layer_norm;
  float eps;              // LayerNorm only; >= 0
};
using add_norm_fn = void (*)(const AddNormParams&);

// One declaration per compiled variant. A variant is only defined when its ISA is compiled in
// (MBL_HAVE_<ISA>), and only called when the CPU supports it.
namespace scalar { void add_norm(const AddNormParams& p); }  // always present; accumulates in double
namespace avx2   { void add_norm(const AddNormParams& p); }  // AVX2 + FMA, 8 lanes
namespace avx512 { void add_norm(const AddNormParams& p); }  // AVX-512 F/BW/DQ/VL, 16 lanes
namespace neon   { void add_norm(const AddNormParams& p); }  // AArch64 or ARMv7 NEON, 4 lanes

}  // namespace mbl::kernels
