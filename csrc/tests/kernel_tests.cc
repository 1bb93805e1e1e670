// Standalone kernel tests: every ISA this CPU can run (its dispatch table, cpu/dispatch.h) against float64
// references. No Python, so the same binary runs natively and, cross-compiled, under qemu-user (ctest uses
// CMAKE_CROSSCOMPILING_EMULATOR). Shapes are small and subsampled: emulated NEON runs ~50x slower.
//
// Output is unbuffered (a SIGILL under qemu would lose buffered lines); the last line is
// "N passed, M failed" and the exit status is non-zero on any failure. A "case" is one shape/option
// combination; within it every element is checked and the first few mismatches are printed.
#include <cfloat>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpuinfo.h"
#include "cpu/dispatch.h"
#include "kernels/kernels.h"
#include "ops/linear.h"

namespace {

using namespace mbl;

int g_passed = 0, g_failed = 0, g_printed = 0;
std::string g_isa;

// Records one case; prints its description (printf-style) if it failed.
void report(bool ok, const char* fmt, ...) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  if (g_printed++ >= 40) return;  // enough to diagnose; the count still says how many
  std::va_list args;
  va_start(args, fmt);
  std::fprintf(stderr, "FAIL [%s] ", g_isa.c_str());
  std::vfprintf(stderr, fmt, args);
  std::fputc('\n', stderr);
  va_end(args);
}

std::mt19937 g_rng(12345);
float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(g_rng); }
int small_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g_rng); }
std::vector<float> randv(std::size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float& x : v) x = uniform(lo, hi);
  return v;
}

// |got - ref| <= atol + rtol |ref|, NaN only where the reference is NaN. Element-wise, no reductions in
// double over float arrays (GCC 12's aarch64 vectoriser ICEs on some of those, see arm_testing.md).
bool close(float got, double ref, double rtol, double atol) {
  if (std::isnan(ref)) return std::isnan(got);
  if (std::isinf(ref)) return got == ref;
  return std::fabs(static_cast<double>(got) - ref) <= atol + rtol * std::fabs(ref);
}

constexpr float kCanary = -7777.25f;

// --- GEMM microkernel -----------------------------------------------------------------------------------

// Runs the table's ukernel over C[M, N] tile by tile, as the driver does, with canaries around C and after
// the packed panels. Returns false if a canary was touched.
bool run_gemm(const GemmKernel& g, const std::vector<float>& A, const std::vector<float>& W,
              const std::vector<float>& bias, std::size_t M, std::size_t N, std::size_t K, float lo, float hi,
              std::vector<float>& C, std::size_t& ldc) {
  const std::size_t panels = (N + g.nr - 1) / g.nr;
  std::vector<float> packed(panels * g.nr * K + 8, kCanary);
  g.pack(W.data(), N, K, packed.data());
  bool ok = true;
  for (std::size_t i = panels * g.nr * K; i < packed.size(); ++i) ok &= packed[i] == kCanary;
  std::vector<float> bias_pad(panels * g.nr, 0.0f);
  std::copy(bias.begin(), bias.end(), bias_pad.begin());

  ldc = N + 3;  // one canary row above and below, one column left, two right
  C.assign((M + 2) * ldc, kCanary);
  float* c0 = C.data() + ldc + 1;
  for (std::size_t n0 = 0; n0 < N; n0 += g.nr)
    for (std::size_t m0 = 0; m0 < M; m0 += g.mr) {
      kernels::GemmTile t{};
      t.mr = M - m0 < g.mr ? M - m0 : g.mr;
      t.nr = N - n0 < g.nr ? N - n0 : g.nr;
      t.K = K;
      t.A = A.data() + m0 * K;
      t.lda = K;
      t.panel = packed.data() + n0 * K;
      t.bias = bias_pad.data() + n0;
      t.C = c0 + m0 * ldc + n0;
      t.ldc = ldc;
      t.lo = lo;
      t.hi = hi;
      g.ukernel(t);
    }
  for (std::size_t r = 0; r < M + 2; ++r)
    for (std::size_t c = 0; c < ldc; ++c)
      if (r == 0 || r == M + 1 || c == 0 || c > N) ok &= C[r * ldc + c] == kCanary;
  return ok;
}

double gemm_ref(const std::vector<float>& A, const std::vector<float>& W, const std::vector<float>& bias,
                std::size_t K, std::size_t m, std::size_t n) {
  double s = bias[n];
  for (std::size_t k = 0; k < K; ++k) s += static_cast<double>(A[m * K + k]) * W[n * K + k];
  return s;
}

double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

void test_gemm_ukernel(const GemmKernel& g) {
  constexpr float kInf = INFINITY;
  const float los[] = {-kInf, 0.0f, 0.0f}, his[] = {kInf, kInf, 6.0f};  // none, ReLU, ReLU6
  const std::size_t Ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 64};
  int variant = 0;
  // Exact: small integers, every partial sum exactly representable, so every tier must match bit for bit.
  // Every M and N in 1..2*tile+1 (full tiles, tails, two tiles plus a tail); a few K.
  for (std::size_t M = 1; M <= 2 * g.mr + 1; ++M)
    for (std::size_t N = 1; N <= 2 * g.nr + 1; ++N)
      for (std::size_t K : Ks) {
        const int act = variant++ % 3;
        std::vector<float> A(M * K), W(N * K), bias(N);
        for (float& x : A) x = static_cast<float>(small_int(-4, 4));
        for (float& x : W) x = static_cast<float>(small_int(-4, 4));
        for (float& x : bias) x = static_cast<float>(small_int(-8, 8));
        std::vector<float> C;
        std::size_t ldc = 0;
        const bool canaries = run_gemm(g, A, W, bias, M, N, K, los[act], his[act], C, ldc);
        bool ok = canaries;
        for (std::size_t m = 0; m < M; ++m)
          for (std::size_t n = 0; n < N; ++n)
            ok &= C[(m + 1) * ldc + n + 1] == static_cast<float>(clampd(gemm_ref(A, W, bias, K, m, n), los[act], his[act]));
        report(ok, "gemm exact M=%zu N=%zu K=%zu act=%d%s", M, N, K, act, canaries ? "" : " (canary)");
      }
  // Random floats against float64: float32 accumulation of K terms, error <= K u sum|a w| (loosely).
  const std::size_t shapes[][3] = {{1, 1, 1}, {g.mr, g.nr, 64}, {2 * g.mr + 1, 2 * g.nr + 1, 67},
                                   {g.mr - 1, g.nr + 1, 128}, {3, 5, 200}};
  for (const auto& s : shapes) {
    const std::size_t M = s[0] ? s[0] : 1, N = s[1], K = s[2];
    const std::vector<float> A = randv(M * K, -1, 1), W = randv(N * K, -1, 1), bias = randv(N, -1, 1);
    std::vector<float> C;
    std::size_t ldc = 0;
    bool ok = run_gemm(g, A, W, bias, M, N, K, -kInf, kInf, C, ldc);
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = 0; n < N; ++n)
        ok &= close(C[(m + 1) * ldc + n + 1], gemm_ref(A, W, bias, K, m, n), 0, 1.2e-7 * (K + 1) * 1.0);
    report(ok, "gemm random M=%zu N=%zu K=%zu", M, N, K);
  }
  // NaN in A passes through the clamp (ReLU must not turn it into 0); inf propagates.
  {
    const std::size_t M = g.mr, N = g.nr, K = 3;
    std::vector<float> A(M * K, 1.0f), W(N * K, 1.0f), bias(N, 0.0f);
    A[0] = NAN;
    A[K] = INFINITY;
    std::vector<float> C;
    std::size_t ldc = 0;
    bool ok = run_gemm(g, A, W, bias, M, N, K, 0.0f, kInf, C, ldc);
    for (std::size_t n = 0; n < N; ++n)
      ok &= std::isnan(C[ldc + 1 + n]) && C[2 * ldc + 1 + n] == kInf && C[3 * ldc + 1 + n] == 3.0f;
    report(ok, "gemm NaN/inf through ReLU");
  }
}

// --- Linear layer: the microkernel plus every epilogue of ops/linear.h ----------------------------------

double act_ref(ops::Activation a, double x) {
  switch (a) {
    case ops::Activation::relu: return x < 0 ? 0 : x;
    case ops::Activation::relu6: return clampd(x, 0, 6);
    case ops::Activation::gelu: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case ops::Activation::tanh: return std::tanh(x);
    case ops::Activation::sigmoid: return 1 / (1 + std::exp(-x));
    default: return x;
  }
}

void test_linear(const KernelTable& table) {
  const ops::Activation acts[] = {ops::Activation::none, ops::Activation::relu, ops::Activation::relu6,
                                  ops::Activation::gelu, ops::Activation::tanh, ops::Activation::sigmoid};
  const ops::Norm norms[] = {ops::Norm::none, ops::Norm::no_norm, ops::Norm::layer_norm};
  const std::size_t M = table.gemm.mr + 3, N = table.gemm.nr + 5, K = 37;
  int variant = 0;
  for (ops::Activation act : acts)
    for (ops::Norm norm : norms)
      for (int with_bias = 0; with_bias < 2; ++with_bias)
        for (int with_res = 0; with_res < 2; ++with_res) {
          if (variant++ % 2 == 1 && norm != ops::Norm::layer_norm) continue;  // subsample
          const std::vector<float> A = randv(M * K, -1, 1), W = randv(N * K, -0.5f, 0.5f);
          const std::vector<float> bias = randv(N, -1, 1), res = randv(M * N, -2, 2);
          const std::vector<float> gamma = randv(N, 0.5f, 1.5f), beta = randv(N, -1, 1);
          ops::PackedLinear layer(table, W.data(), with_bias ? bias.data() : nullptr, N, K);
          ops::Epilogue ep;
          ep.activation = act;
          ep.residual = with_res ? res.data() : nullptr;
          ep.ldr = N;
          ep.norm = norm;
          ep.norm_weight = gamma.data();
          ep.norm_bias = beta.data();
          ep.eps = 1e-5f;
          const std::size_t ldc = N + 1;
          std::vector<float> C(M * ldc, kCanary);
          ops::linear_forward(layer, A.data(), M, K, C.data(), ldc, ep);
          bool ok = true;
          for (std::size_t m = 0; m < M; ++m) {
            std::vector<double> y(N);
            for (std::size_t n = 0; n < N; ++n) {
              double s = with_bias ? bias[n] : 0.0;
              for (std::size_t k = 0; k < K; ++k) s += static_cast<double>(A[m * K + k]) * W[n * K + k];
              y[n] = act_ref(act, s) + (with_res ? res[m * N + n] : 0.0);
            }
            if (norm == ops::Norm::layer_norm) {
              double mean = 0, var = 0;
              for (double v : y) mean += v;
              mean /= N;
              for (double v : y) var += (v - mean) * (v - mean);
              var /= N;
              for (double& v : y) v = (v - mean) / std::sqrt(var + 1e-5);
            }
            for (std::size_t n = 0; n < N; ++n) {
              const double ref = norm == ops::Norm::none ? y[n] : y[n] * gamma[n] + beta[n];
              ok &= close(C[m * ldc + n], ref, 1e-5, 2e-5);
            }
            ok &= C[m * ldc + N] == kCanary;
          }
          report(ok, "linear act=%d norm=%d bias=%d residual=%d", static_cast<int>(act), static_cast<int>(norm),
                 with_bias, with_res);
        }
}

// --- Row op: add_norm ------------------------------------------------------------------------------------

void test_add_norm(const KernelTable& table) {
  const std::size_t Ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 128, 515};
  for (std::size_t N : Ns)
    for (int ln = 0; ln < 2; ++ln)
      for (int opts = 0; opts < 4; ++opts) {
        const bool with_bias = opts & 1, with_res = opts & 2, in_place = N % 2 == 1;
        const std::size_t M = 3;
        std::vector<float> x = randv(M * N, -3, 3), bias = randv(N, -1, 1), res = randv(M * N, -1, 1);
        const std::vector<float> w = randv(N, 0.5f, 1.5f), beta = randv(N, -1, 1);
        std::vector<float> ref(M * N), out(M * N + 4, kCanary);
        for (std::size_t m = 0; m < M; ++m) {
          std::vector<float> y(N);  // the contract's y: (x + bias) + residual in float32
          for (std::size_t n = 0; n < N; ++n) {
            float v = x[m * N + n];
            if (with_bias) v += bias[n];
            if (with_res) v += res[m * N + n];
            y[n] = v;
          }
          double mean = 0, var = 0;
          for (float v : y) mean += v;
          mean /= N;
          for (float v : y) var += (v - mean) * (v - mean);
          var /= N;
          for (std::size_t n = 0; n < N; ++n) {
            const double yn = ln ? (y[n] - mean) / std::sqrt(var + 1e-5) : y[n];
            ref[m * N + n] = static_cast<float>(yn * w[n] + beta[n]);
          }
        }
        float* o = in_place ? x.data() : out.data();
        kernels::AddNormParams p{x.data(), with_bias ? bias.data() : nullptr, with_res ? res.data() : nullptr,
                                 w.data(), beta.data(), o, M, N, ln == 1, 1e-5f};
        table.add_norm.fn(p);
        bool ok = true;
        for (std::size_t i = 0; i < M * N; ++i) ok &= close(o[i], ref[i], 2e-6, ln ? 1e-5 : 1e-6);
        if (!in_place)
          for (std::size_t i = M * N; i < out.size(); ++i) ok &= out[i] == kCanary;
        report(ok, "add_norm N=%zu layer_norm=%d bias=%d residual=%d in_place=%d", N, ln, with_bias, with_res,
               in_place);
      }
}

// --- Attention -------------------------------------------------------------------------------------------

void test_attention(const KernelTable& table) {
  const std::size_t Ls[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33};
  const std::size_t ds[] = {1, 3, 4, 8, 17, 32};
  const float mask_values[] = {-FLT_MAX, -10000.0f};
  int variant = 0;
  for (std::size_t L : Ls)
    for (std::size_t d : ds)
      for (float mask_value : mask_values)
        for (int mask_kind = 0; mask_kind < 4; ++mask_kind) {  // none, some keys, all keys, all but one
          if (variant++ % 2 == 1 && L > 4) continue;  // subsample
          const std::size_t ld = d + 2;                  // strided rows: the kernel must not read past d
          const std::vector<float> q = randv(L * ld, -2, 2), k = randv(L * ld, -2, 2), v = randv(L * ld, -1, 1);
          std::vector<unsigned char> keep(L, 1);
          for (std::size_t j = 0; j < L; ++j) {
            if (mask_kind == 1) keep[j] = (j * 7 + 3) % 3 != 0;
            if (mask_kind >= 2) keep[j] = mask_kind == 3 && j == L / 2;
          }
          const float scale = 1.0f / std::sqrt(static_cast<float>(d));
          std::vector<float> ctx(L * ld, kCanary), probs(L * L + 3, kCanary);
          std::vector<float> scratch(kernels::attention_scratch_floats(L, d));
          kernels::AttentionHead a{q.data(), k.data(), v.data(), ld, ld, ld,
                                   mask_kind == 0 ? nullptr : keep.data(), L, d, scale, mask_value,
                                   ctx.data(), ld, probs.data(), scratch.data()};
          table.attention.head(a);

          bool ok = true, all_masked = mask_kind == 2;
          // -10000 on a fully masked row: every score is rounded to ulp(10000) ~ 1e-3 after the shift, and a
          // float32 vs float64 dot product may round to the neighbour: p = e^(s - max) / sum moves by up to
          // ~2 such ulps in the exponent (s and max): ~4e-3 relative on p, and on ctx (sum p = 1, |v| <= 1)
          // ~4e-3 absolute.
          const bool coarse = all_masked && mask_value == -10000.0f;
          const double rtol = coarse ? 4e-3 : 1e-5, ctx_atol = coarse ? 4e-3 : 2e-6;
          for (std::size_t i = 0; i < L; ++i) {
            std::vector<double> p(L);
            double mx = -INFINITY, sum = 0;
            for (std::size_t j = 0; j < L; ++j) {
              double dot = 0;
              for (std::size_t t = 0; t < d; ++t) dot += static_cast<double>(q[i * ld + t]) * k[j * ld + t];
              float s = static_cast<float>(dot * scale);  // HF: float32 scores, the mask added in float32
              if (!keep[j]) s += mask_value;
              p[j] = s;
              mx = std::max(mx, p[j]);
            }
            for (double& x : p) sum += (x = std::exp(x - mx));
            for (std::size_t j = 0; j < L; ++j) {
              p[j] /= sum;
              ok &= close(probs[i * L + j], p[j], rtol, 1e-6);
            }
            for (std::size_t t = 0; t < d; ++t) {
              double c = 0;
              for (std::size_t j = 0; j < L; ++j) c += p[j] * v[j * ld + t];
              ok &= close(ctx[i * ld + t], c, rtol, ctx_atol);
            }
            for (std::size_t t = d; t < ld; ++t) ok &= ctx[i * ld + t] == kCanary;
          }
          for (std::size_t i = L * L; i < probs.size(); ++i) ok &= probs[i] == kCanary;
          report(ok, "attention L=%zu d=%zu mask=%d mask_value=%g", L, d, mask_kind, mask_value);
        }
}

// exp over a sweep of [-110, 95] plus specials: <= ~1.02 ulp where the result is normal; below FLT_MIN
// only an absolute bound (ARMv7 NEON flushes subnormals to zero).
void test_exp(const KernelTable& table) {
  std::vector<float> x;
  for (float v = -110.0f; v < 95.0f; v += 0.0137f) x.push_back(v);
  x.push_back(0.0f);
  x.push_back(-0.0f);
  x.push_back(INFINITY);
  x.push_back(-INFINITY);
  x.push_back(NAN);
  std::vector<float> y(x.size() + 1, kCanary);
  table.attention.exp(x.data(), y.data(), x.size());
  int bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double r = std::exp(static_cast<double>(x[i]));
    bool ok;
    if (std::isnan(r)) ok = std::isnan(y[i]);
    else if (r > FLT_MAX) ok = y[i] == INFINITY;  // overflow, +inf included
    else if (r >= FLT_MIN) ok = close(y[i], r, 1.25e-7, 0);
    else ok = close(y[i], r, 0, FLT_MIN);
    if (!ok && bad++ < 3) std::fprintf(stderr, "  exp(%.9g) = %.9g, want %.9g\n", x[i], y[i], r);
  }
  report(bad == 0 && y.back() == kCanary, "exp_row (%d bad of %zu)", bad, x.size());
}


// --- int8 GEMM and the activation quantiser -------------------------------------------------------------

std::size_t round4(std::size_t k) { return (k + 3) / 4 * 4; }

// Runs the config's ukernel over C[M, N] tile by tile, with canaries around C and after the packed panels.
// Aq holds the quantised bytes (ldq = Kp); returns false if a canary was touched.
bool run_qgemm(const QGemmKernel& g, const std::vector<std::uint8_t>& Aq, const std::vector<float>& a_scale,
               const std::vector<float>& a_zero, const std::vector<std::int8_t>& W, const std::vector<float>& w_scale,
               const std::vector<float>& bias,
               std::size_t M, std::size_t N, std::size_t K, float lo, float hi, std::vector<float>& C,
               std::size_t& ldc, const float* residual = nullptr, const float* norm_w = nullptr,
               const float* norm_b = nullptr) {
  const std::size_t Kp = round4(K), panels = (N + g.nr - 1) / g.nr, padded = panels * g.nr;
  std::vector<std::int8_t> packed(padded * Kp + 16, 77);
  g.pack(W.data(), N, K, packed.data());
  bool ok = true;
  for (std::size_t i = padded * Kp; i < packed.size(); ++i) ok &= packed[i] == 77;
  std::vector<std::int32_t> comp(padded, 0);
  std::vector<float> ws(padded, 0.0f), wsum(padded, 0.0f), bs(padded, 0.0f);
  for (std::size_t n = 0; n < N; ++n) {
    std::int64_t sum = 0;
    for (std::size_t k = 0; k < K; ++k) sum += W[n * K + k];
    comp[n] = static_cast<std::int32_t>(-g.a_offset * sum);
    ws[n] = w_scale[n];
    wsum[n] = w_scale[n] * static_cast<float>(sum);
    bs[n] = bias[n];
  }
  ldc = N + 3;
  C.assign((M + 2) * ldc, kCanary);
  float* c0 = C.data() + ldc + 1;
  for (std::size_t n0 = 0; n0 < N; n0 += g.nr)
    for (std::size_t m0 = 0; m0 < M; m0 += g.mr) {
      kernels::QGemmTile t{};
      t.mr = M - m0 < g.mr ? M - m0 : g.mr;
      t.nr = N - n0 < g.nr ? N - n0 : g.nr;
      t.K4 = Kp / 4;
      t.A = Aq.data() + m0 * Kp;
      t.lda = Kp;
      t.panel = packed.data() + n0 * Kp;
      t.comp = comp.data() + n0;
      t.a_scale = a_scale.data() + m0;
      t.a_zero = a_zero.data() + m0;
      t.w_scale = ws.data() + n0;
      t.w_sum = wsum.data() + n0;
      t.bias = bs.data() + n0;
      t.C = c0 + m0 * ldc + n0;
      t.ldc = ldc;
      t.lo = lo;
      t.hi = hi;
      if (norm_w != nullptr) {
        t.residual = residual != nullptr ? residual + m0 * N + n0 : nullptr;
        t.ldr = N;
        t.norm_weight = norm_w + n0;
        t.norm_bias = norm_b + n0;
      }
      g.ukernel(t);
    }
  for (std::size_t r = 0; r < M + 2; ++r)
    for (std::size_t c = 0; c < ldc; ++c)
      if (r == 0 || r == M + 1 || c == 0 || c > N) ok &= C[r * ldc + c] == kCanary;
  return ok;
}

// Quantised bytes of integer values q (what quantize_rows would store for them), K padded to Kp.
std::vector<std::uint8_t> as_bytes(const std::vector<int>& q, std::size_t M, std::size_t K, int offset) {
  const std::size_t Kp = round4(K);
  std::vector<std::uint8_t> b(M * Kp, static_cast<std::uint8_t>(offset));
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t k = 0; k < K; ++k) b[m * Kp + k] = static_cast<std::uint8_t>(q[m * K + k] + offset);
  return b;
}

void test_qgemm(const QGemmKernel& g) {
  constexpr float kInf = INFINITY;
  const float los[] = {-kInf, 0.0f, 0.0f}, his[] = {kInf, kInf, 6.0f};
  const std::size_t Ks[] = {1, 3, 4, 5, 8, 13, 16, 31, 64};
  int variant = 0;
  // Exact: unit scales and integer biases, so C is the int32 sum itself (|sum| < 2^24) plus the bias, and
  // every tier must match the int64 reference bit for bit. Full-range values, including +-127 extremes.
  for (std::size_t M = 1; M <= 2 * g.mr + 1; ++M)
    for (std::size_t N = 1; N <= 2 * g.nr + 1; ++N)
      for (std::size_t K : Ks) {
        const int act = variant++ % 3;
        std::vector<int> q(M * K);
        std::vector<std::int8_t> W(N * K);
        for (int& x : q) x = small_int(0, 9) == 0 ? (small_int(0, 1) ? 127 : -128) : small_int(-128, 127);
        for (auto& x : W) x = static_cast<std::int8_t>(small_int(0, 9) == 0 ? (small_int(0, 1) ? 127 : -127)
                                                                           : small_int(-127, 127));
        std::vector<float> as(M, 1.0f), az(M, 0.0f), ws(N, 1.0f), bias(N);
        for (float& x : bias) x = static_cast<float>(small_int(-8, 8));
        std::vector<float> C;
        std::size_t ldc = 0;
        const bool canaries = run_qgemm(g, as_bytes(q, M, K, g.a_offset), as, az, W, ws, bias, M, N, K, los[act],
                                        his[act], C, ldc);
        bool ok = canaries;
        for (std::size_t m = 0; m < M; ++m)
          for (std::size_t n = 0; n < N; ++n) {
            std::int64_t s = 0;
            for (std::size_t k = 0; k < K; ++k) s += static_cast<std::int64_t>(q[m * K + k]) * W[n * K + k];
            ok &= C[(m + 1) * ldc + n + 1] == static_cast<float>(clampd(static_cast<double>(s) + bias[n], los[act], his[act]));
          }
        report(ok, "qgemm exact M=%zu N=%zu K=%zu act=%d%s", M, N, K, act, canaries ? "" : " (canary)");
      }
  // Scales and zeros: C = fma(float(acc), a_scale * w_scale, fma(a_zero, w_sum, bias)) exactly as the contract
  // says (one float32 product, fused roundings), and a NaN row scale/zero gives NaN outputs through the clamp.
  {
    const std::size_t M = g.mr + 1, N = g.nr + 3, K = 37;
    std::vector<int> q(M * K);
    std::vector<std::int8_t> W(N * K);
    for (int& x : q) x = small_int(-128, 127);
    for (auto& x : W) x = static_cast<std::int8_t>(small_int(-127, 127));
    std::vector<float> as = randv(M, 1e-4f, 1e-1f), az = randv(M, -2, 2), ws = randv(N, 1e-4f, 1e-2f),
                       bias = randv(N, -1, 1);
    as[M - 1] = NAN;
    az[M - 1] = NAN;
    std::vector<float> C;
    std::size_t ldc = 0;
    bool ok = run_qgemm(g, as_bytes(q, M, K, g.a_offset), as, az, W, ws, bias, M, N, K, 0.0f, kInf, C, ldc);
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t n = 0; n < N; ++n) {
        std::int64_t s = 0, wsum = 0;
        for (std::size_t k = 0; k < K; ++k) s += static_cast<std::int64_t>(q[m * K + k]) * W[n * K + k];
        for (std::size_t k = 0; k < K; ++k) wsum += W[n * K + k];
        float want = std::fma(static_cast<float>(s), as[m] * ws[n],
                              std::fma(az[m], ws[n] * static_cast<float>(wsum), bias[n]));
        want = want < 0.0f ? 0.0f : want;
        const float got = C[(m + 1) * ldc + n + 1];
        ok &= m + 1 == M ? std::isnan(got) : got == want;
      }
    report(ok, "qgemm scaled epilogue with zeros and a NaN row");
  }
  // Fused NoNorm (configs that offer it): fma(clamp(...) + residual, w, b), residual and norm read unpadded.
  if (g.fuses_no_norm)
    for (int with_residual = 0; with_residual < 2; ++with_residual) {
      const std::size_t M = 2 * g.mr + 1, N = 2 * g.nr + 3, K = 21;
      std::vector<int> q(M * K);
      std::vector<std::int8_t> W(N * K);
      for (int& x : q) x = small_int(-128, 127);
      for (auto& x : W) x = static_cast<std::int8_t>(small_int(-127, 127));
      std::vector<float> as = randv(M, 1e-3f, 1e-2f), az = randv(M, -1, 1), ws = randv(N, 1e-3f, 1e-2f),
                         bias = randv(N, -1, 1), res = randv(M * N, -2, 2), nw = randv(N, -2, 2), nb = randv(N, -1, 1);
      std::vector<float> C;
      std::size_t ldc = 0;
      bool ok = run_qgemm(g, as_bytes(q, M, K, g.a_offset), as, az, W, ws, bias, M, N, K, 0.0f, 6.0f, C, ldc,
                          with_residual ? res.data() : nullptr, nw.data(), nb.data());
      for (std::size_t m = 0; m < M; ++m)
        for (std::size_t n = 0; n < N; ++n) {
          std::int64_t s = 0, wsum = 0;
          for (std::size_t k = 0; k < K; ++k) s += static_cast<std::int64_t>(q[m * K + k]) * W[n * K + k];
          for (std::size_t k = 0; k < K; ++k) wsum += W[n * K + k];
          float v = std::fma(static_cast<float>(s), as[m] * ws[n],
                             std::fma(az[m], ws[n] * static_cast<float>(wsum), bias[n]));
          v = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
          if (with_residual) v += res[m * N + n];
          ok &= C[(m + 1) * ldc + n + 1] == std::fma(v, nw[n], nb[n]);
        }
      report(ok, "qgemm fused NoNorm residual=%d", with_residual);
    }
  // The largest K the driver allows at full range: acc near +-2^31 must not wrap (checked in int64).
  {
    const std::size_t M = 2, N = 3, K = ops::kQLinearMaxK;
    std::vector<int> q(M * K, 127);
    std::vector<std::int8_t> W(N * K, 127);
    for (std::size_t k = 0; k < K; ++k) q[K + k] = -128;  // second row: the negative extreme
    std::vector<float> as(M, 1.0f), az(M, 0.0f), ws(N, 1.0f), bias(N, 0.0f);
    std::vector<float> C;
    std::size_t ldc = 0;
    bool ok = run_qgemm(g, as_bytes(q, M, K, g.a_offset), as, az, W, ws, bias, M, N, K, -kInf, kInf, C, ldc);
    const double s = 127.0 * 127.0 * static_cast<double>(K);
    for (std::size_t n = 0; n < N; ++n)
      ok &= C[ldc + 1 + n] == static_cast<float>(s) && C[2 * ldc + 1 + n] == static_cast<float>(-s * 128 / 127);
    report(ok, "qgemm K=%zu at full range (no int32 wrap)", K);
  }
}

// The quantiser against the portable statement of the contract (scalar tier), bit for bit: bytes, padding
// and scales, with ties, zero rows, non-finite rows, smoothing and canaries past each row's Kp.
void test_quantize(const QGemmKernel& g, const QGemmKernel& ref) {
  const std::size_t Ks[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 128, 130};
  for (std::size_t K : Ks)
    for (int smooth_on = 0; smooth_on < 2; ++smooth_on) {
      const std::size_t M = 9, Kp = round4(K), ldx = K + 2, ldq = Kp + 5;
      std::vector<float> x = randv(M * ldx, -3, 3), smooth = randv(K, 0.25f, 4.0f);
      // row 1: exact ties (range 255 from lo -127.5 -> inv 1: halves round to even); row 2: zeros (constant);
      // row 3: a NaN; row 4: an inf; row 5: one huge outlier; row 6: one-signed (ReLU-like); row 7: constant 2.5
      for (std::size_t k = 0; k < K; ++k) x[ldx + k] = static_cast<float>(small_int(-255, 255)) * 0.5f;
      x[ldx] = -127.5f;
      if (K > 1) x[ldx + 1] = 127.5f;
      for (std::size_t k = 0; k < K; ++k) x[2 * ldx + k] = 0.0f;
      x[3 * ldx + K / 2] = NAN;
      x[4 * ldx + K - 1] = -INFINITY;
      x[5 * ldx] = 3e4f;
      for (std::size_t k = 0; k < K; ++k) x[6 * ldx + k] = std::fabs(x[6 * ldx + k]);
      for (std::size_t k = 0; k < K; ++k) x[7 * ldx + k] = 2.5f;
      // row 8: a range below 255 / FLT_MAX (subnormals): inv overflows, treated as constant (scale 0, zero lo)
      for (std::size_t k = 0; k < K; ++k) x[8 * ldx + k] = static_cast<float>(small_int(-3, 3)) * 1e-39f;
      const float* sm = smooth_on ? smooth.data() : nullptr;
      std::vector<std::uint8_t> got(M * ldq, 0xA5), want(M * ldq, 0xA5);
      std::vector<float> gs(M, -1.0f), ws(M, -1.0f), gz(M, -1.0f), wz(M, -1.0f);
      ref.quantize({x.data(), ldx, M, K, sm, want.data(), ldq, ws.data(), wz.data(), g.a_offset});
      g.quantize({x.data(), ldx, M, K, sm, got.data(), ldq, gs.data(), gz.data(), g.a_offset});
      bool ok = got == want;
      const auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
      for (std::size_t m = 0; m < M; ++m) {
        ok &= same(ws[m], gs[m]) && same(wz[m], gz[m]);
        for (std::size_t k = Kp; k < ldq; ++k) ok &= got[m * ldq + k] == 0xA5;
      }
      // the portable reference against the contract's own arithmetic on the tie row (smoothing off, K > 1)
      if (!smooth_on && K > 1)
        for (std::size_t k = 0; k < K; ++k)
          ok &= static_cast<std::int8_t>(static_cast<std::uint8_t>(want[ldq + k] - g.a_offset)) ==
                static_cast<int>(std::nearbyint(x[ldx + k] + 127.5f)) - 128;
      ok &= ws[2] == 0.0f && wz[2] == 0.0f && (smooth_on || (ws[7] == 0.0f && wz[7] == 2.5f));
      ok &= ws[8] == 0.0f;
      ok &= std::isnan(ws[3]) && std::isnan(ws[4]) && std::isnan(wz[3]) && std::isnan(wz[4]);
      report(ok, "quantize_rows K=%zu smooth=%d", K, smooth_on);
    }
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  std::setvbuf(stderr, nullptr, _IONBF, 0);
  std::printf("cpu features:");
  for (const auto& [name, has] : cpu::feature_list(cpu::cpu_features()))
    if (has) std::printf(" %s", name.c_str());
  std::printf("\n");
  // The table the engine would use (honours MBL_FORCE_ISA; an invalid value throws, which is a failure).
  try {
    const KernelTable& active = kernel_table();
    std::printf("active isa: %s (gemm %s)\n", isa_name(active.isa), active.gemm.name);
  } catch (const std::exception& e) {
    report(false, "kernel_table(): %s", e.what());
  }
  for (Isa isa : all_isas()) {
    if (!isa_supported(isa)) continue;
    g_isa = isa_name(isa);
    const KernelTable& t = kernel_table_for(g_isa);
    const int before_pass = g_passed, before_fail = g_failed;
    test_gemm_ukernel(t.gemm);
    test_linear(t);
    test_add_norm(t);
    test_attention(t);
    test_exp(t);
    test_qgemm(t.qgemm);
    test_quantize(t.qgemm, kernel_table_for("scalar").qgemm);
    std::printf("%-12s gemm=%s attention=%s add_norm=%s qgemm=%s: %d passed, %d failed\n", g_isa.c_str(),
                t.gemm.name, t.attention.name, t.add_norm.name, t.qgemm.name, g_passed - before_pass,
                g_failed - before_fail);
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
