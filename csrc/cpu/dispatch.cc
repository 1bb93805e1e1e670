#include "cpu/dispatch.h"

#include <array>
#include <cstdlib>
#include <stdexcept>

#include "cpu/cpuinfo.h"

// CMake defines MBL_HAVE_<ISA>=1 for each ISA whose kernels are linked in.
#ifndef MBL_HAVE_AVX2
#define MBL_HAVE_AVX2 0
#endif
#ifndef MBL_HAVE_AVX512
#define MBL_HAVE_AVX512 0
#endif
#ifndef MBL_HAVE_NEON
#define MBL_HAVE_NEON 0
#endif
#ifndef MBL_HAVE_NEON_DOTPROD
#define MBL_HAVE_NEON_DOTPROD 0  // no int8 kernels yet
#endif

namespace mbl {
namespace {

using cpu::CpuFeatures;

struct Requirement {
  const char* name;
  bool CpuFeatures::*has;
};

// What the CPU must offer before an ISA's kernels may run. This mirrors the compile flags in
// CMakeLists.txt: a TU built with -mfma may contain FMA instructions, so fma is required too.
std::vector<Requirement> requirements(Isa isa) {
  switch (isa) {
    case Isa::scalar: return {};
    case Isa::avx2: return {{"avx2", &CpuFeatures::avx2}, {"fma", &CpuFeatures::fma}};
    case Isa::avx512:
      return {{"avx512f", &CpuFeatures::avx512f}, {"avx512bw", &CpuFeatures::avx512bw},
              {"avx512dq", &CpuFeatures::avx512dq}, {"avx512vl", &CpuFeatures::avx512vl},
              {"fma", &CpuFeatures::fma}};
    case Isa::neon: return {{"neon", &CpuFeatures::neon}};
    case Isa::neon_dotprod: return {{"neon", &CpuFeatures::neon}, {"dotprod", &CpuFeatures::dotprod}};
  }
  return {};
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
  return s;
}

std::string compiled_list() {
  std::vector<std::string> names;
  for (Isa isa : all_isas())
    if (isa_compiled(isa)) names.push_back(isa_name(isa));
  return join(names);
}

std::string known_list() {
  std::vector<std::string> names;
  for (Isa isa : all_isas()) names.push_back(isa_name(isa));
  return join(names);
}

// Why `isa` cannot run here, or "" if it can.
std::string unavailable_reason(Isa isa) {
  if (!isa_compiled(isa))
    return std::string(isa_name(isa)) + " is not compiled into this build (compiled: " + compiled_list() +
           ")";
  std::vector<std::string> missing;
  for (const Requirement& r : requirements(isa))
    if (!(cpu::cpu_features().*r.has)) missing.push_back(r.name);
  if (!missing.empty())
    return std::string(isa_name(isa)) + " is not supported by this CPU (missing " + join(missing) + ")";
  return "";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa isa : all_isas())
    if (name == isa_name(isa)) return isa;
  return std::nullopt;
}

// Scalar first, then upgraded entry by entry up to `isa` (the MLAS order). Only called for compiled ISAs.
KernelTable make_table(Isa isa) {
  namespace k = kernels;
  KernelTable t{Isa::scalar,
                {k::scalar::add_norm, "scalar"},
                {k::scalar::gemm_ukernel, k::scalar::gemm_pack, k::scalar::kGemmMr, k::scalar::kGemmNr,
                 "scalar_4x8", k::scalar::fma_probe, k::scalar::kProbeFlops},
                {k::scalar::attention_head, k::scalar::exp_row, "scalar"}};
#if MBL_HAVE_AVX2
  if (isa == Isa::avx2 || isa == Isa::avx512) {
    t.add_norm = {k::avx2::add_norm, "avx2"};
    t.gemm = {k::avx2::gemm_ukernel, k::avx2::gemm_pack, k::avx2::kGemmMr, k::avx2::kGemmNr, "avx2_6x16",
              k::avx2::fma_probe, k::avx2::kProbeFlops};
    t.attention = {k::avx2::attention_head, k::avx2::exp_row, "avx2_4x16"};
  }
#endif
#if MBL_HAVE_AVX512
  if (isa == Isa::avx512) {
    t.add_norm = {k::avx512::add_norm, "avx512"};
    t.gemm = {k::avx512::gemm_ukernel, k::avx512::gemm_pack, k::avx512::kGemmMr, k::avx512::kGemmNr,
              "avx512_8x32", k::avx512::fma_probe, k::avx512::kProbeFlops};
    t.attention = {k::avx512::attention_head, k::avx512::exp_row, "avx512_4x64"};
  }
#endif
#if MBL_HAVE_NEON
  // neon_dotprod only adds int8 kernels; its float ops are the NEON ones.
  if (isa == Isa::neon || isa == Isa::neon_dotprod) {
    t.add_norm = {k::neon::add_norm, "neon"};
#if defined(__aarch64__)
    t.gemm = {k::neon::gemm_ukernel, k::neon::gemm_pack, k::neon::kGemmMr, k::neon::kGemmNr, "neon_6x12",
              k::neon::fma_probe, k::neon::kProbeFlops};
    t.attention = {k::neon::attention_head, k::neon::exp_row, "neon_4x16"};
#else
    t.gemm = {k::neon::gemm_ukernel, k::neon::gemm_pack, k::neon::kGemmMr, k::neon::kGemmNr, "neon_4x8",
              k::neon::fma_probe, k::neon::kProbeFlops};
    t.attention = {k::neon::attention_head, k::neon::exp_row, "neon_4x8"};
#endif
  }
#endif
  t.isa = isa;
  return t;
}

// Tables for every compiled ISA, built once. Uncompiled slots stay scalar and are never handed out.
const KernelTable& table_of(Isa isa) {
  static const auto tables = [] {
    std::array<KernelTable, 5> t{};
    for (Isa i : all_isas()) t[static_cast<size_t>(i)] = make_table(isa_compiled(i) ? i : Isa::scalar);
    return t;
  }();
  return tables[static_cast<size_t>(isa)];
}

// The outcome of reading MBL_FORCE_ISA, cached so the variable is read exactly once and a bad value
// produces the same error on every call.
struct Selection {
  const KernelTable* table = nullptr;  // null when `error` is set
  std::string error;
  std::optional<std::string> forced;
};

Selection select() {
  Selection s;
  const char* env = std::getenv("MBL_FORCE_ISA");
  if (env != nullptr && *env != '\0') {
    s.forced = env;
    const std::optional<Isa> isa = parse_isa(*s.forced);
    if (!isa) {
      s.error = "unknown MBL_FORCE_ISA value '" + *s.forced + "'; expected one of " + known_list();
    } else if (std::string why = unavailable_reason(*isa); !why.empty()) {
      s.error = "MBL_FORCE_ISA=" + *s.forced + ": " + why;
    } else {
      s.table = &table_of(*isa);
    }
    return s;
  }
  Isa best = Isa::scalar;
  for (Isa isa : all_isas())  // all_isas() is in preference order, so the last supported one wins
    if (isa != Isa::neon_dotprod && isa_supported(isa)) best = isa;  // dotprod adds nothing for floats yet
  s.table = &table_of(best);
  return s;
}

const Selection& selection() {
  static const Selection s = select();
  return s;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
    case Isa::neon_dotprod: return "neon_dotprod";
  }
  return "?";
}

const std::vector<Isa>& all_isas() {
  static const std::vector<Isa> isas{Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon, Isa::neon_dotprod};
  return isas;
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return MBL_HAVE_AVX2;
    case Isa::avx512: return MBL_HAVE_AVX512;
    case Isa::neon: return MBL_HAVE_NEON;
    case Isa::neon_dotprod: return MBL_HAVE_NEON_DOTPROD;
  }
  return false;
}

bool isa_supported(Isa isa) { return unavailable_reason(isa).empty(); }

const KernelTable& kernel_table() {
  const Selection& s = selection();
  if (s.table == nullptr) throw std::runtime_error(s.error);
  return *s.table;
}

const KernelTable& kernel_table_for(std::string_view name) {
  const std::optional<Isa> isa = parse_isa(name);
  if (!isa)
    throw std::invalid_argument("unknown isa '" + std::string(name) + "'; expected one of " + known_list());
  if (std::string why = unavailable_reason(*isa); !why.empty())
    throw std::runtime_error("isa='" + std::string(name) + "': " + why);
  return table_of(*isa);
}

std::optional<std::string> forced_isa() { return selection().forced; }

}  // namespace mbl
