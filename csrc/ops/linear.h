// Linear layers on the GEMM kernels: weights packed once for one ISA's GEMM config, then
//   y = A * W^T + bias;  y = act(y);  y += residual;  y = norm(y)
// per call, fused: bias and the clamp activations (relu, relu6) in the microkernel, GELU, residual and norm
// on each block of finished output rows while they are still in cache. The norm step is the add_norm row
// kernel of the same table (kernels/kernels.h), not a copy of its math.
//
// ISA-agnostic: compiled without ISA flags; it only calls through the table's function pointers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "cpu/dispatch.h"

namespace mbl::ops {

enum class Activation { none, relu, relu6, gelu, gelu_tanh };
enum class Norm { none, no_norm, layer_norm };

// Parses "none" | "relu" | "relu6" | "gelu" (erf) | "gelu_tanh"; returns false for anything else.
bool parse_activation(const std::string& name, Activation* out);
const char* activation_names();  // "none, relu, relu6, gelu, gelu_tanh", for error messages

struct Epilogue {
  Activation activation = Activation::none;
  const float* residual = nullptr;  // [M, N] with row stride ldr, or nullptr
  std::size_t ldr = 0;
  Norm norm = Norm::none;
  const float* norm_weight = nullptr;  // [N], required unless norm == none
  const float* norm_bias = nullptr;    // [N], required unless norm == none
  float eps = 1e-12f;                  // LayerNorm only
};

class PackedLinear {
 public:
  // W: [N, K] row-major (a PyTorch Linear weight); bias: [N] or nullptr. Packs with table.gemm. N, K >= 1.
  PackedLinear(const KernelTable& table, const float* W, const float* bias, std::size_t N, std::size_t K);

  std::size_t n() const { return N_; }
  std::size_t k() const { return K_; }
  const KernelTable& table() const { return *table_; }
  const GemmKernel& gemm() const { return table_->gemm; }
  const float* packed() const { return packed_.get(); }
  const float* bias() const { return bias_.get(); }  // padded to the panel width, zeros if no bias

 private:
  struct Free {
    void operator()(float* p) const;
  };
  const KernelTable* table_;
  std::size_t N_, K_;
  std::unique_ptr<float[], Free> packed_, bias_;
};

// C[M, N] (row stride ldc >= N) = epilogue(A[M, K] (row stride lda >= K) * W^T + bias). C must not overlap
// A, the residual or the norm parameters. M == 0 is a no-op. Single-threaded; K is never split, so every
// output is computed in one fixed order whatever the blocking.
void linear_forward(const PackedLinear& layer, const float* A, std::size_t M, std::size_t lda, float* C,
                    std::size_t ldc, const Epilogue& epilogue);

}  // namespace mbl::ops
