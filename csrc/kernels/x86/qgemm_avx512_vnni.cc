// int8 GEMM for AVX-512 VNNI (EVEX vpdpbusd on zmm: Ice Lake, Sapphire Rapids, Zen 4). Per 4 k: one 64-byte
// panel load per 16 columns (16 columns x 4 k), one 4-byte broadcast of A per row, one vpdpbusd per row and
// 16 columns. A bytes are unsigned (q + 128) and comp = -128 * sum(w), so acc = comp + sum(byte * w) =
// sum(q * w) exactly (vpdpbusd wraps, never saturates). Rows are a template parameter (each M tail gets an
// unrolled body); the N tail uses masked stores (comp, w_scale, w_sum and bias are padded: full loads).
//
// Tile 8x32: 16 zmm accumulators + 2 weight vectors + 1 broadcast. On Zen 4 (one zmm vpdpbusd per cycle)
// 8x32, 12x32, 6x64 and 4x64 all run at ~97% of that peak for K = 512; 16x16 (a broadcast per vpdpbusd) is
// 8% slower and 8x48 loses to the N = 128 tails. 8x32 divides the driver's 48-row blocks and MobileBERT's
// N = 128 / 512 and needs the fewest registers.
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/generic/qgemm_impl.h"
#include "kernels/kernels.h"

namespace mbl::kernels::avx512_vnni {
namespace {

constexpr std::size_t kNv = kQGemmNr / 16;
static_assert(kNv * 16 == kQGemmNr, "the panel is whole zmm vectors");

#define MBL_UNROLL _Pragma("GCC unroll 16")

__mmask16 mask16(std::size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// acc += dot4(u8 a, s8 w). Inline asm because GCC 12 copies every accumulator twice per k step around the
// builtin (its only form ties the destination); the asm keeps them in place.
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i w) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w));
  return acc;
}

template <std::size_t MR>
void tile(const QGemmTile& t) {
  __m512i acc[MR][kNv];
  MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) {
    const __m512i c = _mm512_loadu_si512(t.comp + 16 * v);
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) acc[m][v] = c;
  }
  // The fused residual's rows (2 lines each) are fetched now, to arrive during the k loop: at 8 x 128 tokens the
  // residual of the 512-wide output bottleneck is 2 MiB read once, and its loads were the epilogue's main stall
  // (3-5 % of a whole forward, measured in-process against the same build without this).
  if (t.residual != nullptr) {
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      const char* rp = reinterpret_cast<const char*>(t.residual + m * t.ldr);
      _mm_prefetch(rp, _MM_HINT_T0);
      _mm_prefetch(rp + 64, _MM_HINT_T0);
    }
  }
  const std::uint8_t* a = t.A;
  const std::size_t lda = t.lda;
  const std::int8_t* w = t.panel;
  for (std::size_t g = 0; g < t.K4; ++g, a += 4, w += kQGemmNr * 4) {
    __m512i wv[kNv];
    MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) wv[v] = _mm512_loadu_si512(w + 64 * v);
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
      std::int32_t a4;
      std::memcpy(&a4, a + m * lda, 4);
      const __m512i ab = _mm512_set1_epi32(a4);
      MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) acc[m][v] = dpbusd(acc[m][v], ab, wv[v]);
    }
  }

  // C = clamp(fma(float(acc), a_scale[m] * w_scale[n], fma(a_zero[m], w_sum[n], bias[n])), lo, hi).
  // max(lo, v) then min(hi, v): the second operand wins on unordered, so NaN passes. Zero-masked forms with a
  // full mask: GCC 12's plain max/min/cvt are built on _mm512_undefined_ps() and trip -Wuninitialized.
  __m512 ws[kNv], wz[kNv], bs[kNv];
  __mmask16 keep[kNv];
  MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) {
    ws[v] = _mm512_loadu_ps(t.w_scale + 16 * v);
    wz[v] = _mm512_loadu_ps(t.w_sum + 16 * v);
    bs[v] = _mm512_loadu_ps(t.bias + 16 * v);
    const std::size_t n = t.nr > 16 * v ? t.nr - 16 * v : 0;
    keep[v] = mask16(n < 16 ? n : 16);  // masked-off lanes are never written
  }
  const __m512 lo = _mm512_set1_ps(t.lo), hi = _mm512_set1_ps(t.hi);
  const __mmask16 all = 0xFFFF;
  float* c = t.C;
  const bool no_norm = t.norm_weight != nullptr;  // fused NoNorm: fma(v + residual, w, b), masked (unpadded)
  __m512 nw[kNv], nb[kNv];
  MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) {
    nw[v] = no_norm ? _mm512_maskz_loadu_ps(keep[v], t.norm_weight + 16 * v) : _mm512_setzero_ps();
    nb[v] = no_norm ? _mm512_maskz_loadu_ps(keep[v], t.norm_bias + 16 * v) : _mm512_setzero_ps();
  }
  MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
    const __m512 as = _mm512_set1_ps(t.a_scale[m]), az = _mm512_set1_ps(t.a_zero[m]);
    MBL_UNROLL for (std::size_t v = 0; v < kNv; ++v) {
      const __m512 off = _mm512_fmadd_ps(az, wz[v], bs[v]);
      __m512 r = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(all, acc[m][v]), _mm512_mul_ps(as, ws[v]), off);
      r = _mm512_maskz_min_ps(all, hi, _mm512_maskz_max_ps(all, lo, r));
      if (no_norm) {
        if (t.residual != nullptr)
          r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(keep[v], t.residual + m * t.ldr + 16 * v));
        r = _mm512_fmadd_ps(r, nw[v], nb[v]);
      }
      _mm512_mask_storeu_ps(c + m * t.ldc + 16 * v, keep[v], r);
    }
  }
}

template <std::size_t... I>
constexpr std::array<qgemm_ukernel_fn, sizeof...(I)> tile_table(std::index_sequence<I...>) {
  return {&tile<I + 1>...};
}
constexpr auto kTiles = tile_table(std::make_index_sequence<kQGemmMr>{});

}  // namespace

void qgemm_ukernel(const QGemmTile& t) {
  if (t.mr >= 1 && t.mr <= kQGemmMr) kTiles[t.mr - 1](t);
}

void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed) {
  pack_qpanels<kQGemmNr>(W, N, K, packed);
}

}  // namespace mbl::kernels::avx512_vnni
