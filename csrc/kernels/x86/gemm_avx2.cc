// AVX2 + FMA GEMM microkernel, 6x16: 12 ymm accumulators + 2 weight vectors + 1 broadcast of A = 15 of the
// 16 ymm registers. Per k: two 8-wide weight loads from the packed panel, six broadcasts of A, 12 FMAs.
// The row count is a template parameter so each M tail (1..6 rows) gets a fully unrolled body; the N tail
// is handled by masked stores (the panel and bias are zero-padded, so loads are always full).
#include <immintrin.h>

#include <cstddef>

#include "kernels/generic/gemm_pack_impl.h"
#include "kernels/kernels.h"
#include "kernels/x86/vec_avx2.h"

namespace mbl::kernels::avx2 {
namespace {

constexpr std::size_t kNr = kGemmNr;

// Every loop over the tile's rows is fully unrolled: if any one is not, GCC indexes the accumulator arrays
// through memory and spills all of them on every k step (measured: 45 instead of ~100 GFLOP/s on AVX2).
#define MBL_UNROLL _Pragma("GCC unroll 16")

template <std::size_t MR>
void tile(const GemmTile& t) {
  __m256 acc0[MR], acc1[MR];
  const __m256 b0 = _mm256_loadu_ps(t.bias), b1 = _mm256_loadu_ps(t.bias + 8);
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) acc0[m] = b0, acc1[m] = b1;

  const float* a = t.A;
  const std::size_t lda = t.lda;
  const float* w = t.panel;
  for (std::size_t k = 0; k < t.K; ++k, w += kNr) {
    const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      const __m256 am = _mm256_broadcast_ss(a + m * lda + k);
      acc0[m] = _mm256_fmadd_ps(am, w0, acc0[m]);
      acc1[m] = _mm256_fmadd_ps(am, w1, acc1[m]);
    }
  }

  // clamp: max(lo, v) and min(hi, v) return v when v is NaN (the second operand wins on unordered).
  const __m256 lo = _mm256_set1_ps(t.lo), hi = _mm256_set1_ps(t.hi);
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
    acc0[m] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc0[m]));
    acc1[m] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc1[m]));
  }
  float* c = t.C;
  if (t.nr == kNr) {
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      _mm256_storeu_ps(c + m * t.ldc, acc0[m]);
      _mm256_storeu_ps(c + m * t.ldc + 8, acc1[m]);
    }
  } else {
    const std::size_t n0 = t.nr < 8 ? t.nr : 8, n1 = t.nr - n0;
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      Vec::store(c + m * t.ldc, acc0[m], n0);
      if (n1 > 0) Vec::store(c + m * t.ldc + 8, acc1[m], n1);
    }
  }
}

}  // namespace

void gemm_ukernel(const GemmTile& t) {
  switch (t.mr) {
    case 6: return tile<6>(t);
    case 5: return tile<5>(t);
    case 4: return tile<4>(t);
    case 3: return tile<3>(t);
    case 2: return tile<2>(t);
    case 1: return tile<1>(t);
    default: return;
  }
}

void gemm_pack(const float* W, std::size_t N, std::size_t K, float* packed) {
  pack_panels<kGemmNr>(W, N, K, packed);
}

float fma_probe(std::size_t iters) {
  constexpr int kChains = 12;  // 2 FMA ports x 4-5 cycles latency needs >= 10 chains in flight
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::size_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  return Vec::hsum(s);
}

}  // namespace mbl::kernels::avx2
