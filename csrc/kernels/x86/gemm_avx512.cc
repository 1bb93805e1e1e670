// AVX-512 GEMM microkernel, 8x32: 16 zmm accumulators + 2 weight vectors + 1 broadcast of A (19 of 32
// registers). Per k: two 16-wide weight loads from the packed panel, eight broadcasts of A, 16 FMAs --
// enough independent chains to cover FMA latency on two 512-bit ports (Intel) or the double-pumped 256-bit
// pipes of Zen 4. The row count is a template parameter (each M tail gets an unrolled body); the N tail uses
// masked stores (panel and bias are zero-padded, so loads are always full).
#include <immintrin.h>

#include <cstddef>

#include "kernels/generic/gemm_pack_impl.h"
#include "kernels/kernels.h"
#include "kernels/x86/vec_avx512.h"

namespace mbl::kernels::avx512 {
namespace {

constexpr std::size_t kNr = kGemmNr;

// Every loop over the tile's rows is fully unrolled: if any one is not, GCC indexes the accumulator arrays
// through memory and spills all of them on every k step (measured: 45 instead of ~100 GFLOP/s on AVX2).
#define MBL_UNROLL _Pragma("GCC unroll 16")

template <std::size_t MR>
void tile(const GemmTile& t) {
  __m512 acc0[MR], acc1[MR];
  const __m512 b0 = _mm512_loadu_ps(t.bias), b1 = _mm512_loadu_ps(t.bias + 16);
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) acc0[m] = b0, acc1[m] = b1;

  const float* a = t.A;
  const std::size_t lda = t.lda;
  const float* w = t.panel;
  for (std::size_t k = 0; k < t.K; ++k, w += kNr) {
    const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      const __m512 am = _mm512_set1_ps(a[m * lda + k]);
      acc0[m] = _mm512_fmadd_ps(am, w0, acc0[m]);
      acc1[m] = _mm512_fmadd_ps(am, w1, acc1[m]);
    }
  }

  // clamp: max(lo, v) and min(hi, v) return v when v is NaN (the second operand wins on unordered).
  // Zero-masked forms with a full mask: GCC 12's plain _mm512_max_ps/_mm512_min_ps are built on
  // _mm512_undefined_ps() and trip -Wuninitialized inside its own header.
  const __m512 lo = _mm512_set1_ps(t.lo), hi = _mm512_set1_ps(t.hi);
  const __mmask16 all = 0xFFFF;
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
    acc0[m] = _mm512_maskz_min_ps(all, hi, _mm512_maskz_max_ps(all, lo, acc0[m]));
    acc1[m] = _mm512_maskz_min_ps(all, hi, _mm512_maskz_max_ps(all, lo, acc1[m]));
  }
  float* c = t.C;
  if (t.nr == kNr) {
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      _mm512_storeu_ps(c + m * t.ldc, acc0[m]);
      _mm512_storeu_ps(c + m * t.ldc + 16, acc1[m]);
    }
  } else {
    const std::size_t n0 = t.nr < 16 ? t.nr : 16, n1 = t.nr - n0;
    const __mmask16 k0 = Vec::mask(n0), k1 = Vec::mask(n1);  // masked-off lanes are never written
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      _mm512_mask_storeu_ps(c + m * t.ldc, k0, acc0[m]);
      _mm512_mask_storeu_ps(c + m * t.ldc + 16, k1, acc1[m]);
    }
  }
}

}  // namespace

void gemm_ukernel(const GemmTile& t) {
  switch (t.mr) {
    case 8: return tile<8>(t);
    case 7: return tile<7>(t);
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
  constexpr int kChains = 16;
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (std::size_t it = 0; it < iters; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  return Vec::hsum(s);
}

}  // namespace mbl::kernels::avx512
