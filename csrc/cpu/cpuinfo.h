// CPU feature detection, done once per process.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mbl::cpu {

// A feature is true only if the CPU has it AND the OS has enabled the register state it needs
// (on x86: XCR0 YMM state for AVX/AVX2/FMA/F16C/AVX-VNNI, ZMM + opmask state for AVX-512).
// Features of the other architecture are always false.
struct CpuFeatures {
  // x86
  bool sse4_2 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false, avx512_vnni = false;
  bool avx_vnni = false;
  // ARM (neon is AArch64's ASIMD, or ARMv7's optional NEON unit)
  bool neon = false, dotprod = false, i8mm = false;
};

// Detected on first call; later calls return the same object (thread-safe).
const CpuFeatures& cpu_features();

// Every feature as (name, value), in declaration order; names match the struct members.
std::vector<std::pair<std::string, bool>> feature_list(const CpuFeatures& f);

}  // namespace mbl::cpu
