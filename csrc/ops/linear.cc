#include "ops/linear.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

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

// The least work worth a task of its own, in microkernel k-steps (one k of one mr x nr tile, a few cycles):
// several times what handing a task to a polling worker costs. GEMMs below twice this run on the calling
// thread.
constexpr std::size_t kMinTaskSteps = 2048;
// What one element of a transcendental activation costs, in the same units (a double erfc/exp/tanh is a
// few tens of cycles), so a GELU epilogue counts towards the split.
constexpr std::size_t kActivationSteps = 8;
// Tasks per thread when there is enough work: a second one lets a thread that got its first task late (a
// worker still waking up) be made up for by the others, at the cost of one more claim each.
constexpr std::size_t kTasksPerThread = 2;

// --- Activations (those not done by the microkernel's clamp) ---------------------------------------------

// Each f is evaluated in double on the float32 input and rounded once: within half an ulp (plus the libm
// error, ~1 ulp of double) of the exact function. Written with exp/erfc rather than 1 + tanh / 1 + erf where
// those cancel for negative x: x/2 (1 + tanh z) == x / (1 + exp(-2z)) and x/2 (1 + erf z) == x/2 erfc(-z).
template <class F>
void map_row(float* y, std::size_t n, F f) {
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(f(static_cast<double>(y[i])));
}

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;

double gelu_erf(double x) { return 0.5 * x * std::erfc(-x * kInvSqrt2); }
double softplus(double x) { return x > 0.0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double clamp(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }  // NaN passes

void activate_row(float* y, std::size_t n, Activation act) {
  switch (act) {
    case Activation::none:
    case Activation::relu:
    case Activation::relu6:
      return;  // identity, or already applied by the microkernel's clamp
    case Activation::gelu:
      return map_row(y, n, gelu_erf);
    case Activation::gelu_tanh:
      return map_row(y, n, [](double x) {
        return x / (1.0 + std::exp(-2.0 * kSqrt2OverPi * (x + 0.044715 * x * x * x)));
      });
    case Activation::gelu_fast:
      return map_row(y, n, [](double x) {
        return x / (1.0 + std::exp(-2.0 * (x * 0.7978845608 * (1.0 + 0.044715 * x * x))));
      });
    case Activation::gelu_10:
      return map_row(y, n, [](double x) { return clamp(gelu_erf(x), -10.0, 10.0); });
    case Activation::quick_gelu:
      return map_row(y, n, [](double x) { return x / (1.0 + std::exp(-1.702 * x)); });
    case Activation::hardswish:
      return map_row(y, n, [](double x) { return x * clamp(x + 3.0, 0.0, 6.0) / 6.0; });
    case Activation::laplace:  // (1 + erf(z)) / 2 == erfc(-z) / 2
      return map_row(y, n, [](double x) { return 0.5 * std::erfc(-(x - 0.707107) / (0.282095 * 2.0 * kInvSqrt2)); });
    case Activation::leaky_relu:
      // PyTorch's float32 x * 0.01f, one rounding, bit for bit; the comparison lets NaN through.
      for (std::size_t i = 0; i < n; ++i) y[i] = y[i] < 0.0f ? y[i] * 0.01f : y[i];
      return;
    case Activation::mish:
      return map_row(y, n, [](double x) { return x * std::tanh(softplus(x)); });
    case Activation::relu2:  // the square of a float is exact in double: correctly rounded, as in PyTorch
      return map_row(y, n, [](double x) { return x < 0.0 ? 0.0 : x * x; });
    case Activation::sigmoid:
      return map_row(y, n, [](double x) { return 1.0 / (1.0 + std::exp(-x)); });
    case Activation::silu:
      return map_row(y, n, [](double x) { return x / (1.0 + std::exp(-x)); });
    case Activation::sqrtsoftplus:
      return map_row(y, n, [](double x) { return std::sqrt(softplus(x)); });
    case Activation::tanh:
      return map_row(y, n, [](double x) { return std::tanh(x); });
  }
}

bool transcendental(Activation act) {
  return act != Activation::none && act != Activation::relu && act != Activation::relu6 &&
         act != Activation::leaky_relu;
}

struct NamedActivation {
  const char* name;
  Activation act;
};
// transformers.activations.ACT2CLS's names (but prelu and xielu), plus our "none" and "gelu_tanh".
constexpr NamedActivation kActivations[] = {
    {"none", Activation::none},
    {"linear", Activation::none},
    {"relu", Activation::relu},
    {"relu6", Activation::relu6},
    {"gelu", Activation::gelu},
    {"gelu_python", Activation::gelu},
    {"gelu_tanh", Activation::gelu_tanh},
    {"gelu_new", Activation::gelu_tanh},
    {"gelu_pytorch_tanh", Activation::gelu_tanh},
    {"gelu_python_tanh", Activation::gelu_tanh},
    {"gelu_accurate", Activation::gelu_tanh},
    {"gelu_fast", Activation::gelu_fast},
    {"gelu_10", Activation::gelu_10},
    {"quick_gelu", Activation::quick_gelu},
    {"hardswish", Activation::hardswish},
    {"laplace", Activation::laplace},
    {"leaky_relu", Activation::leaky_relu},
    {"mish", Activation::mish},
    {"relu2", Activation::relu2},
    {"sigmoid", Activation::sigmoid},
    {"silu", Activation::silu},
    {"swish", Activation::silu},
    {"sqrtsoftplus", Activation::sqrtsoftplus},
    {"tanh", Activation::tanh},
};

// --- The driver -----------------------------------------------------------------------------------------

// One linear_forward / qlinear_forward call, shared by its tasks. Exactly one of `layer` (float32 weights)
// and `qlayer` (int8) is set.
struct Job {
  const PackedLinear* layer;
  const QPackedLinear* qlayer;
  const KernelTable& table;
  std::size_t N, K, mr, nr;
  const float* A;
  QScratch* qa;  // int8: the quantised rows of A (row stride qlayer->kp())
  float* C;
  std::size_t ldc;
  const Epilogue& ep;
  kernels::GemmTile tile;    // float32: K, lda, ldc, lo, hi filled in; the rest per tile
  kernels::QGemmTile qtile;  // int8: K4, lda, ldc, lo, hi filled in; the rest per tile
  std::size_t lda = 0;       // int8: A's row stride (A itself is read only by the quantiser)
  bool quantize = false;     // int8: A still to be quantised (run_job decides where)
  bool quantize_in_blocks = false;  // each row block quantises its rows just before its GEMM
  bool fused_no_norm = false;  // int8: the tiles add the residual and apply NoNorm (QGemmTile), no row pass
};

void quantize_rows_of(const Job& j, std::size_t m0, std::size_t m1) {
  const QGemmKernel& g = j.table.qgemm;
  const std::size_t Kp = j.qlayer->kp();
  g.quantize({j.A + m0 * j.lda, j.lda, m1 - m0, j.K, j.qlayer->smooth(), j.qa->q.data() + m0 * Kp, Kp,
              j.qa->scale.data() + m0, j.qa->zero.data() + m0, g.a_offset});
}

// y = norm(y + residual) on row m, in place (add_norm allows out == x). One row per call because add_norm's
// rows are dense (stride N) and ours have strides ldc / ldr.
void norm_row(const Job& j, std::size_t m) {
  float* y = j.C + m * j.ldc;
  const float* res = j.ep.residual != nullptr ? j.ep.residual + m * j.ep.ldr : nullptr;
  const kernels::AddNormParams p{y, nullptr, res, j.ep.norm_weight, j.ep.norm_bias, y, 1, j.N,
                                 j.ep.norm == Norm::layer_norm, j.ep.eps};
  j.table.add_norm.fn(p);
}

// norm_row over rows [m0, m1): one add_norm call when the rows are dense (C and the residual with stride N),
// saving the per-call setup on narrow rows (MobileBERT's are 128 wide); the same per-row arithmetic either way.
void norm_rows(const Job& j, std::size_t m0, std::size_t m1) {
  const bool dense = j.ldc == j.N && (j.ep.residual == nullptr || j.ep.ldr == j.N);
  if (!dense) {
    for (std::size_t m = m0; m < m1; ++m) norm_row(j, m);
    return;
  }
  float* y = j.C + m0 * j.ldc;
  const float* res = j.ep.residual != nullptr ? j.ep.residual + m0 * j.ep.ldr : nullptr;
  const kernels::AddNormParams p{y, nullptr, res, j.ep.norm_weight, j.ep.norm_bias, y, m1 - m0, j.N,
                                 j.ep.norm == Norm::layer_norm, j.ep.eps};
  j.table.add_norm.fn(p);
}

// The tiles of rows [b0, b1) x the panel starting at column c0 (t.nr columns of it), down M.
void float_tiles(const Job& j, std::size_t b0, std::size_t b1, std::size_t c0, std::size_t cols) {
  kernels::GemmTile t = j.tile;
  t.nr = cols;
  t.panel = j.layer->packed() + c0 * j.K;
  t.bias = j.layer->bias() + c0;
  for (std::size_t m = b0; m < b1; m += j.mr) {
    t.mr = b1 - m < j.mr ? b1 - m : j.mr;
    t.A = j.A + m * t.lda;
    t.C = j.C + m * j.ldc + c0;
    j.table.gemm.ukernel(t);
  }
}

void int8_tiles(const Job& j, std::size_t b0, std::size_t b1, std::size_t c0, std::size_t cols) {
  kernels::QGemmTile t = j.qtile;
  t.nr = cols;
  t.panel = j.qlayer->packed() + c0 * j.qlayer->kp();
  t.comp = j.qlayer->comp() + c0;
  t.w_scale = j.qlayer->w_scale() + c0;
  t.w_sum = j.qlayer->w_sum() + c0;
  t.bias = j.qlayer->bias() + c0;
  if (j.fused_no_norm) {
    t.norm_weight = j.ep.norm_weight + c0;
    t.norm_bias = j.ep.norm_bias + c0;
    t.ldr = j.ep.ldr;
  }
  for (std::size_t m = b0; m < b1; m += j.mr) {
    t.mr = b1 - m < j.mr ? b1 - m : j.mr;
    t.A = j.qa->q.data() + m * t.lda;
    t.a_scale = j.qa->scale.data() + m;
    t.a_zero = j.qa->zero.data() + m;
    t.C = j.C + m * j.ldc + c0;
    if (j.fused_no_norm && j.ep.residual != nullptr) t.residual = j.ep.residual + m * j.ep.ldr + c0;
    j.table.qgemm.ukernel(t);
  }
}

// C rows [m0, m1) x columns [n0, n1): GEMM (+ bias, + clamp), the other activations, and the residual if
// there is no norm; with a norm, the norm (which adds the residual) only if with_norm, i.e. when the block
// spans whole rows. m0 is a multiple of mr and n0 of nr, and each element goes through the same steps as
// in any other split, so the result does not depend on the split.
void compute_block(const Job& j, std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1,
                   bool with_norm) {
  const std::size_t nr = j.nr;
  const Epilogue& ep = j.ep;
  for (std::size_t b0 = m0; b0 < m1; b0 += kRowBlock) {
    const std::size_t b1 = m1 - b0 < kRowBlock ? m1 : b0 + kRowBlock;
    if (j.quantize_in_blocks) quantize_rows_of(j, b0, b1);  // this task owns these rows, all columns
    // GEMM (+ bias, + clamp) for the row block: one weight panel at a time, its tiles down M.
    for (std::size_t c0 = n0; c0 < n1; c0 += nr) {
      const std::size_t cols = n1 - c0 < nr ? n1 - c0 : nr;
      if (j.qlayer != nullptr) int8_tiles(j, b0, b1, c0, cols);
      else float_tiles(j, b0, b1, c0, cols);
    }
    if (j.fused_no_norm) continue;  // the tiles did the rest
    // The rest of the epilogue, row by row, while the block is hot.
    for (std::size_t m = b0; m < b1; ++m) {
      float* y = j.C + m * j.ldc;
      activate_row(y + n0, n1 - n0, ep.activation);
      if (ep.norm == Norm::none && ep.residual != nullptr) {
        const float* res = ep.residual + m * ep.ldr;
        for (std::size_t n = n0; n < n1; ++n) y[n] += res[n];
      }
    }
    if (ep.norm != Norm::none && with_norm) norm_rows(j, b0, b1);
  }
}

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
std::size_t min(std::size_t a, std::size_t b) { return a < b ? a : b; }

}  // namespace

bool parse_activation(const std::string& name, Activation* out) {
  for (const NamedActivation& a : kActivations)
    if (name == a.name) {
      *out = a.act;
      return true;
    }
  return false;
}

const char* activation_names() {
  static const std::string names = [] {
    std::string s;
    for (const NamedActivation& a : kActivations) s += (s.empty() ? "" : ", ") + std::string(a.name);
    return s;
  }();
  return names.c_str();
}

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

namespace {

// Sizes scratch for M rows of this layer's input and records what it will hold (qlinear_forward's reuse_input).
void reserve(QScratch& qa, const QPackedLinear& layer, std::size_t M) {
  const std::size_t Kp = layer.kp();
  if (qa.q.size() < M * Kp) qa.q.resize(M * Kp);
  if (qa.scale.size() < M) qa.scale.resize(M);
  if (qa.zero.size() < M) qa.zero.resize(M);
  qa.rows = M;
  qa.k = layer.k();
  qa.smooth = layer.smooth();
  qa.quantizer = layer.gemm().quantize;
}

// Splits one job over the pool (see linear_forward in linear.h) and runs it.
void run_job(Job& j, std::size_t M, ThreadPool* pool) {
  const Epilogue& ep = j.ep;
  const std::size_t N = j.N, K = j.K, mr = j.mr, nr = j.nr;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  float lo = -kInf, hi = kInf;
  if (ep.activation == Activation::relu) lo = 0.0f;
  if (ep.activation == Activation::relu6) lo = 0.0f, hi = 6.0f;
  j.tile.lo = j.qtile.lo = lo;
  j.tile.hi = j.qtile.hi = hi;
  j.tile.ldc = j.qtile.ldc = j.ldc;
  // NoNorm after a clamp-only activation folds into int8 tiles that can (the same operations either way).
  j.fused_no_norm = j.qlayer != nullptr && j.table.qgemm.fuses_no_norm && ep.norm == Norm::no_norm &&
                    (ep.activation == Activation::none || ep.activation == Activation::relu ||
                     ep.activation == Activation::relu6);

  // How many tasks the work is worth: at most kTasksPerThread per thread, at least kMinTaskSteps each. An int8
  // k-step does 4 k at the cost of about one float one, hence K / 4 there.
  const std::size_t m_tiles = ceil_div(M, mr), n_panels = ceil_div(N, nr);
  const std::size_t threads = pool != nullptr ? static_cast<std::size_t>(pool->size()) : 1;
  const std::size_t k_steps = j.qlayer != nullptr ? ceil_div(K, 4) : K;
  const std::size_t work =
      m_tiles * n_panels * k_steps + (transcendental(ep.activation) ? M * N * kActivationSteps : 0);
  const std::size_t tasks = min(work / kMinTaskSteps, threads * kTasksPerThread);
  // Quantise A where each row is used: inside the row blocks when every task owns whole rows (no second pass
  // over A, no extra hand-off to the pool), else once up front for all the column groups.
  j.quantize_in_blocks = j.quantize && (threads == 1 || tasks < 2 || ceil_div(M, mr) >= tasks);
  if (j.quantize && !j.quantize_in_blocks) quantize_input(*j.qlayer, j.A, M, j.lda, *j.qa, pool);
  if (threads == 1 || tasks < 2) return compute_block(j, 0, M, 0, N, true);

  // Split M into blocks of whole tiles if there are enough of them: each task then owns whole rows and
  // finishes them, norm included. Otherwise (small M) split N into groups of whole panels -- each thread
  // then also streams only its share of the weights, which dominate at small M -- and M as well if that
  // still leaves tasks to fill.
  std::size_t rows = M, cols = N;
  if (m_tiles >= tasks) {
    rows = ceil_div(m_tiles, tasks) * mr;
  } else {
    cols = ceil_div(n_panels, min(n_panels, tasks)) * nr;
    const std::size_t per_group = min(ceil_div(tasks, ceil_div(N, cols)), m_tiles);
    rows = ceil_div(m_tiles, per_group) * mr;
  }
  const std::size_t tasks_m = ceil_div(M, rows), tasks_n = ceil_div(N, cols);
  const std::size_t blocks = tasks_m * tasks_n;
  const auto block = [&](std::size_t task, bool with_norm) {
    const std::size_t m0 = task / tasks_n * rows, n0 = task % tasks_n * cols;
    compute_block(j, m0, min(m0 + rows, M), n0, min(n0 + cols, N), with_norm);
  };

  if (tasks_n == 1 || ep.norm == Norm::none || j.fused_no_norm) {
    pool->run(blocks, [&](std::size_t task, int) { block(task, true); });
    return;
  }

  // A norm over rows split into column groups: one job in two phases. Tasks [0, blocks) compute the blocks
  // without the norm; the rest normalise chunks of rows once every block is done. Tasks are claimed in
  // order, so when a norm task starts, every block has been claimed by a running thread: waiting for them
  // cannot deadlock (and inline, in order, never waits). A second run() would cost a second hand-off.
  const std::size_t rows_per_norm_task = ceil_div(M, min(threads, M));
  std::atomic<std::size_t> blocks_done{0};
  pool->run(blocks + ceil_div(M, rows_per_norm_task), [&](std::size_t task, int) {
    if (task < blocks) {
      struct Count {  // counts the block even if it threw, so that no norm task waits forever
        std::atomic<std::size_t>& done;
        ~Count() { done.fetch_add(1, std::memory_order_release); }
      } count{blocks_done};
      block(task, false);
      return;
    }
    for (unsigned spins = 0; blocks_done.load(std::memory_order_acquire) < blocks; ++spins) {
      if (spins < 4096) cpu_relax();
      else std::this_thread::yield();  // a block's thread was preempted: let it run
    }
    const std::size_t m0 = (task - blocks) * rows_per_norm_task;
    norm_rows(j, m0, min(m0 + rows_per_norm_task, M));
  });
}

// quantize_input (the up-front path): below this many elements in all, the calling thread quantises alone.
constexpr std::size_t kQuantizeMinElements = 32768;

}  // namespace

void linear_forward(const PackedLinear& layer, const float* A, std::size_t M, std::size_t lda, float* C,
                    std::size_t ldc, const Epilogue& ep, ThreadPool* pool) {
  if (M == 0) return;
  const GemmKernel& g = layer.gemm();
  Job j{&layer, nullptr, layer.table(), layer.n(), layer.k(), g.mr, g.nr, A, nullptr, C, ldc, ep, {}, {}};
  j.tile.K = layer.k();
  j.tile.lda = lda;
  run_job(j, M, pool);
}

QPackedLinear::QPackedLinear(const KernelTable& table, const std::int8_t* W, const float* w_scale,
                             const float* bias, const float* smooth, std::size_t N, std::size_t K)
    : table_(&table), N_(N), K_(K) {
  if (N == 0 || K == 0 || K > kQLinearMaxK)
    throw std::invalid_argument("int8 Linear: need N >= 1 and 1 <= K <= " + std::to_string(kQLinearMaxK) +
                                ", got N=" + std::to_string(N) + ", K=" + std::to_string(K));
  const QGemmKernel& g = table.qgemm;
  const std::size_t padded_n = ceil_div(N, g.nr) * g.nr;
  packed_.resize(padded_n * kp());
  comp_.assign(padded_n, 0);
  w_scale_.assign(padded_n, 0.0f);
  w_sum_.assign(padded_n, 0.0f);
  bias_.assign(padded_n, 0.0f);
  for (std::size_t n = 0; n < N; ++n) {
    std::int64_t sum = 0;
    for (std::size_t k = 0; k < K; ++k) {
      if (W[n * K + k] == -128)
        throw std::invalid_argument("int8 Linear: weight value -128 at row " + std::to_string(n) +
                                    " (int8 weights must lie in [-127, 127])");
      sum += W[n * K + k];
    }
    comp_[n] = static_cast<std::int32_t>(-g.a_offset * sum);
    w_scale_[n] = w_scale[n];
    w_sum_[n] = w_scale[n] * static_cast<float>(sum);  // |sum| <= 127 K < 2^24: exact
    bias_[n] = bias != nullptr ? bias[n] : 0.0f;
  }
  if (smooth != nullptr) smooth_.assign(smooth, smooth + K);
  g.pack(W, N, K, packed_.data());
}

void qlinear_forward(const QPackedLinear& layer, const float* A, std::size_t M, std::size_t lda, float* C,
                     std::size_t ldc, const Epilogue& ep, QScratch& qa, ThreadPool* pool, bool reuse_input) {
  if (M == 0) return;
  const QGemmKernel& g = layer.gemm();
  const std::size_t K = layer.k(), Kp = layer.kp();
  const bool reuse = reuse_input && qa.rows == M && qa.k == K && qa.smooth == layer.smooth() &&
                     qa.quantizer == g.quantize;
  if (!reuse) reserve(qa, layer, M);
  Job j{nullptr, &layer, layer.table(), layer.n(), K, g.mr, g.nr, A, &qa, C, ldc, ep, {}, {}};
  j.qtile.K4 = Kp / 4;
  j.qtile.lda = Kp;
  j.lda = lda;
  j.quantize = !reuse;
  run_job(j, M, pool);
}

void quantize_input(const QPackedLinear& layer, const float* A, std::size_t M, std::size_t lda, QScratch& qa,
                    ThreadPool* pool) {
  const QGemmKernel& g = layer.gemm();
  const std::size_t K = layer.k(), Kp = layer.kp();
  reserve(qa, layer, M);
  const auto quantize = [&](std::size_t m0, std::size_t m1) {
    g.quantize({A + m0 * lda, lda, m1 - m0, K, layer.smooth(), qa.q.data() + m0 * Kp, Kp, qa.scale.data() + m0,
                qa.zero.data() + m0, g.a_offset});
  };
  const std::size_t threads = pool != nullptr ? static_cast<std::size_t>(pool->size()) : 1;
  if (threads == 1 || M * K < kQuantizeMinElements || M < 2) {
    quantize(0, M);
  } else {
    const std::size_t parts = min(threads, M), rows = ceil_div(M, parts);
    pool->run(ceil_div(M, rows), [&](std::size_t task, int) { quantize(task * rows, min(task * rows + rows, M)); });
  }
}

}  // namespace mbl::ops
