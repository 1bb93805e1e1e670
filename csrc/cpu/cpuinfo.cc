#include "cpu/cpuinfo.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif (defined(__aarch64__) || defined(__arm__)) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace mbl::cpu {
namespace {

#if defined(__x86_64__) || defined(__i386__)

// XGETBV via inline asm rather than _xgetbv(), which would need -mxsave on this baseline TU.
unsigned long long read_xcr0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const bool osxsave = ecx & (1u << 27);
  f.sse4_2 = ecx & (1u << 20);

  // CPUID only says the silicon has the instructions; the OS must also save the wider registers on
  // context switch (XCR0), or using them corrupts state. Bits: 1 SSE, 2 YMM, 5 opmask, 6-7 upper ZMM.
  const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
  const bool ymm = (xcr0 & 0x6) == 0x6;
  const bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;

  f.avx = ymm && (ecx & (1u << 28));
  f.fma = ymm && (ecx & (1u << 12));
  f.f16c = ymm && (ecx & (1u << 29));
  if (max_leaf < 7) return f;

  __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
  const unsigned max_subleaf = eax;
  f.avx2 = ymm && (ebx & (1u << 5));
  f.avx512f = zmm && (ebx & (1u << 16));
  f.avx512dq = zmm && (ebx & (1u << 17));
  f.avx512bw = zmm && (ebx & (1u << 30));
  f.avx512vl = zmm && (ebx & (1u << 31));
  f.avx512_vnni = zmm && (ecx & (1u << 11));
  if (max_subleaf >= 1) {
    __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx);
    f.avx_vnni = ymm && (eax & (1u << 4));
  }
  return f;
}

#elif defined(__aarch64__)

CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;  // ASIMD is mandatory in AArch64
#if defined(__linux__)
  // Bit values from the kernel's uapi asm/hwcap.h, spelled out so old headers still build.
  // getauxval, not /proc/cpuinfo: qemu-user reports the emulated core's HWCAPs but the host's cpuinfo.
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.dotprod = hwcap & (1ul << 20);  // HWCAP_ASIMDDP
#if defined(AT_HWCAP2)
  f.i8mm = getauxval(AT_HWCAP2) & (1ul << 13);  // HWCAP2_I8MM
#endif
#endif
  return f;
}

#elif defined(__arm__)

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__linux__)
  // NEON is optional on ARMv7. Our NEON kernels are built with -mfpu=neon-vfpv4 (fused multiply-add, which
  // the GEMM contract needs), so "neon" here means NEON + VFPv4 (Cortex-A7/A15/A53 and later; not A8/A9).
  const unsigned long hwcap = getauxval(AT_HWCAP);
  const unsigned long kNeon = 1ul << 12, kVfpv4 = 1ul << 16;  // HWCAP_NEON, HWCAP_VFPv4
  f.neon = (hwcap & (kNeon | kVfpv4)) == (kNeon | kVfpv4);
#endif
  return f;
}

#else

CpuFeatures detect() { return {}; }  // unknown target: the scalar kernels only

#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::vector<std::pair<std::string, bool>> feature_list(const CpuFeatures& f) {
  return {{"sse4_2", f.sse4_2},       {"avx", f.avx},
          {"avx2", f.avx2},           {"fma", f.fma},
          {"f16c", f.f16c},           {"avx512f", f.avx512f},
          {"avx512bw", f.avx512bw},   {"avx512dq", f.avx512dq},
          {"avx512vl", f.avx512vl},   {"avx512_vnni", f.avx512_vnni},
          {"avx_vnni", f.avx_vnni},   {"neon", f.neon},
          {"dotprod", f.dotprod},     {"i8mm", f.i8mm}};
}

}  // namespace mbl::cpu
