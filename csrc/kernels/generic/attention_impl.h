// Fused attention for one (batch, head), written once over a SIMD vector type V; each ISA's attention_<isa>.cc
// includes this after its vec_<isa>.h and instantiates it with its own V and tile sizes. Internal linkage
// throughout, for the reason given in rowops_impl.h.
//
// Per head (kernels.h states the contract):
//   1. mask row m[j]: 0 for an attended key, mask_value for a masked one, -inf for the padding up to Lw
//      (L rounded up to the vector width). s + m[j] is then s, HF's masked score (PyTorch's s + finfo.min
//      is exactly -FLT_MAX for every |s| < 2^103; TensorFlow's s - 10000 keeps the scores' differences), or
//      -inf: padding drops out.
//   2. K^T packed into scratch, d rows of Lw floats (zero padded), so a score tile is a small GEMM whose
//      B operand streams contiguous vectors of keys.
//   3. For each block of R query rows: a R x (C*W) register tile of scores per step of keys, t = 0..d-1
//      in order, one FMA each, then * scale (the dot product first, then the scale: HF's matmul * scaling),
//      then the mask. Rows past L in the last block repeat the last row and are never stored.
//   4. Softmax per row in place: max, e = exp(s - max) with the vector exp below, sum, e * (1 / sum) (one
//      reciprocal per row, then a multiply: torch's vectorised softmax does the same, and a division per
//      score cost ~2 % of a whole int8 forward at L = 384). A fully masked row under PyTorch semantics has
//      max = -FLT_MAX and every e = exp(0) = 1: uniform, like HF. Padding lanes give exp(-inf) = 0.
//   5. ctx = P V: a RP x (CP*W) tile of outputs per step of head columns, keys j = 0..L-1 in order.
//
// V provides, beyond rowops_impl.h's list (the ISA file adds them to its Vec; pack_keys is optional):
//   min(a, b), max(a, b)    x86 semantics: the second operand is returned when either is NaN
//   hmax(v)                 the largest lane
//   scale2(p, n)            p * 2^n for integer-valued n in [-150, 129], rounded once (to a subnormal or
//                           to +inf when the exact value is one)
#pragma once

#include <cfloat>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "kernels/kernels.h"

namespace mbl::kernels {
namespace {

#define MBL_ATTN_UNROLL _Pragma("GCC unroll 16")

// Optional: V::pack_keys(k, ldk, L, d, lw, kt) writes kt[t * lw + j] = k[j * ldk + t] for j < L, t < d.
template <class V, class = void>
struct HasPackKeys : std::false_type {};
template <class V>
struct HasPackKeys<V, std::void_t<decltype(&V::pack_keys)>> : std::true_type {};

// exp(x) for float32 x, Cephes expf's scheme: n = round(x / ln 2), r = x - n ln 2 in two FMA steps
// (ln 2 split into a 9-bit head, so n * head is exact), exp(r) on [-ln2/2, ln2/2] by a degree-7 polynomial
// of the form 1 + r + r^2 P(r), then * 2^n. x is clamped to [-104, 89] first (exp(-104) < 2^-150 rounds to 0,
// exp(89) overflows to +inf), NaN passes through the clamp. Max error measured against a float64 exp over
// every float in [-104, 89] (tests/test_native_attention.py::test_exp_accuracy): see the report there.
template <class V>
inline typename V::Reg vexp(typename V::Reg x) {
  using R = typename V::Reg;
  x = V::max(V::set1(-104.0f), x);
  x = V::min(V::set1(89.0f), x);
  // round to nearest with the 1.5 * 2^23 trick: exact for |x / ln 2| < 2^22, ties to even.
  const R magic = V::set1(12582912.0f);
  const R n = V::sub(V::fma(x, V::set1(1.44269504088896341f), magic), magic);
  R r = V::fma(n, V::set1(-0.693359375f), x);
  r = V::fma(n, V::set1(2.12194440e-4f), r);
  R p = V::set1(1.9875691500e-4f);
  p = V::fma(p, r, V::set1(1.3981999507e-3f));
  p = V::fma(p, r, V::set1(8.3334519073e-3f));
  p = V::fma(p, r, V::set1(4.1665795894e-2f));
  p = V::fma(p, r, V::set1(1.6666665459e-1f));
  p = V::fma(p, r, V::set1(5.0000001201e-1f));
  const R r2 = V::mul(r, r);
  p = V::add(V::fma(p, r2, r), V::set1(1.0f));
  return V::scale2(p, n);
}

template <class V>
void exp_rows(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) V::store(y + i, vexp<V>(V::load(x + i, V::kWidth)), V::kWidth);
  if (i < n) V::store(y + i, vexp<V>(V::load(x + i, n - i)), n - i);
}

// Scores of R query rows (q[r] rows of d floats) against keys [j0, j0 + C*W) of the packed K^T (row stride
// lw), scaled and masked, stored to s[r * lw + j0 ...].
template <class V, std::size_t R, std::size_t C>
inline void score_tile(const float* const* q, const float* kt, std::size_t lw, std::size_t d, std::size_t j0,
                       typename V::Reg scale, const float* mask, float* s) {
  using Reg = typename V::Reg;
  constexpr std::size_t W = V::kWidth;
  Reg acc[R][C];
  MBL_ATTN_UNROLL for (std::size_t r = 0; r < R; ++r) MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c)
      acc[r][c] = V::zero();
  const float* k = kt + j0;
  for (std::size_t t = 0; t < d; ++t, k += lw) {
    Reg kv[C];
    MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c) kv[c] = V::load(k + c * W, W);
    MBL_ATTN_UNROLL for (std::size_t r = 0; r < R; ++r) {
      const Reg qb = V::set1(q[r][t]);
      MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c) acc[r][c] = V::fma(qb, kv[c], acc[r][c]);
    }
  }
  MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c) {
    const Reg m = V::load(mask + j0 + c * W, W);
    MBL_ATTN_UNROLL for (std::size_t r = 0; r < R; ++r)
      V::store(s + r * lw + j0 + c * W, V::add(V::mul(acc[r][c], scale), m), W);
  }
}

// ctx rows [0, rows) (of RP computed; p[r] and out[r] for r >= rows alias row 0) += nothing: overwritten with
// sum_j p[r][j] * v[j][t0 .. t0 + C*W), the last vector holding `tail` columns (1..W).
template <class V, std::size_t R, std::size_t C>
inline void pv_tile(const float* const* p, const float* v, std::size_t ldv, std::size_t L, std::size_t t0,
                    std::size_t tail, float* const* out, std::size_t rows) {
  using Reg = typename V::Reg;
  constexpr std::size_t W = V::kWidth;
  Reg acc[R][C];
  MBL_ATTN_UNROLL for (std::size_t r = 0; r < R; ++r) MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c)
      acc[r][c] = V::zero();
  const float* vj = v + t0;
  for (std::size_t j = 0; j < L; ++j, vj += ldv) {
    Reg vv[C];
    MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c) vv[c] = V::load(vj + c * W, c + 1 == C ? tail : W);
    MBL_ATTN_UNROLL for (std::size_t r = 0; r < R; ++r) {
      const Reg pb = V::set1(p[r][j]);
      MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c) acc[r][c] = V::fma(pb, vv[c], acc[r][c]);
    }
  }
  MBL_ATTN_UNROLL for (std::size_t r = 0; r < R; ++r) {
    if (r >= rows) break;
    MBL_ATTN_UNROLL for (std::size_t c = 0; c < C; ++c)
      V::store(out[r] + t0 + c * W, acc[r][c], c + 1 == C ? tail : W);
  }
}

// The tile sizes: R query rows per block (<= kAttentionMaxRows), C key vectors per score tile, RP rows and
// CP column vectors per P V tile (R % RP == 0).
template <class V, std::size_t R, std::size_t C, std::size_t RP, std::size_t CP>
void attention_head_impl(const AttentionHead& a) {
  static_assert(R <= kAttentionMaxRows && V::kWidth <= kAttentionMaxWidth && R % RP == 0, "tile too large");
  using Reg = typename V::Reg;
  constexpr std::size_t W = V::kWidth;
  const std::size_t L = a.L, d = a.d;
  const std::size_t lw = (L + W - 1) / W * W;
  float* mask = a.scratch;
  float* kt = mask + lw;
  float* s = kt + d * lw;

  // 1. mask row.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < L; ++j) mask[j] = (a.keep == nullptr || a.keep[j] != 0) ? 0.0f : a.mask_value;
  for (std::size_t j = L; j < lw; ++j) mask[j] = -kInf;

  // 2. K^T, zero padded to lw keys (an ISA may bring a faster transpose: pack_keys).
  if constexpr (HasPackKeys<V>::value) {
    V::pack_keys(a.k, a.ldk, L, d, lw, kt);
  } else {
    for (std::size_t j = 0; j < L; ++j) {
      const float* kj = a.k + j * a.ldk;
      for (std::size_t t = 0; t < d; ++t) kt[t * lw + j] = kj[t];
    }
  }
  for (std::size_t t = 0; t < d; ++t)
    for (std::size_t j = L; j < lw; ++j) kt[t * lw + j] = 0.0f;

  const Reg scale = V::set1(a.scale);
  for (std::size_t i0 = 0; i0 < L; i0 += R) {
    const std::size_t rows = L - i0 < R ? L - i0 : R;
    const float* q[R];
    for (std::size_t r = 0; r < R; ++r) q[r] = a.q + (i0 + (r < rows ? r : rows - 1)) * a.ldq;

    // 3. scores.
    std::size_t j0 = 0;
    for (; j0 + C * W <= lw; j0 += C * W) score_tile<V, R, C>(q, kt, lw, d, j0, scale, mask, s);
    for (; j0 < lw; j0 += W) score_tile<V, R, 1>(q, kt, lw, d, j0, scale, mask, s);

    // 4. softmax, in place.
    for (std::size_t r = 0; r < rows; ++r) {
      float* sr = s + r * lw;
      Reg mx = V::set1(-kInf);
      for (std::size_t j = 0; j < lw; j += W) mx = V::max(mx, V::load(sr + j, W));
      const Reg vmax = V::set1(V::hmax(mx));
      Reg sum = V::zero();
      for (std::size_t j = 0; j < lw; j += W) {
        const Reg e = vexp<V>(V::sub(V::load(sr + j, W), vmax));
        V::store(sr + j, e, W);
        sum = V::add(sum, e);
      }
      const Reg vinv = V::set1(1.0f / V::hsum(sum));
      for (std::size_t j = 0; j < lw; j += W) V::store(sr + j, V::mul(V::load(sr + j, W), vinv), W);
      if (a.probs != nullptr) {
        float* pr = a.probs + (i0 + r) * L;
        for (std::size_t j = 0; j < L; j += W) V::store(pr + j, V::load(sr + j, W), L - j < W ? L - j : W);
      }
    }

    // 5. ctx = P V.
    for (std::size_t r0 = 0; r0 < rows; r0 += RP) {
      const std::size_t prow = rows - r0 < RP ? rows - r0 : RP;
      const float* p[RP];
      float* out[RP];
      for (std::size_t r = 0; r < RP; ++r) {
        const std::size_t rr = r0 + (r < prow ? r : 0);
        p[r] = s + rr * lw;
        out[r] = a.ctx + (i0 + rr) * a.ldc;
      }
      std::size_t t0 = 0;
      for (; t0 + CP * W <= d; t0 += CP * W) pv_tile<V, RP, CP>(p, a.v, a.ldv, L, t0, W, out, prow);
      for (; t0 < d; t0 += W) pv_tile<V, RP, 1>(p, a.v, a.ldv, L, t0, d - t0 < W ? d - t0 : W, out, prow);
    }
  }
}

#undef MBL_ATTN_UNROLL

}  // namespace
}  // namespace mbl::kernels
