// Multi-head attention, exactly transformers' MobileBERT eager math, one fused kernel call per (batch, head):
//   scores = (q_h k_h^T) * scale;  masked keys += mask_value;  p = softmax(scores);  ctx_h = p v_h
// Heads are column blocks: head h owns columns [h*d, (h+1)*d) of q, k, v and ctx. A fully masked row of keys
// gives uniform probabilities (HF does the same), not NaN.
//
// ISA-agnostic: compiled without ISA flags; it only calls through the table's attention entry
// (kernels/kernels.h states the kernel contract).
#pragma once

#include <cstddef>

#include "cpu/dispatch.h"

namespace mbl::ops {

struct AttentionArgs {
  const float* q;  // rows b*L + i, row strides ldq/ldk/ldv (>= heads*d)
  const float* k;
  const float* v;
  std::size_t ldq, ldk, ldv;
  const unsigned char* keep;  // [B, L], 1 = attend, 0 = masked key; nullptr = none masked
  std::size_t B, L, heads, d;
  float scale;
  float mask_value;  // added to masked keys' scores: -FLT_MAX (PyTorch semantics) or -10000 (TensorFlow)
  float* ctx;  // [B*L, heads*d] output, row stride ldc
  std::size_t ldc;
  float* probs;  // [B, heads, L, L] or nullptr (written only if non-null)
};

// Scratch one task needs, in floats (the same for every ISA). No alignment is required.
std::size_t attention_scratch_floats(std::size_t L, std::size_t d);

// One (b, h) pair; scratch has attention_scratch_floats(L, d) floats. Tasks for different (b, h) write
// disjoint outputs and read inputs only, so the caller may run them on several threads, each with its own
// scratch. L == 0 is a no-op; d >= 1.
void attention_task(const KernelTable& table, const AttentionArgs& a, std::size_t b, std::size_t h, float* scratch);

// Convenience: all (b, h) sequentially, with one scratch.
void attention_forward(const KernelTable& table, const AttentionArgs& a, float* scratch);

}  // namespace mbl::ops
