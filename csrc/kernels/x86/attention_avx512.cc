// Attention for avx512: generic/attention_impl.h with this ISA's Vec plus the few extra ops it needs.
// Tiles: scores 4 rows x 4 vectors (16 zmm accumulators + 4 key vectors + 1 broadcast of 32 registers);
// P V 4 rows x 2 vectors (d = 32 in one pass over the keys).
#include <immintrin.h>

#include <cstddef>

#include "kernels/kernels.h"
#include "kernels/x86/vec_avx512.h"

namespace mbl::kernels::avx512 {
namespace {

struct AttnVec : Vec {
  // Zero-masked forms with a full mask, for the GCC 12 warning noted in gemm_avx512.cc.
  static Reg min(Reg a, Reg b) { return _mm512_maskz_min_ps(0xFFFF, a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_maskz_max_ps(0xFFFF, a, b); }
  static float hmax(Reg v) {
    const __m256 lo = _mm512_maskz_extractf32x8_ps(0xFF, v, 0);
    const __m256 h = _mm256_max_ps(lo, _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  // vscalefps: p * 2^floor(n), one rounding, subnormal and overflow results handled by the instruction.
  static Reg scale2(Reg p, Reg n) { return _mm512_maskz_scalef_ps(0xFFFF, p, n); }

  // K^T by 16 x 16 register transposes (a scalar copy per element cost ~2 % of an int8 forward at L = 384);
  // the key and head-column tails are copied one by one.
  static void pack_keys(const float* k, std::size_t ldk, std::size_t L, std::size_t d, std::size_t lw, float* kt) {
    const std::size_t d16 = d / 16 * 16;
    std::size_t j0 = 0;
    for (; j0 + 16 <= L; j0 += 16) {
      for (std::size_t t0 = 0; t0 < d16; t0 += 16) {
        Reg r[16];
        for (std::size_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(k + (j0 + i) * ldk + t0);
        transpose16(r);
        for (std::size_t i = 0; i < 16; ++i) _mm512_storeu_ps(kt + (t0 + i) * lw + j0, r[i]);
      }
      for (std::size_t t = d16; t < d; ++t)
        for (std::size_t i = 0; i < 16; ++i) kt[t * lw + j0 + i] = k[(j0 + i) * ldk + t];
    }
    for (; j0 < L; ++j0)
      for (std::size_t t = 0; t < d; ++t) kt[t * lw + j0] = k[j0 * ldk + t];
  }

 private:
  // r[i] = row i of a 16 x 16 block -> r[x] = column x. Zero-masked forms with a full mask (see min above).
  static void transpose16(Reg (&r)[16]) {
    constexpr __mmask16 all = 0xFFFF;
    constexpr __mmask8 all8 = 0xFF;
    Reg t[16], u[16];
    // Within each 128-bit lane l: t[2i] = (r2i[4l], r2i+1[4l], r2i[4l+1], r2i+1[4l+1]), t[2i+1] the same at +2.
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_maskz_unpacklo_ps(all, r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_maskz_unpackhi_ps(all, r[2 * i], r[2 * i + 1]);
    }
    // u[4g + c], lane l = column 4l + c of rows 4g .. 4g + 3.
    for (int g = 0; g < 4; ++g) {
      const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
      const __m512d c = _mm512_castps_pd(t[4 * g + 1]), e = _mm512_castps_pd(t[4 * g + 3]);
      u[4 * g + 0] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, a, b));
      u[4 * g + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, a, b));
      u[4 * g + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all8, c, e));
      u[4 * g + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all8, c, e));
    }
    // Column 4l + c gathers lane l of u[c], u[4 + c], u[8 + c], u[12 + c]: a 4 x 4 transpose of 128-bit lanes.
    for (int c = 0; c < 4; ++c) {
      const Reg v0 = _mm512_maskz_shuffle_f32x4(all, u[c], u[4 + c], 0x88);       // A0 A2 B0 B2
      const Reg v1 = _mm512_maskz_shuffle_f32x4(all, u[c], u[4 + c], 0xDD);       // A1 A3 B1 B3
      const Reg v2 = _mm512_maskz_shuffle_f32x4(all, u[8 + c], u[12 + c], 0x88);  // C0 C2 D0 D2
      const Reg v3 = _mm512_maskz_shuffle_f32x4(all, u[8 + c], u[12 + c], 0xDD);  // C1 C3 D1 D3
      r[c] = _mm512_maskz_shuffle_f32x4(all, v0, v2, 0x88);       // l = 0
      r[4 + c] = _mm512_maskz_shuffle_f32x4(all, v1, v3, 0x88);   // l = 1
      r[8 + c] = _mm512_maskz_shuffle_f32x4(all, v0, v2, 0xDD);   // l = 2
      r[12 + c] = _mm512_maskz_shuffle_f32x4(all, v1, v3, 0xDD);  // l = 3
    }
  }
};

}  // namespace
}  // namespace mbl::kernels::avx512

#include "kernels/generic/attention_impl.h"

namespace mbl::kernels::avx512 {

void attention_head(const AttentionHead& a) { attention_head_impl<AttnVec, 4, 4, 4, 2>(a); }
void exp_row(const float* x, float* y, std::size_t n) { exp_rows<AttnVec>(x, y, n); }

}  // namespace mbl::kernels::avx512
