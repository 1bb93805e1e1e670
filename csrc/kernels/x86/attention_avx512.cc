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
  static Reg div(Reg a, Reg b) { return _mm512_maskz_div_ps(0xFFFF, a, b); }
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
};

}  // namespace
}  // namespace mbl::kernels::avx512

#include "kernels/generic/attention_impl.h"

namespace mbl::kernels::avx512 {

void attention_head(const AttentionHead& a) { attention_head_impl<AttnVec, 4, 4, 4, 2>(a); }
void exp_row(const float* x, float* y, std::size_t n) { exp_rows<AttnVec>(x, y, n); }

}  // namespace mbl::kernels::avx512
