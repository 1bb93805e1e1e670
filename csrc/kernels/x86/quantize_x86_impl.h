// Pieces shared by the x86 quantisers (avx2, avx512). Include only from TUs built with at least -mavx2 -mfma;
// anonymous namespace so each TU keeps its own copy under its own flags (as qgemm_impl.h).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace mbl::kernels {
namespace {

// GCC contracts a * b + c into an fma even under -std=c++17 (fp-contract=fast is its C++ default), and the
// intrinsics are plain vector arithmetic to it. Passing a product through this empty asm makes it a rounded
// float32 value that cannot be fused, as the contract's y = x * smooth must be before y - lo.
template <class V>
inline V no_contract(V v) {
  asm("" : "+v"(v));
  return v;
}

// A row's statistics, with the contract's float32 operations in its order, none fused.
struct Stats {
  float lo, range, s, inv;
  bool finite;  // every y finite
};

inline Stats row_stats_from(float lo, float hi, bool finite) {
  Stats st;
  st.lo = lo;
  st.range = hi - lo;
  st.s = st.range / 255.0f;
  st.inv = 255.0f / st.range;
  st.finite = finite;
  return st;
}

// The row's scale and zero (kernels.h). Returns false for the contract's special rows, whose bytes it then writes
// too (all a_offset): non-finite (scale = zero = NaN) and constant or within 255 / FLT_MAX of it (scale 0, zero
// lo; a constant row's lo is its first y `first`, as the portable min keeps the first of equal values: the sign
// of 0).
inline bool scale_and_zero(const Stats& st, float first, std::size_t Kp, int a_offset, std::uint8_t* q,
                           float* scale, float* zero) {
  if (st.finite && std::isfinite(st.range) && st.inv <= std::numeric_limits<float>::max()) {
    *scale = st.s;
    *zero = st.lo + no_contract(128.0f * st.s);
    return true;
  }
  const bool constant = st.finite && std::isfinite(st.range);
  *scale = constant ? 0.0f : std::numeric_limits<float>::quiet_NaN();
  *zero = constant ? (st.range == 0.0f ? first : st.lo) : std::numeric_limits<float>::quiet_NaN();
  std::memset(q, a_offset, Kp);
  return false;
}

}  // namespace
}  // namespace mbl::kernels
