// int8 GEMM for AVX2 without VNNI (Haswell..Skylake, Zen 1-3; also the avx512 table's), and the x86 quantiser
// (a_offset 128 bytes, shared with avx2_vnni).
//
// vpmaddubsw would saturate (255 * 127 * 2 > 32767), so the products are taken exactly in 16 bits with
// vpmaddwd. A 32-bit lane of the panel holds one column's 4 k (b0..b3); as 16-bit lanes, shifting gives
// (b0, b2) and (b1, b3) sign-extended, and the broadcast A bytes masked / shifted give (a0, a2) and (a1, a3)
// zero-extended. Two vpmaddwd per 8 columns then add a0*b0 + a2*b2 and a1*b1 + a3*b3 into one int32 lane per
// column, so acc = comp + sum(byte * w) exactly as the contract states (the unsigned bytes as they are, no
// reliance on what comp holds). Tile 4x16: 8 accumulators + 4 widened weight vectors + 2 of A + the byte
// mask = 15 of 16 ymm. On Zen 4 the sign trick (vpsignb + vpmaddubsw + vpmaddwd) measured 13% slower; 5x16
// measured 7% faster but spills 3 accumulators inside the k loop, a bet on Zen 4's memory renaming that the
// older CPUs this tier is for cannot take (not measured on them).
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/generic/qgemm_impl.h"
#include "kernels/kernels.h"
#include "kernels/x86/quantize_x86_impl.h"
#include "kernels/x86/qgemm_avx2_impl.h"

namespace mbl::kernels::avx2 {
namespace {

constexpr std::size_t kNv = kQGemmNr / 8;
static_assert(kNv * 8 == kQGemmNr, "the panel is whole ymm vectors");

template <std::size_t MR>
struct Tile {
  static void run(const QGemmTile& t) {
    __m256i acc[MR][kNv];
    MBL_QUNROLL for (std::size_t v = 0; v < kNv; ++v) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.comp + 8 * v));
      MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) acc[m][v] = c;
    }
    const __m256i low_bytes = _mm256_set1_epi16(0x00FF);
    const std::uint8_t* a = t.A;
    const std::size_t lda = t.lda;
    const std::int8_t* w = t.panel;
    for (std::size_t g = 0; g < t.K4; ++g, a += 4, w += kQGemmNr * 4) {
      __m256i w02[kNv], w13[kNv];
      MBL_QUNROLL for (std::size_t v = 0; v < kNv; ++v) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * v));
        w02[v] = _mm256_srai_epi16(_mm256_slli_epi16(wv, 8), 8);
        w13[v] = _mm256_srai_epi16(wv, 8);
      }
      MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) {
        std::int32_t a4;
        std::memcpy(&a4, a + m * lda, 4);
        const __m256i ab = _mm256_set1_epi32(a4);
        const __m256i a02 = _mm256_and_si256(ab, low_bytes), a13 = _mm256_srli_epi16(ab, 8);
        MBL_QUNROLL for (std::size_t v = 0; v < kNv; ++v) {
          acc[m][v] = _mm256_add_epi32(acc[m][v], _mm256_madd_epi16(a02, w02[v]));
          acc[m][v] = _mm256_add_epi32(acc[m][v], _mm256_madd_epi16(a13, w13[v]));
        }
      }
    }
    qstore_tile_avx2<MR, kNv>(t, acc);
  }
};

constexpr auto kTiles = qtile_table<Tile>(std::make_index_sequence<kQGemmMr>{});

// --- The quantiser (kernels.h: QuantizeRows), bit for bit quantize_rows_portable's. Rows of K >= 8 end with
// a vector that overlaps the previous one (min / max and the bytes it rewrites come out the same), so only
// K < 8 needs masked loads; nothing past a row's Kp bytes is written.

constexpr float kInf = std::numeric_limits<float>::infinity();

inline float hmin(__m256 v) {
  __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_min_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_min_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// y = x (* smooth) at x + k, a rounded float32 product; part(n) (n < 8) reads lanes [0, n) only and repeats
// y[0] in the rest.
template <bool SMOOTH>
struct Row {
  const float* x;
  const float* smooth;
  __m256 full(std::size_t k) const {
    const __m256 y = _mm256_loadu_ps(x + k);
    return SMOOTH ? no_contract(_mm256_mul_ps(y, _mm256_loadu_ps(smooth + k))) : y;
  }
  __m256 part(std::size_t n) const {
    const __m256i keep = qmask8(n);
    __m256 y = _mm256_maskload_ps(x, keep);
    if (SMOOTH) y = no_contract(_mm256_mul_ps(y, _mm256_maskload_ps(smooth, keep)));
    const __m256 y0 = _mm256_permutevar8x32_ps(y, _mm256_setzero_si256());
    return _mm256_blendv_ps(y0, y, _mm256_castsi256_ps(keep));
  }
};

// always_inline into rows(): as a call, each row paid a vzeroupper and a cold start of its latency chain.
template <bool SMOOTH>
[[gnu::always_inline]] inline Stats row_stats(Row<SMOOTH> y, std::size_t K) {
  // lo, hi, and a NaN trap: y * 0 is NaN exactly when y is not finite, and NaN sticks in the sum (min / max
  // drop NaNs, but any non-finite row is a special case whatever lo and hi say). Four independent sets of
  // accumulators, or the fma's latency chain bounds the loop.
  const __m256 zeros = _mm256_setzero_ps();
  __m256 vlo[4], vhi[4], trap[4];
  for (int i = 0; i < 4; ++i) vlo[i] = _mm256_set1_ps(kInf), vhi[i] = _mm256_set1_ps(-kInf), trap[i] = zeros;
  const auto account = [&](int i, __m256 v) {
    vlo[i] = _mm256_min_ps(vlo[i], v);
    vhi[i] = _mm256_max_ps(vhi[i], v);
    trap[i] = _mm256_fmadd_ps(v, zeros, trap[i]);
  };
  if (K >= 8) {
    std::size_t k = 0;
    for (; k + 32 <= K; k += 32)
      for (int i = 0; i < 4; ++i) account(i, y.full(k + 8 * i));
    for (; k + 8 <= K; k += 8) account(0, y.full(k));
    if (k < K) account(1, y.full(K - 8));
  } else {
    account(0, y.part(K));
  }
  for (int i = 1; i < 4; ++i) {
    vlo[0] = _mm256_min_ps(vlo[0], vlo[i]);
    vhi[0] = _mm256_max_ps(vhi[0], vhi[i]);
    trap[0] = _mm256_add_ps(trap[0], trap[i]);
  }
  return row_stats_from(hmin(vlo[0]), hmax(vhi[0]),
                        _mm256_movemask_ps(_mm256_cmp_ps(trap[0], trap[0], _CMP_UNORD_Q)) == 0);
}

template <bool SMOOTH>
[[gnu::always_inline]] inline void row_bytes(Row<SMOOTH> y, std::size_t K, const Stats& st, int a_offset,
                                             std::uint8_t* q, float* scale, float* zero) {
  const std::size_t Kp = round_up4(K);
  const float first = SMOOTH ? no_contract(y.x[0] * y.smooth[0]) : y.x[0];
  if (!scale_and_zero(st, first, Kp, a_offset, q, scale, zero)) return;
  const __m256 lo = _mm256_set1_ps(st.lo), inv = _mm256_set1_ps(st.inv);
  // u = rint((y - lo) * inv): cvtps rounds to nearest even in the default MXCSR mode, as rint does.
  const auto u = [&](__m256 v) { return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(v, lo), inv)); };
  // The byte is u - 128 + a_offset; clamping u to [0, 255] is the unsigned saturation of packus.
  const __m256i adj = _mm256_set1_epi8(static_cast<char>(a_offset - 128));
  const __m128i adj_lo = _mm_set1_epi8(static_cast<char>(a_offset - 128));
  // 8 values -> 8 bytes, in order, in the low half of an xmm
  const auto bytes8 = [&](__m256 v) {
    const __m256i r = u(v);
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    return _mm_add_epi8(_mm_packus_epi16(p16, p16), adj_lo);
  };
  if (K >= 8) {
    // 32 at a time: the packs work within 128-bit lanes; the dword permute puts the 4-byte groups in k order.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    std::size_t k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m256i p01 = _mm256_packs_epi32(u(y.full(k)), u(y.full(k + 8)));
      const __m256i p23 = _mm256_packs_epi32(u(y.full(k + 16)), u(y.full(k + 24)));
      const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p01, p23), order);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), _mm256_add_epi8(b, adj));
    }
    for (; k + 8 <= K; k += 8) _mm_storel_epi64(reinterpret_cast<__m128i*>(q + k), bytes8(y.full(k)));
    if (k < K) _mm_storel_epi64(reinterpret_cast<__m128i*>(q + K - 8), bytes8(y.full(K - 8)));
  } else {
    alignas(16) std::uint8_t b[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(b), bytes8(y.part(K)));
    std::memcpy(q, b, K);
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

void qgemm_ukernel(const QGemmTile& t) {
  if (t.mr >= 1 && t.mr <= kQGemmMr) kTiles[t.mr - 1](t);
}

void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed) {
  pack_qpanels<kQGemmNr>(W, N, K, packed);
}

void quantize_rows(const QuantizeRows& p) { p.smooth ? rows<true>(p) : rows<false>(p); }

}  // namespace mbl::kernels::avx2
