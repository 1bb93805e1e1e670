// Row ops written once over a SIMD vector type V; each ISA's rowops_<isa>.cc includes this after its
// vec_<isa>.h and instantiates the templates with its own V.
//
// N.B. Everything here is in an anonymous namespace. A function with external linkage defined in a header
// would be emitted in every ISA's object file, each compiled with different -m flags, and the linker keeps
// one copy: an AVX-512 copy could then run on an AVX2-only CPU. Internal linkage makes every copy private.
//
// V provides (all static):
//   Reg, kWidth                      the register type and its float lane count W
//   zero(), set1(float)
//   load(p, n), store(p, v, n)       n in [1, W]; n < W touches only p[0..n) and loads 0 in lanes >= n
//   keep(v, n)                       zero lanes >= n (identity when n == W)
//   add, sub, mul, fma(a, b, c) = a*b + c, hsum(v) = sum of all lanes
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels/kernels.h"

namespace mbl::kernels {
namespace {

// Calls body(i, n) for consecutive chunks [i, i + n) covering [0, N); n == W except for a last, partial one.
template <class V, class Body>
inline void for_chunks(std::size_t N, Body&& body) {
  std::size_t i = 0;
  for (; i + V::kWidth <= N; i += V::kWidth) body(i, V::kWidth);
  if (i < N) body(i, N - i);
}

template <class V>
void add_norm_rows(const AddNormParams& p) {
  using R = typename V::Reg;
  const std::size_t N = p.N;
  for (std::size_t m = 0; m < p.M; ++m) {
    const float* x = p.x + m * N;
    const float* res = p.residual != nullptr ? p.residual + m * N : nullptr;
    float* out = p.out + m * N;
    // Lanes past a partial chunk come out as 0 (all loads zero-fill), so they add nothing to a sum.
    auto y_at = [&](std::size_t i, std::size_t n) {
      R y = V::load(x + i, n);
      if (p.bias != nullptr) y = V::add(y, V::load(p.bias + i, n));
      if (res != nullptr) y = V::add(y, V::load(res + i, n));
      return y;
    };

    if (!p.layer_norm) {
      for_chunks<V>(N, [&](std::size_t i, std::size_t n) {
        V::store(out + i, V::fma(y_at(i, n), V::load(p.weight + i, n), V::load(p.beta + i, n)), n);
      });
      continue;
    }

    // LayerNorm, three passes over the row; y is parked in out (see the scalar tier).
    R sum = V::zero();
    for_chunks<V>(N, [&](std::size_t i, std::size_t n) {
      const R y = y_at(i, n);
      V::store(out + i, y, n);
      sum = V::add(sum, y);
    });
    const float mean0 = V::hsum(sum) / static_cast<float>(N);

    // N.B. The float32 sum above can be off by a few ulp of |mean|, which LayerNorm amplifies by
    // 1/sqrt(var + eps) -- up to 1e6 for eps = 1e-12 and a near-constant row. So this pass also sums
    // d = y - mean0 and corrects the mean by sum(d)/N (the corrected two-pass algorithm); the variance
    // is then sum(d^2)/N - (sum(d)/N)^2, exact in the math and well conditioned because sum(d) is tiny.
    const R vmean0 = V::set1(mean0);
    R sd = V::zero(), sq = V::zero();
    for_chunks<V>(N, [&](std::size_t i, std::size_t n) {
      const R d = V::keep(V::sub(V::load(out + i, n), vmean0), n);  // padding lanes would hold -mean0
      sd = V::add(sd, d);
      sq = V::fma(d, d, sq);
    });
    const double shift = static_cast<double>(V::hsum(sd)) / static_cast<double>(N);
    double var = static_cast<double>(V::hsum(sq)) / static_cast<double>(N) - shift * shift;
    if (var < 0.0) var = 0.0;
    // The mean as a float pair hi + lo: rounding it to one float would cost u*|mean|/std of relative
    // error, large when |mean| >> std. y - hi is exact when y is near the mean (Sterbenz), lo then adds
    // back what the rounding dropped.
    const double mean = static_cast<double>(mean0) + shift;
    const float mean_hi = static_cast<float>(mean);
    const R vmean_hi = V::set1(mean_hi);
    const R vmean_lo = V::set1(static_cast<float>(mean - static_cast<double>(mean_hi)));
    const R vinv = V::set1(static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(p.eps))));

    for_chunks<V>(N, [&](std::size_t i, std::size_t n) {
      const R centred = V::sub(V::sub(V::load(out + i, n), vmean_hi), vmean_lo);
      const R normed = V::mul(centred, vinv);
      V::store(out + i, V::fma(normed, V::load(p.weight + i, n), V::load(p.beta + i, n)), n);
    });
  }
}

}  // namespace
}  // namespace mbl::kernels
