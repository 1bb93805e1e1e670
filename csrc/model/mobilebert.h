// The MobileBERT encoder graph and its task heads, run natively in one call.
//
// The math is transformers' (shared/reference/mobilebert_spec.md) and mirrors mobilebert_lite/reference.py,
// the oracle it is tested against: trigram [x(t+1) | x(t) | x(t-1)] with [PAD] as a real neighbour, Q/K from
// the shared bottleneck and V from the layer input, NoNorm = x*w+b, eps 1e-5 at embeddings.LayerNorm and
// output.LayerNorm under layer_norm, float32-min masking. Every projection is one packed GEMM with its bias,
// activation, residual and norm fused (ops/linear.h); attention is one task per (sequence, head).
//
// Weights are packed once at construction. A forward allocates nothing after warm-up: activations live in a
// Workspace that grows to the largest shape seen; concurrent forwards each take their own Workspace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/threadpool.h"
#include "ops/linear.h"

namespace mbl::model {

struct Config {
  std::size_t vocab_size, hidden_size, embedding_size, true_hidden_size, intra_bottleneck_size,
      intermediate_size, num_layers, num_heads, max_position, type_vocab_size, num_ffn;
  bool trigram_input, use_bottleneck, use_bottleneck_attention, key_query_shared_bottleneck, layer_norm,
      classifier_activation;
  float layer_norm_eps;
  // transformers' PyTorch classes build embeddings.LayerNorm and output.LayerNorm without the config eps
  // (torch's 1e-5 applies) and mask with float32 min; its TensorFlow classes use the config eps everywhere
  // and add -10000. The TF twins set these two.
  float quirk_eps = 1e-5f;
  float mask_value = -3.402823466e38f;
  ops::Activation activation;
  std::size_t head_size() const { return true_hidden_size / num_heads; }
};

// A read-only tensor handed over by the caller (kept alive by the caller for the Engine's lifetime).
struct TensorView {
  const float* data = nullptr;    // float32 tensors
  const std::int8_t* i8 = nullptr;  // int8 tensors (quantised Linear weights); exactly one of the two is set
  std::vector<std::size_t> shape;
  // Memory-mapped from a checkpoint file: once packed, its pages may be dropped from the resident set (they
  // are re-read from the file if anything touches them again), so loading never holds two copies at once.
  bool file_backed = false;
};
using WeightMap = std::map<std::string, TensorView>;

// Which heads to build: names as in transformers (see mobilebert_lite/weights.py HEADS).
struct HeadSpec {
  bool pooler = false;        // MobileBertModel / PreTraining / NSP / SequenceClassification / MultipleChoice
  bool mlm = false;           // cls.predictions.*
  std::string pooled_linear;  // prefix of a Linear applied to the pooled output ("cls.seq_relationship.", ...)
  std::string token_linear;   // prefix of a Linear applied to every position ("classifier.", "qa_outputs.")
};

struct Inputs {
  std::size_t N = 0, L = 0;                  // sequences and their (padded) length
  const std::int64_t* input_ids = nullptr;   // [N, L], or nullptr when inputs_embeds is given
  const float* inputs_embeds = nullptr;      // [N, L, E]
  const std::int64_t* token_type_ids;        // [N, L]
  const std::int64_t* position_ids;          // [N, L]
  const unsigned char* keep = nullptr;       // [N, L] attention mask (1 = attend), nullptr = nothing masked
  const std::int64_t* mlm_rows = nullptr;    // rows (n*L + i) to score with the MLM head; nullptr = all
  std::size_t num_mlm_rows = 0;
};

// Caller-allocated outputs; a nullptr output is not computed (except the encoder itself).
struct Outputs {
  float* last_hidden_state = nullptr;             // [N, L, H] (required)
  std::vector<float*> hidden_states;              // empty, or num_layers + 1 arrays of [N, L, H]
  std::vector<float*> attentions;                 // empty, or num_layers arrays of [N, heads, L, L]
  float* pooler_output = nullptr;                 // [N, H]
  float* mlm_logits = nullptr;                    // [rows, V]
  float* pooled_logits = nullptr;                 // [N, pooled_linear.n]
  float* token_logits = nullptr;                  // [N, L, token_linear.n]
};

class Engine {
 public:
  // Throws std::invalid_argument naming a missing or mis-shaped weight.
  Engine(const Config& config, const WeightMap& weights, const HeadSpec& heads, int num_threads);
  ~Engine();  // defined where Workspace is complete

  void forward(const Inputs& in, Outputs& out);

  const Config& config() const { return cfg_; }
  int num_threads() const { return pool_->size(); }
  std::size_t pooled_outputs() const { return pooled_head_ ? pooled_head_->n() : 0; }
  std::size_t token_outputs() const { return token_head_ ? token_head_->n() : 0; }
  const char* isa_name() const;
  std::size_t int8_linears() const { return int8_linears_; }  // how many Linears run in int8

 private:
  struct Norm {
    const float* weight;
    const float* bias;
  };
  // A packed Linear -- float32, or int8 when its checkpoint weight is int8 -- and the norm that follows it
  // (norm.weight == nullptr: none).
  struct Dense {
    std::unique_ptr<ops::PackedLinear> linear;
    std::unique_ptr<ops::QPackedLinear> qlinear;
    Norm norm{nullptr, nullptr};
    explicit operator bool() const { return linear || qlinear; }
    std::size_t n() const { return linear ? linear->n() : qlinear->n(); }
  };
  struct Ffn {
    Dense intermediate, output;
  };
  struct Layer {
    Dense bottleneck_input, bottleneck_attention, query, key, value, attention_output;
    std::vector<Ffn> ffn;  // the extra FFNs, then the main one last
    Dense output_bottleneck;
  };
  struct Workspace;

  std::unique_ptr<Workspace> acquire();
  void release(std::unique_ptr<Workspace> ws);
  void embed(const Inputs& in, Workspace& ws, float* out);
  void layer(const Layer& L, const Inputs& in, Workspace& ws, const float* X, float* Y, float* probs);
  void run_linear(const Dense& d, const float* A, std::size_t M, std::size_t lda, float* C, std::size_t ldc,
                  ops::Activation act, const float* residual, float eps, Workspace& ws, bool reuse_input = false);

  Config cfg_;
  const KernelTable* table_;
  ThreadPool* pool_;
  // embeddings
  TensorView word_, position_, token_type_;
  Dense embedding_;  // embedding_transformation (absent when not applied) and embeddings.LayerNorm
  std::vector<Layer> layers_;
  Dense pooler_;  // pooler.dense, without a norm (absent unless classifier_activation)
  std::unique_ptr<ops::PackedLinear> pooled_head_, token_head_, mlm_transform_, mlm_decoder_;
  Norm mlm_norm_{nullptr, nullptr};
  bool build_pooler_ = false;
  std::size_t int8_linears_ = 0;

  std::mutex workspaces_mutex_;
  std::vector<std::unique_ptr<Workspace>> free_workspaces_;
};

}  // namespace mbl::model
