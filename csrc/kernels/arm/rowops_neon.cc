// Row ops for NEON: the generic bodies from generic/rowops_impl.h instantiated with this ISA's Vec.
#include "kernels/kernels.h"
#include "kernels/arm/vec_neon.h"
#include "kernels/generic/rowops_impl.h"

namespace mbl::kernels::neon {

void add_norm(const AddNormParams& p) { add_norm_rows<Vec>(p); }

}  // namespace mbl::kernels::neon
