// Kernel selection: one table of function pointers per ISA, chosen once per process.
//
// The active table is the best ISA that is both compiled into this build and supported by the CPU,
// unless the environment variable MBL_FORCE_ISA names one (scalar | avx2 | avx2_vnni | avx512 | avx512_vnni |
// neon | neon_dotprod). The *_vnni and neon_dotprod tables differ from their base only in the int8 GEMM.
// MBL_FORCE_ISA is read once, on the first call to kernel_table() -- not at import -- so a bad value
// never prevents loading the module (explicitly named tables stay usable). If the value is unknown, or
// names an ISA that is not compiled in or not supported by this CPU, that first call and every later one
// throw std::runtime_error (Python RuntimeError) with the reason; nothing falls back silently.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/kernels.h"

namespace mbl {

enum class Isa { scalar, avx2, avx2_vnni, avx512, avx512_vnni, neon, neon_dotprod };

const char* isa_name(Isa isa);
// Every ISA this code knows about, in preference order within each architecture.
const std::vector<Isa>& all_isas();
// Compiled into this build (MBL_HAVE_<ISA>). scalar always is.
bool isa_compiled(Isa isa);
// Compiled AND the CPU has every feature it needs.
bool isa_supported(Isa isa);

struct AddNormKernel {
  kernels::add_norm_fn fn;
  const char* name;  // reported by runtime_info(), e.g. "avx512"
};

// The GEMM config: ukernel, packer and tile travel together (weights packed with one config's pack may only
// be multiplied by that config's ukernel; ops::PackedLinear keeps the config it packed for).
struct GemmKernel {
  kernels::gemm_ukernel_fn ukernel;
  kernels::gemm_pack_fn pack;
  std::size_t mr, nr;             // tile: the driver walks M by mr and N by nr
  const char* name;               // e.g. "avx512_8x32", reported by runtime_info()
  kernels::fma_probe_fn probe;    // benchmarks only: a loop of independent FMAs of this ISA's width
  std::size_t probe_flops;        // flops per probe iteration
};

// Fused attention for one (batch, head) (ops/attention.h drives it), and the vector exp its softmax uses
// (exposed for accuracy tests).
struct AttentionKernel {
  kernels::attention_head_fn head;
  kernels::exp_row_fn exp;
  const char* name;  // e.g. "avx512_4x64", the score tile; reported by runtime_info()
};

// The int8 GEMM config (kernels/kernels.h): ukernel, packer, tile and the activation quantiser, whose byte
// offset (a_offset) is what the ukernel expects. Like GemmKernel, weights packed by one config's pack may only
// be multiplied by that config's ukernel (ops::QPackedLinear keeps the config).
struct QGemmKernel {
  kernels::qgemm_ukernel_fn ukernel;
  kernels::qgemm_pack_fn pack;
  std::size_t mr, nr;
  int a_offset;                           // 0 or 128
  kernels::quantize_rows_fn quantize;
  bool fuses_no_norm;                     // the ukernel applies QGemmTile's fused NoNorm (kernels.h)
  const char* name;                       // e.g. "avx512_vnni_8x32", reported by runtime_info()
};

// One entry per op. Entries start at the scalar kernel and are upgraded one by one, so an ISA that lacks
// a variant of some op still has a working entry for it.
struct KernelTable {
  Isa isa;
  AddNormKernel add_norm;
  GemmKernel gemm;
  AttentionKernel attention;
  QGemmKernel qgemm;
};

// The active table (see the header comment). Throws std::runtime_error if MBL_FORCE_ISA is invalid.
const KernelTable& kernel_table();

// The table of a named ISA, for tests and benchmarks. Throws std::invalid_argument (Python ValueError)
// for an unknown name and std::runtime_error if the ISA is not compiled in or not supported.
const KernelTable& kernel_table_for(std::string_view isa_name);

// The raw value of MBL_FORCE_ISA as read for kernel_table(), if set and non-empty.
std::optional<std::string> forced_isa();

}  // namespace mbl
