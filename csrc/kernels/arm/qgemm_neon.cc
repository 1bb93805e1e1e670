// NEON int8 GEMM without dotprod (Cortex-A72/A53, ARMv7) and the activation quantiser; kernels.h states the
// contract, generic/qgemm_impl.h the portable version every result must match bit for bit.
//
// ukernel: per k-group the 4 A bytes of a row are broadcast to every 32-bit lane, so one vmull_s8 of that
// with 8 panel bytes (2 columns x 4 k) gives 8 exact int16 products. Two k-groups go into the same int16 lanes
// (vmull + vmlal: |2 * 128 * 127| = 32512 < 2^15, exact since A is in [-128, 127] and W in [-127, 127]) before
// vpadalq_s16 widens adjacent pairs into int32, so one accumulator holds 2 columns as 2 partial lanes each and
// a pairwise add at the end makes 4 columns. Per 2 k-groups, row and 4 columns: 4 multiplies + 2 vpadal for
// 32 MACs (A72: multiplies on F0, vpadal on F1).
//   AArch64 4x8: 16 accumulators + 4 weight vectors (2 groups) + 2 A broadcasts + product temporaries.
//   ARMv7 4x4: 8 accumulators + 2 weight vectors + 2 A broadcasts (d) + temporaries in its 16 q-registers.
// No contraction of a * b + c into an fma in this file: the contract's float32 operations round one by one
// (x * smooth, then y - lo, ...), and GCC's C++ default (-ffp-contract=fast) fuses them wherever the target has
// an fma (AArch64, VFPv4), in the NEON code here (AArch64 vmulq_f32 / vsubq_f32 are plain vector operators)
// and in the portable code inlined for the fallback rows. The explicit fmas (vfmaq_f32) are unaffected.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <arm_neon.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "kernels/arm/qgemm_neon_common.h"
#include "kernels/generic/qgemm_impl.h"
#include "kernels/kernels.h"

namespace mbl::kernels::neon {
namespace {

constexpr std::size_t kNr = kQGemmNr;
constexpr std::size_t kNq = kNr / 4;  // 16-byte weight vectors per k-group (4 columns each)
static_assert(kNr % 4 == 0, "nr must be a whole number of 4-column vectors");

#define MBL_UNROLL _Pragma("GCC unroll 16")

#if defined(__aarch64__)
// A k-group of one row in all 4 lanes (ld1r: no alignment needed); q-form so vmull_high_s8 takes the same.
using ABcast = int8x16_t;
inline ABcast load_a(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_u32(vdupq_n_u32(v));
}
// Two consecutive k-groups, each in all lanes of its own register: one ld2r.
inline void load_a2(const std::uint8_t* p, ABcast& a0, ABcast& a1) {
  const int32x4x2_t v = vld2q_dup_s32(reinterpret_cast<const std::int32_t*>(p));
  a0 = vreinterpretq_s8_s32(v.val[0]);
  a1 = vreinterpretq_s8_s32(v.val[1]);
}
inline int16x8_t mul_lo(ABcast a, int8x16_t w) { return vmull_s8(vget_low_s8(a), vget_low_s8(w)); }
inline int16x8_t mul_hi(ABcast a, int8x16_t w) { return vmull_high_s8(a, w); }
inline int16x8_t mla_lo(int16x8_t p, ABcast a, int8x16_t w) {
  return vmlal_s8(p, vget_low_s8(a), vget_low_s8(w));
}
inline int16x8_t mla_hi(int16x8_t p, ABcast a, int8x16_t w) { return vmlal_high_s8(p, a, w); }
// [x0+x1, x2+x3, y0+y1, y2+y3]: the 2 partial lanes of each column summed.
inline int32x4_t pair_sum(int32x4_t x, int32x4_t y) { return vpaddq_s32(x, y); }
#else
// ARMv7: d-form broadcasts; GCC emits vld1.32 {d[]} / vld2.32 {d[], d[]} without an alignment qualifier, and
// Linux lets those take any address. The halves of a q weight vector are d registers already.
using ABcast = int8x8_t;
inline ABcast load_a(const std::uint8_t* p) {
  return vreinterpret_s8_s32(vld1_dup_s32(reinterpret_cast<const std::int32_t*>(p)));
}
inline void load_a2(const std::uint8_t* p, ABcast& a0, ABcast& a1) {
  const int32x2x2_t v = vld2_dup_s32(reinterpret_cast<const std::int32_t*>(p));
  a0 = vreinterpret_s8_s32(v.val[0]);
  a1 = vreinterpret_s8_s32(v.val[1]);
}
inline int16x8_t mul_lo(ABcast a, int8x16_t w) { return vmull_s8(a, vget_low_s8(w)); }
inline int16x8_t mul_hi(ABcast a, int8x16_t w) { return vmull_s8(a, vget_high_s8(w)); }
inline int16x8_t mla_lo(int16x8_t p, ABcast a, int8x16_t w) { return vmlal_s8(p, a, vget_low_s8(w)); }
inline int16x8_t mla_hi(int16x8_t p, ABcast a, int8x16_t w) { return vmlal_s8(p, a, vget_high_s8(w)); }
inline int32x4_t pair_sum(int32x4_t x, int32x4_t y) {
  return vcombine_s32(vpadd_s32(vget_low_s32(x), vget_high_s32(x)), vpadd_s32(vget_low_s32(y), vget_high_s32(y)));
}
#endif

template <std::size_t MR>
struct Tile {
  static void run(const QGemmTile& t) {
    // acc[m][2v]: columns 4v, 4v+1; acc[m][2v+1]: columns 4v+2, 4v+3; 2 partial lanes per column.
    int32x4_t acc[MR][2 * kNq];
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t j = 0; j < 2 * kNq; ++j)
        acc[m][j] = vdupq_n_s32(0);
    // One pointer per row, so the broadcasts are ld2r / ld1r from a plain base register (no indexed form).
    const std::uint8_t* a[MR];
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) a[m] = t.A + m * t.lda;
    const std::int8_t* w = t.panel;
    std::size_t g = 0;
    for (; g + 2 <= t.K4; g += 2, w += 8 * kNr) {
      int8x16_t w0[kNq], w1[kNq];
      MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v) {
        w0[v] = vld1q_s8(w + 16 * v);
        w1[v] = vld1q_s8(w + 4 * kNr + 16 * v);
      }
      MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
        ABcast a0, a1;
        load_a2(a[m], a0, a1);
        a[m] += 8;
        MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v) {
          acc[m][2 * v] = vpadalq_s16(acc[m][2 * v], mla_lo(mul_lo(a0, w0[v]), a1, w1[v]));
          acc[m][2 * v + 1] = vpadalq_s16(acc[m][2 * v + 1], mla_hi(mul_hi(a0, w0[v]), a1, w1[v]));
        }
        // GCC's pre-RA scheduler would otherwise hoist every row's products (2 per accumulator) above the
        // vpadals and spill accumulators; a volatile asm is a scheduling barrier and emits nothing.
        asm volatile("");
      }
    }
    if (g < t.K4) {  // odd last group
      int8x16_t w0[kNq];
      MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v) w0[v] = vld1q_s8(w + 16 * v);
      MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) {
        const ABcast a0 = load_a(a[m]);
        MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v) {
          acc[m][2 * v] = vpadalq_s16(acc[m][2 * v], mul_lo(a0, w0[v]));
          acc[m][2 * v + 1] = vpadalq_s16(acc[m][2 * v + 1], mul_hi(a0, w0[v]));
        }
      }
    }
    int32x4_t sums[MR][kNq];
    MBL_UNROLL for (std::size_t m = 0; m < MR; ++m) MBL_UNROLL for (std::size_t v = 0; v < kNq; ++v)
        sums[m][v] = pair_sum(acc[m][2 * v], acc[m][2 * v + 1]);
    qneon::store_tile<MR, kNq>(t, sums);
  }
};

// --- quantize_rows -----------------------------------------------------------------------------------------
//
// Two passes per row, as quantize_row_portable: lo / hi, then the bytes. Rows whose range is non-finite, zero
// or below kMinRange take the portable code's own statement (the fills, and tiny rows, where 255 / range may
// overflow); so do, on ARMv7, rows NEON would compute differently because it flushes subnormals (below).
//
// Fast path, range >= 2^-100: inv = 255 / range <= 255 * 2^100 is finite; d = y - lo is in [0, range] (rounding
// is monotonic) so v = d * inv is in [0, fl(range * inv)] and range * fl(255 / range) <= 255 (1 + 2^-24), i.e.
// rint(v) is in [0, 255] and the portable clamp never acts.
// Signed zeros: NEON min / max may pick another zero than the portable first-wins compare; that only matters
// where zero = lo is stored, the constant rows (range == 0), which take lo = y[0] (there all y compare equal
// and the portable lo is the first). Elsewhere lo = +-0 gives the same zero, range and bytes.
// ARMv7 (NEON flushes subnormal inputs and results to zero; its VFP scalar code does not):
//   - smoothing: a lane where x, smooth != 0 but NEON's x * smooth is +-0 (a subnormal x or smooth, or a
//     product below 2^-126) sends the row to the portable code; otherwise NEON's y are the scalar y and none is
//     subnormal (NEON never returns one).
//   - no smoothing: a subnormal x sends the row to the portable code.
//   Then y and lo are never subnormal; a subnormal d = y - lo (flushed) has v < 2^-126 * 255 * 2^100 < 0.5 and
//   a subnormal v < 0.5 too, so both give rint 0 flushed or not, and min / max / sub / mul see no subnormal.

constexpr std::size_t kQChunk = 16;       // floats per step: 4 vectors -> one 16-byte store
constexpr float kMinRange = 0x1p-100f;  // smaller (non-zero) ranges take the portable code

// y = x * smooth (one float32 multiply) or x, for 16 floats.
template <bool kSmooth>
inline void load_y(const float* x, const float* smooth, float32x4_t (&y)[4]) {
  MBL_UNROLL for (int i = 0; i < 4; ++i) {
    y[i] = vld1q_f32(x + 4 * i);
    if (kSmooth) y[i] = vmulq_f32(y[i], vld1q_f32(smooth + 4 * i));
  }
}

// The row statistics, one accumulator per vector of a chunk (independent chains). vminq / vmaxq return NaN if
// either input is NaN (AArch64 fmin / fmax, ARMv7 vmin / vmax with the default NaN), so any NaN makes lo or hi
// NaN and any inf makes hi - lo non-finite: range is finite iff every y is and hi - lo does not overflow.
// ARMv7 also: `sub`, the unsigned min of (x bits << 1) - 1, below 0xffffff iff some x is subnormal (no
// smoothing), and `flushed`, non-zero iff in some lane NEON's x * smooth is +-0 while x, smooth != 0 (smoothing).
struct RowStats {
  float32x4_t lo[4], hi[4];
#if !defined(__aarch64__)
  uint32x4_t sub = vdupq_n_u32(0xffffffffu), flushed = vdupq_n_u32(0);
#endif
  RowStats() {
    MBL_UNROLL for (int i = 0; i < 4; ++i) {
      lo[i] = vdupq_n_f32(std::numeric_limits<float>::infinity());
      hi[i] = vdupq_n_f32(-std::numeric_limits<float>::infinity());
    }
  }
  template <bool kSmooth>
  void add(const float* x, const float* smooth) {
    float32x4_t y[4];
    load_y<kSmooth>(x, smooth, y);
    MBL_UNROLL for (int i = 0; i < 4; ++i) {
      lo[i] = vminq_f32(lo[i], y[i]);
      hi[i] = vmaxq_f32(hi[i], y[i]);
#if !defined(__aarch64__)
      // Shifting out the sign makes +-0 zero and a subnormal 2 .. 0xfffffe; three-operand shifts and the
      // unsigned min keep GCC from the destructive vand-immediate forms (and their register copies).
      const uint32x4_t y2 = vshlq_n_u32(vreinterpretq_u32_f32(y[i]), 1);
      if (kSmooth) {  // min(|x|, |smooth|) bits != 0 where both are non-zero, kept where y is +-0
        const uint32x4_t m = vminq_u32(vshlq_n_u32(vreinterpretq_u32_f32(vld1q_f32(x + 4 * i)), 1),
                                       vshlq_n_u32(vreinterpretq_u32_f32(vld1q_f32(smooth + 4 * i)), 1));
        flushed = vorrq_u32(flushed, vandq_u32(m, vceqq_u32(y2, vdupq_n_u32(0))));
      } else {  // y2 - 1: zero -> 0xffffffff, subnormal 1 .. 0xfffffd, normal >= 0xffffff
        sub = vminq_u32(sub, vsubq_u32(y2, vdupq_n_u32(1)));
      }
#endif
    }
  }
  float min() const {
    const float32x4_t m = vminq_f32(vminq_f32(lo[0], lo[1]), vminq_f32(lo[2], lo[3]));
#if defined(__aarch64__)
    return vminvq_f32(m);
#else
    float32x2_t h = vpmin_f32(vget_low_f32(m), vget_high_f32(m));
    return vget_lane_f32(vpmin_f32(h, h), 0);
#endif
  }
  float max() const {
    const float32x4_t m = vmaxq_f32(vmaxq_f32(hi[0], hi[1]), vmaxq_f32(hi[2], hi[3]));
#if defined(__aarch64__)
    return vmaxvq_f32(m);
#else
    float32x2_t h = vpmax_f32(vget_low_f32(m), vget_high_f32(m));
    return vget_lane_f32(vpmax_f32(h, h), 0);
#endif
  }
#if !defined(__aarch64__)
  // true if NEON's y or min / max may differ from the scalar code's
  bool flushes() const {
    uint32x2_t f = vorr_u32(vget_low_u32(flushed), vget_high_u32(flushed));
    uint32x2_t s = vmin_u32(vget_low_u32(sub), vget_high_u32(sub));
    f = vorr_u32(f, vclt_u32(s, vdup_n_u32(0x00ffffffu)));
    return (vget_lane_u32(f, 0) | vget_lane_u32(f, 1)) != 0;
  }
#endif
};

// 16 bytes: u = rint((y - lo) * inv) (in [0, 255], see above), stored as u - 128 + a_offset = u + bias mod 256.
template <bool kSmooth>
inline uint8x16_t quantize16(const float* x, const float* smooth, float32x4_t lo, float32x4_t inv,
                             uint8x16_t bias) {
  float32x4_t y[4];
  load_y<kSmooth>(x, smooth, y);
#if defined(__aarch64__)
  uint16x4_t h[4];
  MBL_UNROLL for (int i = 0; i < 4; ++i)
    h[i] = vqmovn_u32(vcvtnq_u32_f32(vmulq_f32(vsubq_f32(y[i], lo), inv)));  // to nearest, ties to even
  const uint8x16_t u = vcombine_u8(vmovn_u16(vcombine_u16(h[0], h[1])), vmovn_u16(vcombine_u16(h[2], h[3])));
#else
  // no vcvtn on ARMv7: v + 2^23 (0 <= v < 2^22) rounds v to an integer, ties to even, and its bits are
  // 0x4b000000 + rint(v), rint(v) <= 255: the low byte is rint(v). Two unzips keep the low bytes.
  uint16x8_t r[4];
  MBL_UNROLL for (int i = 0; i < 4; ++i)
    r[i] = vreinterpretq_u16_f32(vaddq_f32(vmulq_f32(vsubq_f32(y[i], lo), inv), vdupq_n_f32(8388608.0f)));
  const uint8x16_t u = vuzpq_u8(vreinterpretq_u8_u16(vuzpq_u16(r[0], r[1]).val[0]),
                                vreinterpretq_u8_u16(vuzpq_u16(r[2], r[3]).val[0])).val[0];
#endif
  return vaddq_u8(u, bias);
}

template <bool kSmooth>
void quantize_row(const float* x, const float* smooth, std::size_t K, int a_offset, std::uint8_t* q,
                  float* scale, float* zero) {
  const std::size_t Kp = round_up4(K), full = K / kQChunk * kQChunk, rest = K - full;
  const float* sm = kSmooth ? smooth : nullptr;
  // The last partial chunk goes through copies padded with its first element (x[full], smooth[full]): the same
  // y again, so lo / hi (and the ARMv7 flags) are unchanged; its padding bytes are overwritten.
  float xt[kQChunk], st[kQChunk];
  if (rest) {
    for (std::size_t i = 0; i < kQChunk; ++i) xt[i] = x[full + (i < rest ? i : 0)];
    if (kSmooth)
      for (std::size_t i = 0; i < kQChunk; ++i) st[i] = smooth[full + (i < rest ? i : 0)];
  }

  RowStats stats;
  for (std::size_t k = 0; k < full; k += kQChunk) stats.add<kSmooth>(x + k, kSmooth ? sm + k : nullptr);
  if (rest) stats.add<kSmooth>(xt, st);
  // Either the fast path below, or the portable code with the range r (one call site: one inlined copy).
  RowRange r;
  float lo = 0.0f, range = 0.0f;
  bool fast = false;
#if !defined(__aarch64__)
  if (stats.flushes()) {  // a value NEON flushes: only the scalar code has it right
    r = row_range(x, sm, K);
  } else
#endif
  {
    lo = stats.min();
    const float hi = stats.max();
    range = hi - lo;
    if (!std::isfinite(range)) {  // a NaN or inf y, or overflow: the NaN fill
      r = RowRange{lo, hi, false};
    } else if (range == 0.0f) {  // constant: zero = y[0], the portable lo bit for bit (signed zeros)
      const float y0 = kSmooth ? x[0] * smooth[0] : x[0];
      r = RowRange{y0, y0, true};
    } else {
      r = RowRange{lo, hi, true};
      fast = range >= kMinRange;
    }
  }
  if (!fast) return quantize_row_portable(x, sm, K, r, a_offset, q, scale, zero);

  // the portable code's float32 operations, in its order (not contracted: see the top of the file)
  *scale = range / 255.0f;
  const float inv = 255.0f / range;
  *zero = lo + 128.0f * *scale;
  const float32x4_t lov = vdupq_n_f32(lo), invv = vdupq_n_f32(inv);
  const uint8x16_t bias = vdupq_n_u8(static_cast<std::uint8_t>(a_offset + 128));
  for (std::size_t k = 0; k < full; k += kQChunk)
    vst1q_u8(q + k, quantize16<kSmooth>(x + k, kSmooth ? sm + k : nullptr, lov, invv, bias));
  if (rest) {  // then Kp - full = round_up4(rest) <= 16
    std::uint8_t buf[kQChunk];
    vst1q_u8(buf, quantize16<kSmooth>(xt, st, lov, invv, bias));
    for (std::size_t i = rest; i < Kp - full; ++i) buf[i] = static_cast<std::uint8_t>(a_offset);
    std::memcpy(q + full, buf, Kp - full);
  }
}

}  // namespace

void qgemm_ukernel(const QGemmTile& t) { qneon::dispatch_rows<Tile>(t, std::make_index_sequence<kQGemmMr>{}); }

void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed) {
  pack_qpanels<kQGemmNr>(W, N, K, packed);
}

void quantize_rows(const QuantizeRows& p) {
  for (std::size_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * p.ldx;
    if (p.smooth)
      quantize_row<true>(x, p.smooth, p.K, p.a_offset, p.q + m * p.ldq, p.scale + m, p.zero + m);
    else
      quantize_row<false>(x, nullptr, p.K, p.a_offset, p.q + m * p.ldq, p.scale + m, p.zero + m);
  }
}

#undef MBL_UNROLL
#undef MBL_QUNROLL

}  // namespace mbl::kernels::neon
