// Row ops for avx512: the generic bodies from generic/rowops_impl.h instantiated with this ISA's Vec.
#include "kernels/kernels.h"
#include "kernels/x86/vec_avx512.h"
#include "kernels/generic/rowops_impl.h"

namespace mbl::kernels::avx512 {

void add_norm(const AddNormParams& p) { add_norm_rows<Vec>(p); }

}  // namespace mbl::kernels::avx512
