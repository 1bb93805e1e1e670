// The activation quantiser with zmm (kernels.h: QuantizeRows), bit for bit quantize_rows_portable's. Rows of
// K >= 16 end with a vector that overlaps the previous one (min / max and the bytes it rewrites come out the
// same), so only K < 16 needs masked loads; nothing past a row's Kp bytes is written.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/generic/qgemm_impl.h"
#include "kernels/kernels.h"
#include "kernels/x86/quantize_x86_impl.h"

namespace mbl::kernels::avx512 {
namespace {

__mmask16 mask16(std::size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
// Zero-masked forms with a full mask: GCC 12's plain min/max/cvt/permute are built on _mm512_undefined_*()
// and trip -Wuninitialized inside its own header.
constexpr __mmask16 kAll = 0xFFFF;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Zero-masked extracts, not casts, for the same reason (see vec_avx512.h).
inline float hmin(__m512 v) {
  const __m256 h = _mm256_min_ps(_mm512_maskz_extractf32x8_ps(0xFF, v, 0),
                                 _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
  __m128 s = _mm_min_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_min_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_min_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax(__m512 v) {
  const __m256 h = _mm256_max_ps(_mm512_maskz_extractf32x8_ps(0xFF, v, 0),
                                 _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// y = x (* smooth) at x + k, a rounded float32 product; part(n) reads lanes [0, n) only (the rest are 0).
template <bool SMOOTH>
struct Row {
  const float* x;
  const float* smooth;
  __m512 full(std::size_t k) const {
    const __m512 y = _mm512_loadu_ps(x + k);
    return SMOOTH ? no_contract(_mm512_mul_ps(y, _mm512_loadu_ps(smooth + k))) : y;
  }
  __m512 part(std::size_t n) const {
    const __m512 y = _mm512_maskz_loadu_ps(mask16(n), x);
    return SMOOTH ? no_contract(_mm512_mul_ps(y, _mm512_maskz_loadu_ps(mask16(n), smooth))) : y;
  }
};

// always_inline into rows(): as a call, each row paid a vzeroupper and a cold start of its latency chain.
template <bool SMOOTH>
[[gnu::always_inline]] inline Stats row_stats(Row<SMOOTH> y, std::size_t K) {
  // lo, hi, and a NaN trap: y * 0 is NaN exactly when y is not finite, and NaN sticks in the sum (min / max
  // drop NaNs, but any non-finite row is a special case whatever lo and hi say). Four independent sets of
  // accumulators, or the fma's latency chain bounds the loop.
  const __m512 zeros = _mm512_setzero_ps();
  __m512 vlo[4], vhi[4], trap[4];
  for (int i = 0; i < 4; ++i)
    vlo[i] = _mm512_set1_ps(kInf), vhi[i] = _mm512_set1_ps(-kInf), trap[i] = zeros;
  const auto account = [&](int i, __m512 v, __mmask16 keep) {
    vlo[i] = _mm512_mask_min_ps(vlo[i], keep, vlo[i], v);
    vhi[i] = _mm512_mask_max_ps(vhi[i], keep, vhi[i], v);
    trap[i] = _mm512_fmadd_ps(v, zeros, trap[i]);
  };
  if (K >= 16) {
    std::size_t k = 0;
    for (; k + 64 <= K; k += 64)
      for (int i = 0; i < 4; ++i) account(i, y.full(k + 16 * i), kAll);
    for (; k + 16 <= K; k += 16) account(0, y.full(k), kAll);
    if (k < K) account(1, y.full(K - 16), kAll);
  } else {
    account(0, y.part(K), mask16(K));
  }
  for (int i = 1; i < 4; ++i) {
    vlo[0] = _mm512_maskz_min_ps(kAll, vlo[0], vlo[i]);
    vhi[0] = _mm512_maskz_max_ps(kAll, vhi[0], vhi[i]);
    trap[0] = _mm512_add_ps(trap[0], trap[i]);
  }
  return row_stats_from(hmin(vlo[0]), hmax(vhi[0]), _mm512_cmp_ps_mask(trap[0], trap[0], _CMP_UNORD_Q) == 0);
}

template <bool SMOOTH>
[[gnu::always_inline]] inline void row_bytes(Row<SMOOTH> y, std::size_t K, const Stats& st, int a_offset,
                                             std::uint8_t* q, float* scale, float* zero) {
  const std::size_t Kp = round_up4(K);
  const float first = SMOOTH ? no_contract(y.x[0] * y.smooth[0]) : y.x[0];
  if (!scale_and_zero(st, first, Kp, a_offset, q, scale, zero)) return;
  const __m512 lo = _mm512_set1_ps(st.lo), inv = _mm512_set1_ps(st.inv);
  // u = rint((y - lo) * inv): cvtps rounds to nearest even in the default MXCSR mode, as rint does.
  const auto u = [&](__m512 v) {
    return _mm512_maskz_cvtps_epi32(kAll, _mm512_mul_ps(_mm512_sub_ps(v, lo), inv));
  };
  // The byte is u - 128 + a_offset. Clamping u to [0, 255] is the unsigned saturation of packus, or the
  // signed saturation of vpmovsdb applied to u - 128.
  const __m512i adj = _mm512_set1_epi8(static_cast<char>(a_offset - 128)), c128 = _mm512_set1_epi32(128);
  const __m128i off = _mm_set1_epi8(static_cast<char>(a_offset));
  const auto bytes16 = [&](__m512 v) {
    return _mm_add_epi8(_mm512_maskz_cvtsepi32_epi8(kAll, _mm512_sub_epi32(u(v), c128)), off);
  };
  if (K >= 16) {
    // 64 at a time: the packs work within 128-bit lanes; the dword permute puts the 4-byte groups in k order.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    std::size_t k = 0;
    for (; k + 64 <= K; k += 64) {
      const __m512i p01 = _mm512_packs_epi32(u(y.full(k)), u(y.full(k + 16)));
      const __m512i p23 = _mm512_packs_epi32(u(y.full(k + 32)), u(y.full(k + 48)));
      const __m512i b = _mm512_maskz_permutexvar_epi32(kAll, order, _mm512_packus_epi16(p01, p23));
      _mm512_storeu_si512(q + k, _mm512_add_epi8(b, adj));
    }
    for (; k + 16 <= K; k += 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(q + k), bytes16(y.full(k)));
    if (k < K) _mm_storeu_si128(reinterpret_cast<__m128i*>(q + K - 16), bytes16(y.full(K - 16)));
  } else {
    _mm_mask_storeu_epi8(q, mask16(K), bytes16(y.part(K)));
  }
  for (std::size_t k = K; k < Kp; ++k) q[k] = static_cast<std::uint8_t>(a_offset);
}

// One row of lookahead: the next row's min / max pass is issued before this row's bytes, so it overlaps this
// row's horizontal reductions and divisions.
template <bool SMOOTH>
void rows(const QuantizeRows& p) {
  if (p.M == 0) return;
  const auto row = [&](std::size_t m) { return Row<SMOOTH>{p.x + m * p.ldx, p.smooth}; };
  Stats next = row_stats(row(0), p.K);
  for (std::size_t m = 0; m < p.M; ++m) {
    const Stats cur = next;
    if (m + 1 < p.M) next = row_stats(row(m + 1), p.K);
    row_bytes(row(m), p.K, cur, p.a_offset, p.q + m * p.ldq, p.scale + m, p.zero + m);
  }
}

}  // namespace

void quantize_rows(const QuantizeRows& p) { p.smooth ? rows<true>(p) : rows<false>(p); }

}  // namespace mbl::kernels::avx512
