// Attention for avx2: generic/attention_impl.h with this ISA's Vec plus the few extra ops it needs.
// Tiles: scores 4 rows x 2 vectors (8 ymm accumulators + 2 key vectors + 1 broadcast of 16 registers);
// P V 4 rows x 2 vectors (d = 32 takes two passes over the keys, each of 16 columns: one cache line per row of V).
#include <immintrin.h>

#include <cstddef>

#include "kernels/kernels.h"
#include "kernels/x86/vec_avx2.h"

namespace mbl::kernels::avx2 {
namespace {

struct AttnVec : Vec {
  static Reg min(Reg a, Reg b) { return _mm256_min_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static float hmax(Reg v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  // p * 2^n as p * 2^(n >> 1) * 2^(n - (n >> 1)): both factors are normal for n in [-150, 129], and the
  // first product is exact (p is near 1), so the result is rounded once, into the subnormals if need be.
  static Reg scale2(Reg p, Reg n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
  }
};

}  // namespace
}  // namespace mbl::kernels::avx2

#include "kernels/generic/attention_impl.h"

namespace mbl::kernels::avx2 {

void attention_head(const AttentionHead& a) { attention_head_impl<AttnVec, 4, 2, 4, 2>(a); }
void exp_row(const float* x, float* y, std::size_t n) { exp_rows<AttnVec>(x, y, n); }

}  // namespace mbl::kernels::avx2
