#include "ops/attention.h"

#include "kernels/kernels.h"

namespace mbl::ops {

std::size_t attention_scratch_floats(std::size_t L, std::size_t d) {
  return kernels::attention_scratch_floats(L, d);
}

void attention_task(const KernelTable& table, const AttentionArgs& a, std::size_t b, std::size_t h,
                    float* scratch) {
  if (a.L == 0) return;
  const std::size_t row0 = b * a.L, col0 = h * a.d;
  kernels::AttentionHead t{};
  t.q = a.q + row0 * a.ldq + col0;
  t.k = a.k + row0 * a.ldk + col0;
  t.v = a.v + row0 * a.ldv + col0;
  t.ldq = a.ldq;
  t.ldk = a.ldk;
  t.ldv = a.ldv;
  t.keep = a.keep != nullptr ? a.keep + row0 : nullptr;
  t.L = a.L;
  t.d = a.d;
  t.scale = a.scale;
  t.mask_value = a.mask_value;
  t.ctx = a.ctx + row0 * a.ldc + col0;
  t.ldc = a.ldc;
  t.probs = a.probs != nullptr ? a.probs + (b * a.heads + h) * a.L * a.L : nullptr;
  t.scratch = scratch;
  table.attention.head(t);
}

void attention_forward(const KernelTable& table, const AttentionArgs& a, float* scratch) {
  for (std::size_t b = 0; b < a.B; ++b)
    for (std::size_t h = 0; h < a.heads; ++h) attention_task(table, a, b, h, scratch);
}

}  // namespace mbl::ops
