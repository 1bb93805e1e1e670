// Scalar int8 GEMM (4x8) and activation quantiser: the portable statement of the int8 contract in
// kernels/kernels.h, signed activations (a_offset 0).
#include "kernels/generic/qgemm_impl.h"

namespace mbl::kernels::scalar {

void qgemm_ukernel(const QGemmTile& t) { qgemm_tile_portable<kQGemmMr, kQGemmNr, false>(t); }

void qgemm_pack(const std::int8_t* W, std::size_t N, std::size_t K, std::int8_t* packed) {
  pack_qpanels<kQGemmNr>(W, N, K, packed);
}

void quantize_rows(const QuantizeRows& p) { quantize_rows_portable(p); }

}  // namespace mbl::kernels::scalar
