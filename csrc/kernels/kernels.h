// The kernel contract: what every ISA variant of a kernel takes, may touch and must compute.
//
// Kernels are single-threaded, never allocate, and never read or write outside the extents documented
// here (no over-reads past a row end: tails use masked loads or small stack copies). No alignment is
// required of any pointer. Each ISA provides its variants in its own namespace (mbl::kernels::<isa>);
// dispatch (cpu/dispatch.h) picks one per op. Only the declarations live here, so this header is safe to
// include from any translation unit regardless of its compile flags.
#pragma once

#include <cstddef>
#include <cstdint>

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

// GEMM: C[M, N] = A[M, K] * W^T (+ bias), W a PyTorch Linear weight [N, K] row-major. Weights are packed
// once (pack) into panels of nr columns: panel j holds columns [j*nr, j*nr + nr) as K rows of nr floats
// (K-major inside the panel, so the microkernel streams it), columns past N zero-padded; the panels are
// stored one after another, ceil(N / nr) * nr * K floats in all. A is read in place, row-major with stride
// lda. The driver (ops/linear.h) walks C in mr x nr tiles and applies the rest of the epilogue.
//
// pack: packed[j*nr*K + k*nr + c] = W[(j*nr + c)*K + k] for j*nr + c < N, else 0. W and packed must not
//   overlap; N, K >= 1.
using gemm_pack_fn = void (*)(const float* W, std::size_t N, std::size_t K, float* packed);

// ukernel: one tile of up to mr x nr outputs,
//   C[m*ldc + n] = clamp(bias[n] + sum_k A[m*lda + k] * panel[k*nr_max + n], lo, hi)
// for m < mr (1 <= mr <= the config's mr) and n < nr (1 <= nr <= the config's nr). panel is one packed
// panel (nr_max = config nr columns, zero-padded); bias points at nr_max floats (the driver pads it).
// Accumulation is float32, bias first then k = 0, 1, ... in order (never split), one rounding per FMA.
// clamp(v, lo, hi) = v < lo ? lo : (v > hi ? hi : v): NaN passes through; lo = -inf, hi = +inf is the
// identity, [0, inf) is ReLU, [0, 6] is ReLU6. Reads A rows [0, mr) columns [0, K) only; writes C rows
// [0, mr) columns [0, nr) only.
struct GemmTile {
  std::size_t mr, nr, K;
  const float* A;
  std::size_t lda;
  const float* panel;
  const float* bias;
  float* C;
  std::size_t ldc;
  float lo, hi;
};
using gemm_ukernel_fn = void (*)(const GemmTile& t);

// Benchmark probe: `iters` iterations of a loop of independent FMAs; returns a value that depends on all
// of them (so the loop is not optimised away). flops per iteration is reported alongside (see dispatch.h).
using fma_probe_fn = float (*)(std::size_t iters);

// One declaration per compiled variant. A variant is only defined when its ISA is compiled in
// (MBL_HAVE_<ISA>), and only called when the CPU supports it.
namespace scalar { void add_norm(const AddNormParams& p); }  // always present; accumulates in double
namespace avx2   { void add_norm(const AddNormParams& p); }  // AVX2 + FMA, 8 lanes
namespace avx512 { void add_norm(const AddNormParams& p); }  // AVX-512 F/BW/DQ/VL, 16 lanes
namespace neon   { void add_norm(const AddNormParams& p); }  // AArch64 or ARMv7 NEON, 4 lanes

// GEMM variants: <isa>::gemm_<mr>x<nr> and the packer for its nr; fma_probe for the benchmark peak.
namespace scalar {
inline constexpr std::size_t kGemmMr = 4, kGemmNr = 8, kProbeFlops = 2 * 8;
void gemm_ukernel(const GemmTile& t);
void gemm_pack(const float* W, std::size_t N, std::size_t K, float* packed);
float fma_probe(std::size_t iters);
}  // namespace scalar
namespace avx2 {
inline constexpr std::size_t kGemmMr = 6, kGemmNr = 16, kProbeFlops = 2 * 8 * 12;  // 12 ymm FMAs
void gemm_ukernel(const GemmTile& t);
void gemm_pack(const float* W, std::size_t N, std::size_t K, float* packed);
float fma_probe(std::size_t iters);
}  // namespace avx2
namespace avx512 {
inline constexpr std::size_t kGemmMr = 8, kGemmNr = 32, kProbeFlops = 2 * 16 * 16;  // 16 zmm FMAs
void gemm_ukernel(const GemmTile& t);
void gemm_pack(const float* W, std::size_t N, std::size_t K, float* packed);
float fma_probe(std::size_t iters);
}  // namespace avx512
namespace neon {
#if defined(__aarch64__)
// 32 q-registers: 18 accumulators + 3 weight vectors + 6 vectors of A, each 4 consecutive k of one row, used
// lane by lane (Cortex-A72/A76 class): 18 loads per 72 FMAs, where gathering A lane by lane cost 2x that.
inline constexpr std::size_t kGemmMr = 6, kGemmNr = 12, kProbeFlops = 2 * 4 * 16;  // 16 q FMAs
#else
// ARMv7 has 16 q-registers: 8 accumulators + 2 weight vectors + 1 broadcast of A (6x8 would fit on paper,
// but GCC 12 then spills accumulators inside the k loop).
inline constexpr std::size_t kGemmMr = 4, kGemmNr = 8, kProbeFlops = 2 * 4 * 8;  // 8 q FMAs
#endif
void gemm_ukernel(const GemmTile& t);
void gemm_pack(const float* W, std::size_t N, std::size_t K, float* packed);
float fma_probe(std::size_t iters);
}  // namespace neon

// attention_head: multi-head attention for one (batch, head), fused (ops/attention.h is the driver):
//   s[i, j]  = (sum_t q[i*ldq + t] * k[j*ldk + t]) * scale     float32 dot product, then one multiply
//   s[i, j] += mask_value where keep[j] == 0                    additive, as HF: PyTorch adds float32 min (every
//                                                               |s| < 2^103 becomes -FLT_MAX), TensorFlow -10000
//   p[i, :]  = softmax(s[i, :]), max subtracted first           a fully masked row comes out uniform
//   ctx[i*ldc + t]  = sum_j p[i, j] * v[j*ldv + t]
//   probs[i*L + j] = p[i, j]                                    only if probs != nullptr
// for i, j < L and t < d. Reads q, k, v rows [0, L) columns [0, d) and keep[0, L) only; writes ctx rows
// [0, L) columns [0, d), probs [0, L*L) and scratch only. Outputs must not overlap inputs or each other.
// L, d >= 1.
inline constexpr std::size_t kAttentionMaxRows = 8;    // query rows per block, any ISA
inline constexpr std::size_t kAttentionMaxWidth = 16;  // float lanes, any ISA
// Scratch every variant fits in: a mask row, K^T and a block of score rows, each L rounded up to the widest
// vector.
inline constexpr std::size_t attention_scratch_floats(std::size_t L, std::size_t d) {
  const std::size_t lw = (L + kAttentionMaxWidth - 1) / kAttentionMaxWidth * kAttentionMaxWidth;
  return (1 + d + kAttentionMaxRows) * lw;
}
struct AttentionHead {
  const float* q;
  const float* k;
  const float* v;
  std::size_t ldq, ldk, ldv;
  const unsigned char* keep;  // [L], nonzero = attend; nullptr = every key attended
  std::size_t L, d;
  float scale;
  float mask_value;  // added to the score of a masked key: -FLT_MAX (PyTorch semantics) or -10000 (TensorFlow)
  float* ctx;
  std::size_t ldc;
  float* probs;    // [L, L] row-major, or nullptr
  float* scratch;  // attention_scratch_floats(L, d) floats, no alignment required
};
using attention_head_fn = void (*)(const AttentionHead& a);
// exp_row: y[i] = exp(x[i]) for i < n, with the exp the softmax above uses (tests measure its error). x and
// y may be the same array.
using exp_row_fn = void (*)(const float* x, float* y, std::size_t n);

// Attention variants. scalar: double accumulation and std::exp, float32 scores and probabilities (as HF
// stores them); SIMD: float32 throughout with a polynomial exp.
namespace scalar {
void attention_head(const AttentionHead& a);
void exp_row(const float* x, float* y, std::size_t n);
}  // namespace scalar
namespace avx2 {
void attention_head(const AttentionHead& a);
void exp_row(const float* x, float* y, std::size_t n);
}  // namespace avx2
namespace avx512 {
void attention_head(const AttentionHead& a);
void exp_row(const float* x, float* y, std::size_t n);
}  // namespace avx512
namespace neon {
void attention_head(const AttentionHead& a);
void exp_row(const float* x, float* y, std::size_t n);
}  // namespace neon

// --- int8 GEMM (dynamic quantisation) --------------------------------------------------------------------
//
// y = A * W^T + bias with W int8 per output channel (w_scale[n]) and A quantised per row at run time, asymmetric
// (a_scale[m], a_zero[m]), accumulated exactly in int32 and dequantised in the tile's epilogue.
//
// Quantised activations (quantize_rows): for each row m of x[M, K] (row stride ldx),
//   y[k]  = smooth ? x[k] * smooth[k] : x[k]                   float32 multiply (smoothing, optional)
//   lo    = min_k y[k], hi = max_k y[k], range = hi - lo (float32)
//   any y[k] or range not finite: scale[m] = zero[m] = NaN, every q = 0   (the outputs become NaN, as fp32's)
//   inv = 255.0f / range overflows (range < 255 / FLT_MAX, incl. 0: a constant row, or within 1e-36 of one):
//                                  scale[m] = 0, zero[m] = lo, every q = 0  (exact for a constant row)
//   else: scale[m] = range / 255.0f, zero[m] = lo + 128.0f * scale[m] (float32 ops, in that order),
//         u = clamp(rint((y[k] - lo) * inv), 0, 255) (float32 ops, ties to even), q = u - 128
//   so that y[k] ~ scale[m] * q + zero[m] with q in [-128, 127], the whole byte range: never coarser than a
//   symmetric scale, and twice as fine for one-signed rows (ReLU/GELU outputs).
//   Stored as the bytes q[m*ldq + k] = (uint8)(q + a_offset) for k < K and (uint8)a_offset for K <= k < Kp,
//   Kp = round_up(K, 4). a_offset is the GEMM config's: 128 where the multiply takes unsigned activations
//   (x86 VNNI vpdpbusd; the byte is then u itself), 0 where it is signed x signed (ARM sdot, scalar). Every
//   variant gives the same bytes, scales and zeros bit for bit (NumPy reproduces them in float32:
//   mobilebert_lite/quantization.py).
struct QuantizeRows {
  const float* x;
  std::size_t ldx;
  std::size_t M, K;        // M >= 0, K >= 1
  const float* smooth;     // [K] or nullptr
  std::uint8_t* q;         // [M, ldq] bytes, ldq >= Kp; writes columns [0, Kp) of rows [0, M) only
  std::size_t ldq;
  float* scale;            // [M]
  float* zero;             // [M]
  int a_offset;            // 0 or 128
};
using quantize_rows_fn = void (*)(const QuantizeRows& p);

// Weights: int8 values in [-127, 127], W[N, K] row-major, packed (qgemm_pack) into panels of nr columns and
// Kp / 4 groups of 4 consecutive k, each group nr columns x 4 bytes:
//   packed[j*nr*Kp + g*nr*4 + c*4 + i] = W[(j*nr + c)*K + 4g + i]   for j*nr + c < N and 4g + i < K, else 0.
// Panel j starts at j*nr*Kp = n0*Kp for its first column n0. (4 k per column is what vpdpbusd / sdot reduce.)
using qgemm_pack_fn = void (*)(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed);

// ukernel: one tile of up to mr x nr outputs,
//   acc[m, n] = comp[n] + sum_{k < Kp} A[m*lda + k] * panel[(k/4)*nr_max*4 + n*4 + k%4]     exact, int32
//   C[m*ldc + n] = clamp(fma(float(acc), a_scale[m] * w_scale[n], fma(a_zero[m], w_sum[n], bias[n])), lo, hi)
// where the A bytes are unsigned (uint8) when the config's a_offset is 128 and signed (int8) when it is 0,
// comp[n] = -a_offset * sum_k W[n, k] (so acc = sum_k q * W exactly), w_sum[n] = w_scale[n] * float(sum_k W[n, k])
// (both computed by the driver), float(acc) rounds to nearest even, a_scale[m] * w_scale[n] is one float32
// product and each fma is fused (one rounding). clamp as for GemmTile. comp, w_scale, w_sum and bias point at
// nr_max entries (the driver pads them with zeros); a_scale and a_zero at mr. Reads A rows [0, mr) columns
// [0, Kp) only; writes C rows [0, mr) columns [0, nr) only. |acc| < 2^31 is the driver's business (it limits K).
//
// Fused NoNorm (only for configs with QGemmKernel::fuses_no_norm; otherwise these are always nullptr): when
// norm_weight is set, each clamped v becomes fma(v + residual[m*ldr + n], norm_weight[n], norm_bias[n]) -- the
// same operations, in the same order, as add_norm's NoNorm -- with residual optional (nullptr: no add). These
// three are read for n < nr only (they are not padded).
struct QGemmTile {
  std::size_t mr, nr, K4;  // K4 = Kp / 4 groups
  const std::uint8_t* A;
  std::size_t lda;  // bytes
  const std::int8_t* panel;
  const std::int32_t* comp;
  const float* a_scale;
  const float* a_zero;
  const float* w_scale;
  const float* w_sum;
  const float* bias;
  float* C;
  std::size_t ldc;
  float lo, hi;
  const float* residual = nullptr;
  std::size_t ldr = 0;
  const float* norm_weight = nullptr;
  const float* norm_bias = nullptr;
};
using qgemm_ukernel_fn = void (*)(const QGemmTile& t);

// The int8 variants. Each ISA with an int8 GEMM provides qgemm_ukernel (tile kQGemmMr x kQGemmNr), its packer
// and quantize_rows; kQGemmOffset is the a_offset its ukernel expects.
namespace scalar {
inline constexpr std::size_t kQGemmMr = 4, kQGemmNr = 8;
inline constexpr int kQGemmOffset = 0;
void qgemm_ukernel(const QGemmTile& t);
void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed);
void quantize_rows(const QuantizeRows& p);
}  // namespace scalar
namespace avx2 {  // AVX2 without VNNI: exact 16-bit products (no vpmaddubsw saturation)
inline constexpr std::size_t kQGemmMr = 4, kQGemmNr = 16;
inline constexpr int kQGemmOffset = 128;
void qgemm_ukernel(const QGemmTile& t);
void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed);
void quantize_rows(const QuantizeRows& p);
}  // namespace avx2
namespace avx2_vnni {  // AVX-VNNI (VEX vpdpbusd on ymm: Alder Lake and later, Zen 5)
inline constexpr std::size_t kQGemmMr = 6, kQGemmNr = 16;
inline constexpr int kQGemmOffset = 128;
void qgemm_ukernel(const QGemmTile& t);
void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed);
}  // namespace avx2_vnni
namespace avx512 {
void quantize_rows(const QuantizeRows& p);
}  // namespace avx512
namespace avx512_vnni {  // AVX-512 VNNI (EVEX vpdpbusd on zmm: Ice Lake, Sapphire Rapids, Zen 4)
inline constexpr std::size_t kQGemmMr = 8, kQGemmNr = 32;
inline constexpr int kQGemmOffset = 128;
void qgemm_ukernel(const QGemmTile& t);
void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed);
}  // namespace avx512_vnni
namespace neon {  // no dotprod (Cortex-A72, ARMv7): widening multiplies, pairwise adds
// Each int32 accumulator holds 2 columns (2 partial lanes each). AArch64: 16 accumulators + 4 weight vectors
// + A broadcasts and products fit its 32 q-registers; ARMv7 has 16, so half the columns.
#if defined(__aarch64__)
inline constexpr std::size_t kQGemmMr = 4, kQGemmNr = 8;
#else
inline constexpr std::size_t kQGemmMr = 4, kQGemmNr = 4;
#endif
inline constexpr int kQGemmOffset = 0;
void qgemm_ukernel(const QGemmTile& t);
void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed);
void quantize_rows(const QuantizeRows& p);
}  // namespace neon
namespace neon_dotprod {  // AArch64 sdot (Cortex-A76 / Pi 5, A55, ...)
// 16 accumulators + 8 A vectors (4 k-groups each) + 2 weight vectors of the 32 q-registers (8x12: 35, spills).
inline constexpr std::size_t kQGemmMr = 8, kQGemmNr = 8;
inline constexpr int kQGemmOffset = 0;
void qgemm_ukernel(const QGemmTile& t);
void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed);
}  // namespace neon_dotprod

}  // namespace mbl::kernels
