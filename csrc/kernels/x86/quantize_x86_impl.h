// Pieces shared by the x86 quantisers (avx2, avx512). Include only from TUs built with at least -mavx2 -mfma;
// anonymous namespace so each TU keeps its own copy under its own flags (as qgemm_impl.h).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

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

}  // namespace
}  // namespace mbl::kernels
