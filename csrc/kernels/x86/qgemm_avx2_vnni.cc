// int8 GEMM for AVX-VNNI (VEX vpdpbusd on ymm: Alder Lake and later, Zen 5), tile 6x16: 12 ymm accumulators
// + 2 weight vectors + 1 broadcast of A = 15 of 16 ymm, the fp32 avx2 tile's shape. Per 4 k: two 32-byte
// panel loads (8 columns x 4 k each), six 4-byte broadcasts of A, 12 vpdpbusd. A bytes are unsigned
// (q + 128) and comp = -128 * sum(w), so acc = comp + sum(byte * w) = sum(q * w) exactly (vpdpbusd wraps,
// never saturates). The quantiser is avx2's (same bytes).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/generic/qgemm_impl.h"
#include "kernels/kernels.h"
#include "kernels/x86/qgemm_avx2_impl.h"

namespace mbl::kernels::avx2_vnni {
namespace {

constexpr std::size_t kNv = kQGemmNr / 8;
static_assert(kNv * 8 == kQGemmNr, "the panel is whole ymm vectors");

// acc += dot4(u8 a, s8 w), VEX-encoded ({vex}: AVX-VNNI, not AVX512-VNNI). Inline asm because GCC 12
// copies and spills accumulators on every k step around _mm256_dpbusd_avx_epi32 (its destination is tied).
inline __m256i dpbusd(__m256i acc, __m256i a, __m256i w) {
  asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(w));
  return acc;
}

template <std::size_t MR>
struct Tile {
  static void run(const QGemmTile& t) {
    __m256i acc[MR][kNv];
    MBL_QUNROLL for (std::size_t v = 0; v < kNv; ++v) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.comp + 8 * v));
      MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) acc[m][v] = c;
    }
    const std::uint8_t* a = t.A;
    const std::size_t lda = t.lda;
    const std::int8_t* w = t.panel;
    for (std::size_t g = 0; g < t.K4; ++g, a += 4, w += kQGemmNr * 4) {
      __m256i wv[kNv];
      MBL_QUNROLL for (std::size_t v = 0; v < kNv; ++v)
        wv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * v));
      MBL_QUNROLL for (std::size_t m = 0; m < MR; ++m) {
        std::int32_t a4;
        std::memcpy(&a4, a + m * lda, 4);
        const __m256i ab = _mm256_set1_epi32(a4);
        MBL_QUNROLL for (std::size_t v = 0; v < kNv; ++v) acc[m][v] = dpbusd(acc[m][v], ab, wv[v]);
      }
    }
    qstore_tile_avx2<MR, kNv>(t, acc);
  }
};

constexpr auto kTiles = qtile_table<Tile>(std::make_index_sequence<kQGemmMr>{});

}  // namespace

void qgemm_ukernel(const QGemmTile& t) {
  if (t.mr >= 1 && t.mr <= kQGemmMr) kTiles[t.mr - 1](t);
}

void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed) {
  pack_qpanels<kQGemmNr>(W, N, K, packed);
}

}  // namespace mbl::kernels::avx2_vnni
