// Linear layers on the GEMM kernels: weights packed once for one ISA's GEMM config, then
//   y = A * W^T + bias;  y = act(y);  y += residual;  y = norm(y)
// per call, fused: bias and the clamp activations (relu, relu6) in the microkernel, the other activations,
// residual and norm on each block of finished output rows while they are still in cache. The norm step is
// the add_norm row kernel of the same table (kernels/kernels.h), not a copy of its math.
//
// ISA-agnostic: compiled without ISA flags; it only calls through the table's function pointers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/threadpool.h"

namespace mbl::ops {

// Every activation transformers' ACT2FN offers for hidden_act (but the parametrised prelu and xielu), one
// enumerator per distinct function; parse_activation maps HF's aliases onto them. relu, relu6 and none run
// in the microkernel's clamp; leaky_relu is one float32 multiply (as in PyTorch); every other one is
// evaluated in double per element and rounded once, so it is within float32 rounding of the exact function.
enum class Activation {
  none,          // identity: "none", "linear"
  relu,          // max(x, 0)
  relu6,         // min(max(x, 0), 6)
  gelu,          // x/2 (1 + erf(x / sqrt2)): "gelu", "gelu_python"
  gelu_tanh,     // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): "gelu_new", "gelu_pytorch_tanh",
                 // "gelu_python_tanh", "gelu_accurate" and our older name "gelu_tanh"
  gelu_fast,     // x/2 (1 + tanh(0.7978845608 x (1 + 0.044715 x^2)))
  gelu_10,       // gelu clipped to [-10, 10]
  quick_gelu,    // x sigmoid(1.702 x)
  hardswish,     // x clip(x + 3, 0, 6) / 6
  laplace,       // (1 + erf((x - 0.707107) / (0.282095 sqrt2))) / 2
  leaky_relu,    // x >= 0 ? x : 0.01 x
  mish,          // x tanh(softplus(x))
  relu2,         // relu(x)^2
  sigmoid,       // 1 / (1 + exp(-x))
  silu,          // x sigmoid(x): "silu", "swish"
  sqrtsoftplus,  // sqrt(softplus(x))
  tanh,          // tanh(x)
};
enum class Norm { none, no_norm, layer_norm };

// Parses any name listed by activation_names() (HF's hidden_act spellings, plus "none" and "gelu_tanh");
// returns false for anything else.
bool parse_activation(const std::string& name, Activation* out);
const char* activation_names();  // "none, linear, relu, ...", every accepted name, for error messages

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
// A, the residual or the norm parameters. M == 0 is a no-op.
//
// pool == nullptr (or a pool of size 1) runs on the calling thread; otherwise the work is split over the
// pool into blocks of whole mr-row tiles and whole nr-column panels -- never over K -- and small GEMMs into
// fewer tasks than threads, or none. Every output element goes through the same operations in the same
// order whatever the split, so the result is bitwise identical for any pool size.
void linear_forward(const PackedLinear& layer, const float* A, std::size_t M, std::size_t lda, float* C,
                    std::size_t ldc, const Epilogue& epilogue, ThreadPool* pool = nullptr);

// --- int8 (dynamic quantisation) -------------------------------------------------------------------------

// The largest K an int8 layer accepts: the int32 accumulator then holds 255 * 127 * K (x86's offset bytes)
// plus the offset correction without wrapping.
inline constexpr std::size_t kQLinearMaxK = 65536;

// An int8 Linear: weights quantised per output channel (int8 values in [-127, 127] and a float32 scale per
// row of W), packed once for one table's int8 GEMM; activations are quantised per row (asymmetric) at each call
// (kernels::QuantizeRows), optionally multiplied first by per-input-channel smoothing factors (the caller
// has divided W's columns by the same factors before quantising it).
class QPackedLinear {
 public:
  // W: [N, K] int8 row-major; w_scale: [N]; bias: [N] or nullptr; smooth: [K] or nullptr. 1 <= K <= kQLinearMaxK.
  // Throws std::invalid_argument for a value of -128 in W or a K out of range.
  QPackedLinear(const KernelTable& table, const std::int8_t* W, const float* w_scale, const float* bias,
                const float* smooth, std::size_t N, std::size_t K);

  std::size_t n() const { return N_; }
  std::size_t k() const { return K_; }
  std::size_t kp() const { return (K_ + 3) / 4 * 4; }
  const KernelTable& table() const { return *table_; }
  const QGemmKernel& gemm() const { return table_->qgemm; }
  const std::int8_t* packed() const { return packed_.data(); }
  const std::int32_t* comp() const { return comp_.data(); }  // padded to the panel width
  const float* w_scale() const { return w_scale_.data(); }   // padded with zeros
  const float* w_sum() const { return w_sum_.data(); }       // w_scale[n] * sum_k W[n, k], padded with zeros
  const float* bias() const { return bias_.data(); }         // padded, zeros if no bias
  const float* smooth() const { return smooth_.empty() ? nullptr : smooth_.data(); }

 private:
  const KernelTable* table_;
  std::size_t N_, K_;
  std::vector<std::int8_t> packed_;
  std::vector<std::int32_t> comp_;
  std::vector<float> w_scale_, w_sum_, bias_, smooth_;
};

// Grow-only scratch for one call's quantised activations (a forward keeps one in its workspace). It remembers
// what it holds (rows, K, smoothing, quantiser) so that a caller can reuse it for the next Linear on the same
// input (see qlinear_forward's reuse_input).
struct QScratch {
  std::vector<std::uint8_t> q;
  std::vector<float> scale, zero;
  std::size_t rows = 0, k = 0;
  const float* smooth = nullptr;
  kernels::quantize_rows_fn quantizer = nullptr;
};

// As linear_forward, with int8 weights: A[M, K] is quantised per row into scratch, multiplied in int32 and
// dequantised in the tile (with the bias and the clamp activations), then the same epilogue as linear_forward
// runs on the float32 rows. Bitwise identical for any pool size.
//
// reuse_input: the caller vouches that scratch already holds this A, unchanged since it was quantised by the
// previous call (several Linears reading one input: MobileBERT's layer input feeds three). The quantisation is
// then skipped if scratch's rows, K, smoothing and quantiser also match; otherwise A is quantised as usual.
void qlinear_forward(const QPackedLinear& layer, const float* A, std::size_t M, std::size_t lda, float* C,
                     std::size_t ldc, const Epilogue& epilogue, QScratch& scratch, ThreadPool* pool = nullptr,
                     bool reuse_input = false);

// The quantisation step of qlinear_forward alone: A's rows into scratch, in parallel over rows when large.
void quantize_input(const QPackedLinear& layer, const float* A, std::size_t M, std::size_t lda, QScratch& scratch,
                    ThreadPool* pool);

}  // namespace mbl::ops
