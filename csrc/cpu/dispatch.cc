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
#define MBL_HAVE_NEON_DOTPROD 0
#endif
#ifndef MBL_HAVE_AVX2_VNNI
#define MBL_HAVE_AVX2_VNNI 0
#endif
#ifndef MBL_HAVE_AVX512_VNNI
#define MBL_HAVE_AVX512_VNNI 0
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
    case Isa::avx2_vnni:
      return {{"avx2", &CpuFeatures::avx2}, {"fma", &CpuFeatures::fma}, {"avx_vnni", &CpuFeatures::avx_vnni}};
    // The AVX-512 tables also run AVX2 kernels (their int8 GEMM without VNNI), hence avx2.
    case Isa::avx512:
      return {{"avx2", &CpuFeatures::avx2}, {"avx512f", &CpuFeatures::avx512f},
              {"avx512bw", &CpuFeatures::avx512bw}, {"avx512dq", &CpuFeatures::avx512dq},
              {"avx512vl", &CpuFeatures::avx512vl}, {"fma", &CpuFeatures::fma}};
    case Isa::avx512_vnni:
      return {{"avx2", &CpuFeatures::avx2}, {"avx512f", &CpuFeatures::avx512f},
              {"avx512bw", &CpuFeatures::avx512bw}, {"avx512dq", &CpuFeatures::avx512dq},
              {"avx512vl", &CpuFeatures::avx512vl}, {"fma", &CpuFeatures::fma},
              {"avx512_vnni", &CpuFeatures::avx512_vnni}};
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
                {k::scalar::attention_head, k::scalar::exp_row, "scalar"},
                {k::scalar::qgemm_ukernel, k::scalar::qgemm_pack, k::scalar::kQGemmMr, k::scalar::kQGemmNr,
                 k::scalar::kQGemmOffset, k::scalar::quantize_rows, true, "scalar_4x8"}};
  const bool x86_avx2 = isa == Isa::avx2 || isa == Isa::avx2_vnni || isa == Isa::avx512 || isa == Isa::avx512_vnni;
  const bool x86_avx512 = isa == Isa::avx512 || isa == Isa::avx512_vnni;
  (void)x86_avx2;
  (void)x86_avx512;
#if MBL_HAVE_AVX2
  if (x86_avx2) {
    t.add_norm = {k::avx2::add_norm, "avx2"};
    t.gemm = {k::avx2::gemm_ukernel, k::avx2::gemm_pack, k::avx2::kGemmMr, k::avx2::kGemmNr, "avx2_6x16",
              k::avx2::fma_probe, k::avx2::kProbeFlops};
    t.attention = {k::avx2::attention_head, k::avx2::exp_row, "avx2_4x16"};
    t.qgemm = {k::avx2::qgemm_ukernel, k::avx2::qgemm_pack, k::avx2::kQGemmMr, k::avx2::kQGemmNr,
               k::avx2::kQGemmOffset, k::avx2::quantize_rows, false, "avx2_4x16"};
  }
#endif
#if MBL_HAVE_AVX2_VNNI
  if (isa == Isa::avx2_vnni) {
    t.qgemm = {k::avx2_vnni::qgemm_ukernel, k::avx2_vnni::qgemm_pack, k::avx2_vnni::kQGemmMr,
               k::avx2_vnni::kQGemmNr, k::avx2_vnni::kQGemmOffset, k::avx2::quantize_rows, false,
               "avx2_vnni_6x16"};
  }
#endif
#if MBL_HAVE_AVX512
  if (x86_avx512) {
    t.add_norm = {k::avx512::add_norm, "avx512"};
    t.gemm = {k::avx512::gemm_ukernel, k::avx512::gemm_pack, k::avx512::kGemmMr, k::avx512::kGemmNr,
              "avx512_8x32", k::avx512::fma_probe, k::avx512::kProbeFlops};
    t.attention = {k::avx512::attention_head, k::avx512::exp_row, "avx512_4x64"};
    t.qgemm.quantize = k::avx512::quantize_rows;  // same bytes as avx2's (a_offset 128), wider
  }
#endif
#if MBL_HAVE_AVX512_VNNI
  if (isa == Isa::avx512_vnni) {
    t.qgemm = {k::avx512_vnni::qgemm_ukernel, k::avx512_vnni::qgemm_pack, k::avx512_vnni::kQGemmMr,
               k::avx512_vnni::kQGemmNr, k::avx512_vnni::kQGemmOffset, k::avx512::quantize_rows, true,
               "avx512_vnni_8x32"};
  }
#endif
#if MBL_HAVE_NEON
  // neon_dotprod only adds int8 kernels; its float ops are the NEON ones.
  if (isa == Isa::neon || isa == Isa::neon_dotprod) {
    t.add_norm = {k::neon::add_norm, "neon"};
#if defined(__aarch64__)
    t.qgemm = {k::neon::qgemm_ukernel, k::neon::qgemm_pack, k::neon::kQGemmMr, k::neon::kQGemmNr,
               k::neon::kQGemmOffset, k::neon::quantize_rows, false, "neon_4x8"};
#else
    t.qgemm = {k::neon::qgemm_ukernel, k::neon::qgemm_pack, k::neon::kQGemmMr, k::neon::kQGemmNr,
               k::neon::kQGemmOffset, k::neon::quantize_rows, false, "neon_4x4"};
#endif
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
#if MBL_HAVE_NEON_DOTPROD
  if (isa == Isa::neon_dotprod) {
    t.qgemm = {k::neon_dotprod::qgemm_ukernel, k::neon_dotprod::qgemm_pack, k::neon_dotprod::kQGemmMr,
               k::neon_dotprod::kQGemmNr, k::neon_dotprod::kQGemmOffset, k::neon::quantize_rows, false,
               "neon_dotprod_8x8"};
  }
#endif
  t.isa = isa;
  return t;
}

// Tables for every compiled ISA, built once. Uncompiled slots stay scalar and are never handed out.
const KernelTable& table_of(Isa isa) {
  static const auto tables = [] {
    std::array<KernelTable, 7> t{};
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
    if (isa_supported(isa)) best = isa;
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
    case Isa::avx2_vnni: return "avx2_vnni";
    case Isa::avx512: return "avx512";
    case Isa::avx512_vnni: return "avx512_vnni";
    case Isa::neon: return "neon";
    case Isa::neon_dotprod: return "neon_dotprod";
  }
  return "?";
}

const std::vector<Isa>& all_isas() {
  static const std::vector<Isa> isas{Isa::scalar,      Isa::avx2, Isa::avx2_vnni,   Isa::avx512,
                                     Isa::avx512_vnni, Isa::neon, Isa::neon_dotprod};
  return isas;
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2: return MBL_HAVE_AVX2;
    case Isa::avx2_vnni: return MBL_HAVE_AVX2_VNNI;
    case Isa::avx512: return MBL_HAVE_AVX512;
    case Isa::avx512_vnni: return MBL_HAVE_AVX512_VNNI;
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
