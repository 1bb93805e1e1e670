#include "ops/linear.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>

#include "kernels/kernels.h"

namespace mbl::ops {
namespace {

constexpr std::size_t kAlign = 64;  // cache line: panels start on a line, so no weight load splits one

float* alloc_floats(std::size_t count) {
  const std::size_t bytes = (count * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<float*>(p);
}

// Rows of A per block: the block's A rows (and its C rows) stay in L2 while every weight panel streams
// past them once. A multiple of every mr we have (4, 6, 8), about 64 KiB of A at K = 512.
constexpr std::size_t kRowBlock = 48;

// GELU in double, rounded once: at most half an ulp from the exact function of the float32 input.
void gelu_row(float* y, std::size_t n, bool tanh_approx) {
  constexpr double kInvSqrt2 = 0.70710678118654752440;
  constexpr double kSqrt2OverPi = 0.79788456080286535588;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = y[i];
    const double g = tanh_approx ? 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x)))
                                 : 0.5 * x * (1.0 + std::erf(x * kInvSqrt2));
    y[i] = static_cast<float>(g);
  }
}

}  // namespace

bool parse_activation(const std::string& name, Activation* out) {
  if (name == "none") *out = Activation::none;
  else if (name == "relu") *out = Activation::relu;
  else if (name == "relu6") *out = Activation::relu6;
  else if (name == "gelu") *out = Activation::gelu;
  else if (name == "gelu_tanh") *out = Activation::gelu_tanh;
  else return false;
  return true;
}

const char* activation_names() { return "none, relu, relu6, gelu, gelu_tanh"; }

void PackedLinear::Free::operator()(float* p) const { std::free(p); }

PackedLinear::PackedLinear(const KernelTable& table, const float* W, const float* bias, std::size_t N,
                           std::size_t K)
    : table_(&table), N_(N), K_(K) {
  const std::size_t nr = table.gemm.nr;
  const std::size_t padded_n = (N + nr - 1) / nr * nr;
  packed_.reset(alloc_floats(padded_n * K));
  bias_.reset(alloc_floats(padded_n));
  table.gemm.pack(W, N, K, packed_.get());
  for (std::size_t n = 0; n < padded_n; ++n) bias_[n] = (bias != nullptr && n < N) ? bias[n] : 0.0f;
}

void linear_forward(const PackedLinear& layer, const float* A, std::size_t M, std::size_t lda, float* C,
                    std::size_t ldc, const Epilogue& ep) {
  const GemmKernel& g = layer.gemm();
  const std::size_t N = layer.n(), K = layer.k(), mr = g.mr, nr = g.nr;
  constexpr float kInf = std::numeric_limits<float>::infinity();

  kernels::GemmTile t{};
  t.K = K;
  t.lda = lda;
  t.ldc = ldc;
  t.lo = -kInf;
  t.hi = kInf;
  if (ep.activation == Activation::relu) t.lo = 0.0f;
  if (ep.activation == Activation::relu6) t.lo = 0.0f, t.hi = 6.0f;
  const bool gelu = ep.activation == Activation::gelu || ep.activation == Activation::gelu_tanh;

  for (std::size_t m0 = 0; m0 < M; m0 += kRowBlock) {
    const std::size_t rows = M - m0 < kRowBlock ? M - m0 : kRowBlock;
    // GEMM (+ bias, + clamp) for the whole row block, all N: one weight panel at a time, its tiles down M.
    for (std::size_t n0 = 0; n0 < N; n0 += nr) {
      t.nr = N - n0 < nr ? N - n0 : nr;
      t.panel = layer.packed() + n0 * K;
      t.bias = layer.bias() + n0;
      for (std::size_t i = 0; i < rows; i += mr) {
        t.mr = rows - i < mr ? rows - i : mr;
        t.A = A + (m0 + i) * lda;
        t.C = C + (m0 + i) * ldc + n0;
        g.ukernel(t);
      }
    }
    // The rest of the epilogue, row by row, while the block is hot.
    for (std::size_t i = 0; i < rows; ++i) {
      float* y = C + (m0 + i) * ldc;
      if (gelu) gelu_row(y, N, ep.activation == Activation::gelu_tanh);
      const float* res = ep.residual != nullptr ? ep.residual + (m0 + i) * ep.ldr : nullptr;
      if (ep.norm == Norm::none) {
        if (res != nullptr)
          for (std::size_t n = 0; n < N; ++n) y[n] += res[n];
        continue;
      }
      // y = norm(y + residual), in place (add_norm allows out == x); one row per call because add_norm's
      // rows are dense (stride N) and ours have strides ldc / ldr.
      const kernels::AddNormParams p{y,       nullptr, res, ep.norm_weight, ep.norm_bias, y, 1, N,
                                     ep.norm == Norm::layer_norm, ep.eps};
      layer.table().add_norm.fn(p);
    }
  }
}

}  // namespace mbl::ops
