#include "model/mobilebert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "ops/attention.h"

#if defined(__linux__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define MBL_HAVE_MADVISE 1
#endif

namespace mbl::model {
namespace {

std::string shape_str(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

const TensorView& get(const WeightMap& w, const std::string& name, const std::vector<std::size_t>& shape) {
  auto it = w.find(name);
  if (it == w.end()) throw std::invalid_argument("missing weight '" + name + "' (expected shape " +
                                                 shape_str(shape) + ")");
  if (it->second.shape != shape)
    throw std::invalid_argument("weight '" + name + "' has shape " + shape_str(it->second.shape) +
                                ", expected " + shape_str(shape));
  return it->second;
}

// Drop the resident pages that lie wholly inside a file-backed tensor (partial pages at its ends may hold a
// neighbour's data that is still in use; they stay). MADV_DONTNEED on a read-only file mapping loses nothing.
void release_pages(const TensorView& t) {
#ifdef MBL_HAVE_MADVISE
  if (!t.file_backed) return;
  std::size_t bytes = t.i8 != nullptr ? 1 : sizeof(float);
  for (std::size_t d : t.shape) bytes *= d;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = t.i8 != nullptr ? reinterpret_cast<std::uintptr_t>(t.i8) : reinterpret_cast<std::uintptr_t>(t.data);
  const std::uintptr_t lo = (begin + page - 1) / page * page;
  const std::uintptr_t hi = (begin + bytes) / page * page;
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
#else
  (void)t;
#endif
}

// Rows per FFN chunk (Engine::layer): 256 x intermediate 512 floats = 512 KiB, within a core's L2.
constexpr std::size_t kFfnChunkRows = 256;

// Grow-only buffer resize: after warm-up the largest shape is already allocated and forward allocates nothing.
void ensure(std::vector<float>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

struct Engine::Workspace {
  std::vector<float> x0, x1, embed_in, pos_type, li, s, q, k, v, ctx, a0, a1, f, o, attn_scratch, pooled_in,
      mlm_in, mlm_t;
  ops::QScratch quantized;  // the int8 Linears' quantised input rows
};

Engine::~Engine() = default;

const char* Engine::isa_name() const { return mbl::isa_name(table_->isa); }

Engine::Engine(const Config& config, const WeightMap& w, const HeadSpec& heads, int num_threads)
    : cfg_(config), table_(&kernel_table()), pool_(&shared_pool(num_threads)) {
  const std::size_t H = cfg_.hidden_size, E = cfg_.embedding_size, T = cfg_.true_hidden_size,
                    I = cfg_.intermediate_size, B = cfg_.intra_bottleneck_size;
  if (cfg_.num_heads == 0 || T % cfg_.num_heads != 0)
    throw std::invalid_argument("num_attention_heads must divide true_hidden_size");

  // A float32 tensor of the given shape (int8 is refused by name: only Linear weights may be quantised).
  auto f32 = [&](const std::string& name, const std::vector<std::size_t>& shape) -> const TensorView& {
    const TensorView& t = get(w, name, shape);
    if (t.data == nullptr) throw std::invalid_argument("weight '" + name + "' must be float32, not int8");
    return t;
  };
  auto pack = [&](const std::string& prefix, std::size_t n_out, std::size_t n_in) {
    const TensorView& W = f32(prefix + "weight", {n_out, n_in});
    auto packed = std::make_unique<ops::PackedLinear>(*table_, W.data, f32(prefix + "bias", {n_out}).data, n_out, n_in);
    release_pages(W);
    return packed;
  };
  auto norm = [&](const std::string& prefix, std::size_t width) {
    return Norm{f32(prefix + "LayerNorm.weight", {width}).data, f32(prefix + "LayerNorm.bias", {width}).data};
  };
  // An encoder Linear: int8 if its weight is int8 (then "<prefix>weight_scale" [n_out] and optionally
  // "<prefix>input_smooth" [n_in] come with it), else float32.
  auto dense = [&](const std::string& prefix, std::size_t n_out, std::size_t n_in, const std::string& norm_prefix) {
    Dense d;
    const TensorView& W = get(w, prefix + "weight", {n_out, n_in});
    if (W.i8 != nullptr) {
      const float* smooth = w.count(prefix + "input_smooth") ? f32(prefix + "input_smooth", {n_in}).data : nullptr;
      d.qlinear = std::make_unique<ops::QPackedLinear>(*table_, W.i8, f32(prefix + "weight_scale", {n_out}).data,
                                                       f32(prefix + "bias", {n_out}).data, smooth, n_out, n_in);
      release_pages(W);
      ++int8_linears_;
    } else {
      d.linear = pack(prefix, n_out, n_in);
    }
    if (!norm_prefix.empty()) d.norm = norm(norm_prefix, n_out);
    return d;
  };

  word_ = f32("embeddings.word_embeddings.weight", {cfg_.vocab_size, E});
  position_ = f32("embeddings.position_embeddings.weight", {cfg_.max_position, H});
  token_type_ = f32("embeddings.token_type_embeddings.weight", {cfg_.type_vocab_size, H});
  if (cfg_.trigram_input || E != H)
    embedding_ = dense("embeddings.embedding_transformation.", H, E * (cfg_.trigram_input ? 3 : 1), "");
  embedding_.norm = norm("embeddings.", H);

  layers_.resize(cfg_.num_layers);
  for (std::size_t i = 0; i < cfg_.num_layers; ++i) {
    Layer& L = layers_[i];
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    if (cfg_.use_bottleneck) {
      L.bottleneck_input = dense(p + "bottleneck.input.dense.", B, H, p + "bottleneck.input.");
      if (!cfg_.use_bottleneck_attention)
        L.bottleneck_attention = dense(p + "bottleneck.attention.dense.", B, H, p + "bottleneck.attention.");
    }
    L.query = dense(p + "attention.self.query.", T, T, "");
    L.key = dense(p + "attention.self.key.", T, T, "");
    L.value = dense(p + "attention.self.value.", T, cfg_.use_bottleneck_attention ? T : H, "");
    L.attention_output = dense(p + "attention.output.dense.", T, T, p + "attention.output.");
    for (std::size_t j = 0; j + 1 < cfg_.num_ffn; ++j) {
      const std::string f = p + "ffn." + std::to_string(j) + ".";
      L.ffn.push_back(Ffn{dense(f + "intermediate.dense.", I, T, ""), dense(f + "output.dense.", T, I, f + "output.")});
    }
    L.ffn.push_back(Ffn{dense(p + "intermediate.dense.", I, T, ""), dense(p + "output.dense.", T, I, p + "output.")});
    if (cfg_.use_bottleneck) L.output_bottleneck = dense(p + "output.bottleneck.dense.", H, T, p + "output.bottleneck.");
  }

  build_pooler_ = heads.pooler;
  if (heads.pooler && cfg_.classifier_activation) pooler_.linear = pack("pooler.dense.", H, H);
  if (!heads.pooled_linear.empty()) {
    const TensorView& W = w.at(heads.pooled_linear + "weight");  // shape checked by the Python loader
    pooled_head_ = pack(heads.pooled_linear, W.shape.at(0), H);
  }
  if (!heads.token_linear.empty()) {
    const TensorView& W = w.at(heads.token_linear + "weight");
    token_head_ = pack(heads.token_linear, W.shape.at(0), H);
  }
  if (heads.mlm) {
    const std::size_t V = cfg_.vocab_size;
    mlm_transform_ = pack("cls.predictions.transform.dense.", H, H);
    mlm_norm_ = norm("cls.predictions.transform.", H);
    // logits = t[:, :E]·decoderᵀ + t[:, E:]·D + bias as ONE Linear [V, H]: row v = [decoder[v] | D[:, v]].
    // Same K order as transformers' single matmul against cat([decoderᵀ, D]).
    auto dec = w.find("cls.predictions.decoder.weight");
    const float* decoder = dec != w.end() ? f32("cls.predictions.decoder.weight", {V, E}).data : word_.data;
    auto dbias = w.find("cls.predictions.decoder.bias");
    const float* bias = dbias != w.end() ? f32("cls.predictions.decoder.bias", {V}).data
                                         : f32("cls.predictions.bias", {V}).data;
    const float* D = H > E ? f32("cls.predictions.dense.weight", {H - E, V}).data : nullptr;
    std::vector<float> combined(V * H);
    for (std::size_t r = 0; r < V; ++r) {
      std::memcpy(&combined[r * H], decoder + r * E, E * sizeof(float));
      for (std::size_t c = 0; c < H - E; ++c) combined[r * H + E + c] = D[c * V + r];
    }
    mlm_decoder_ = std::make_unique<ops::PackedLinear>(*table_, combined.data(), bias, V, H);
  }
}

std::unique_ptr<Engine::Workspace> Engine::acquire() {
  std::lock_guard<std::mutex> lock(workspaces_mutex_);
  if (free_workspaces_.empty()) return std::make_unique<Workspace>();
  auto ws = std::move(free_workspaces_.back());
  free_workspaces_.pop_back();
  return ws;
}

void Engine::release(std::unique_ptr<Workspace> ws) {
  std::lock_guard<std::mutex> lock(workspaces_mutex_);
  free_workspaces_.push_back(std::move(ws));
}

void Engine::run_linear(const Dense& d, const float* A, std::size_t M, std::size_t lda, float* C, std::size_t ldc,
                        ops::Activation act, const float* residual, float eps, Workspace& ws, bool reuse_input) {
  ops::Epilogue ep;
  ep.activation = act;
  ep.residual = residual;
  ep.ldr = d.n();
  if (d.norm.weight != nullptr) {
    ep.norm = cfg_.layer_norm ? ops::Norm::layer_norm : ops::Norm::no_norm;
    ep.norm_weight = d.norm.weight;
    ep.norm_bias = d.norm.bias;
    ep.eps = eps;
  }
  if (d.qlinear) ops::qlinear_forward(*d.qlinear, A, M, lda, C, ldc, ep, ws.quantized, pool_, reuse_input);
  else ops::linear_forward(*d.linear, A, M, lda, C, ldc, ep, pool_);
}

void Engine::embed(const Inputs& in, Workspace& ws, float* out) {
  const std::size_t R = in.N * in.L, E = cfg_.embedding_size, H = cfg_.hidden_size;
  auto source = [&](std::size_t row) {
    return in.input_ids ? word_.data + static_cast<std::size_t>(in.input_ids[row]) * E : in.inputs_embeds + row * E;
  };
  const std::size_t width = cfg_.trigram_input ? 3 * E : E;
  ensure(ws.embed_in, R * width);
  for (std::size_t n = 0; n < in.N; ++n) {
    for (std::size_t i = 0; i < in.L; ++i) {
      const std::size_t row = n * in.L + i;
      float* dst = &ws.embed_in[row * width];
      if (!cfg_.trigram_input) {
        std::memcpy(dst, source(row), E * sizeof(float));
        continue;
      }
      // next | current | previous, zeros only at the ends of the (padded) row: [PAD]s are real neighbours.
      if (i + 1 < in.L) std::memcpy(dst, source(row + 1), E * sizeof(float));
      else std::memset(dst, 0, E * sizeof(float));
      std::memcpy(dst + E, source(row), E * sizeof(float));
      if (i > 0) std::memcpy(dst + 2 * E, source(row - 1), E * sizeof(float));
      else std::memset(dst + 2 * E, 0, E * sizeof(float));
    }
  }
  ensure(ws.pos_type, R * H);
  for (std::size_t row = 0; row < R; ++row) {
    const float* p = position_.data + static_cast<std::size_t>(in.position_ids[row]) * H;
    const float* t = token_type_.data + static_cast<std::size_t>(in.token_type_ids[row]) * H;
    float* dst = &ws.pos_type[row * H];
    for (std::size_t c = 0; c < H; ++c) dst[c] = p[c] + t[c];
  }
  // eps: embeddings.LayerNorm is built without the config eps (torch's default applies).
  if (embedding_) {
    run_linear(embedding_, ws.embed_in.data(), R, width, out, H, ops::Activation::none, ws.pos_type.data(),
               cfg_.quirk_eps, ws);
    return;
  }
  kernels::AddNormParams p{ws.embed_in.data(), nullptr, ws.pos_type.data(), embedding_.norm.weight,
                           embedding_.norm.bias, out, R, H, cfg_.layer_norm, cfg_.quirk_eps};
  table_->add_norm.fn(p);
}

void Engine::layer(const Layer& Ly, const Inputs& in, Workspace& ws, const float* X, float* Y, float* probs) {
  const std::size_t R = in.N * in.L, H = cfg_.hidden_size, T = cfg_.true_hidden_size, I = cfg_.intermediate_size;
  const float eps = cfg_.layer_norm_eps;
  const float* q_in = X;
  const float* v_in = X;
  const float* layer_input = X;
  std::size_t q_ld = H, v_ld = H;
  // Linears that read the same (unchanged) input run back to back, so int8 ones quantise it once (reuse_input).
  bool value_done = false;
  if (cfg_.use_bottleneck) {
    run_linear(Ly.bottleneck_input, X, R, H, ws.li.data(), T, ops::Activation::none, nullptr, eps, ws, false);
    layer_input = ws.li.data();
    if (cfg_.use_bottleneck_attention) {
      q_in = v_in = ws.li.data();
      q_ld = v_ld = T;
    } else {
      run_linear(Ly.bottleneck_attention, X, R, H, ws.s.data(), T, ops::Activation::none, nullptr, eps, ws, true);
      run_linear(Ly.value, X, R, H, ws.v.data(), T, ops::Activation::none, nullptr, eps, ws, true);
      value_done = true;
      q_in = ws.s.data();
      q_ld = T;
    }
  }
  run_linear(Ly.query, q_in, R, q_ld, ws.q.data(), T, ops::Activation::none, nullptr, eps, ws, false);
  run_linear(Ly.key, q_in, R, q_ld, ws.k.data(), T, ops::Activation::none, nullptr, eps, ws, true);
  if (!value_done)
    run_linear(Ly.value, v_in, R, v_ld, ws.v.data(), T, ops::Activation::none, nullptr, eps, ws, v_in == q_in);

  const std::size_t d = cfg_.head_size();
  ops::AttentionArgs a{};
  a.q = ws.q.data(); a.k = ws.k.data(); a.v = ws.v.data();
  a.ldq = a.ldk = a.ldv = T;
  a.keep = in.keep;
  a.mask_value = cfg_.mask_value;
  a.B = in.N; a.L = in.L; a.heads = cfg_.num_heads; a.d = d;
  a.scale = static_cast<float>(std::pow(static_cast<double>(d), -0.5));  // transformers: head_size ** -0.5
  a.ctx = ws.ctx.data(); a.ldc = T;
  a.probs = probs;
  const std::size_t scratch = ops::attention_scratch_floats(in.L, d);
  pool_->run(in.N * cfg_.num_heads, [&](std::size_t task, int worker) {
    ops::attention_task(*table_, a, task / cfg_.num_heads, task % cfg_.num_heads,
                        ws.attn_scratch.data() + static_cast<std::size_t>(worker) * scratch);
  });

  run_linear(Ly.attention_output, ws.ctx.data(), R, T, ws.a0.data(), T, ops::Activation::none, layer_input, eps, ws);
  float* A = ws.a0.data();
  float* other = ws.a1.data();
  // Each FFN runs in chunks of rows, intermediate then output per chunk, so that its [rows, I] activations stay in
  // the core's cache between the two instead of a full [R, I] round trip through memory. Rows are independent:
  // the result is the same bit for bit.
  const std::size_t chunk = R > 2 * kFfnChunkRows ? kFfnChunkRows : R;
  const auto ffn = [&](const Ffn& f, const float* in, float* out, std::size_t ldo, float out_eps) {
    for (std::size_t r0 = 0; r0 < R; r0 += chunk) {
      const std::size_t rows = R - r0 < chunk ? R - r0 : chunk;
      run_linear(f.intermediate, in + r0 * T, rows, T, ws.f.data(), I, cfg_.activation, nullptr, eps, ws);
      run_linear(f.output, ws.f.data(), rows, I, out + r0 * ldo, ldo, ops::Activation::none, in + r0 * T,
                 out_eps, ws);
    }
  };
  const std::size_t n_ffn = Ly.ffn.size();
  for (std::size_t j = 0; j + 1 < n_ffn; ++j) {
    ffn(Ly.ffn[j], A, other, T, eps);
    std::swap(A, other);
  }
  if (!cfg_.use_bottleneck) return ffn(Ly.ffn.back(), A, Y, H, cfg_.quirk_eps);
  ffn(Ly.ffn.back(), A, ws.o.data(), T, cfg_.quirk_eps);
  run_linear(Ly.output_bottleneck, ws.o.data(), R, T, Y, H, ops::Activation::none, X, eps, ws);
}

void Engine::forward(const Inputs& in, Outputs& out) {
  const std::size_t R = in.N * in.L, H = cfg_.hidden_size, T = cfg_.true_hidden_size, I = cfg_.intermediate_size;
  if (R == 0) return;
  std::unique_ptr<Workspace> owned = acquire();
  Workspace& ws = *owned;
  try {
    for (auto* buf : {&ws.x0, &ws.x1}) ensure(*buf, R * H);
    for (auto* buf : {&ws.li, &ws.s, &ws.q, &ws.k, &ws.v, &ws.ctx, &ws.a0, &ws.a1, &ws.o}) ensure(*buf, R * T);
    ensure(ws.f, R * I);
    ensure(ws.attn_scratch, static_cast<std::size_t>(pool_->size()) *
                                ops::attention_scratch_floats(in.L, cfg_.head_size()));

    const bool keep_hidden = !out.hidden_states.empty();
    float* X = keep_hidden ? out.hidden_states[0] : ws.x0.data();
    embed(in, ws, X);
    for (std::size_t l = 0; l < cfg_.num_layers; ++l) {
      float* Y;
      if (keep_hidden) Y = out.hidden_states[l + 1];
      else if (l + 1 == cfg_.num_layers) Y = out.last_hidden_state;
      else Y = (X == ws.x0.data()) ? ws.x1.data() : ws.x0.data();
      layer(layers_[l], in, ws, X, Y, out.attentions.empty() ? nullptr : out.attentions[l]);
      X = Y;
    }
    if (X != out.last_hidden_state) std::memcpy(out.last_hidden_state, X, R * H * sizeof(float));
    const float* last = out.last_hidden_state;

    if (build_pooler_ && out.pooler_output != nullptr) {
      float* pooled = out.pooler_output;
      ensure(ws.pooled_in, in.N * H);
      for (std::size_t n = 0; n < in.N; ++n) std::memcpy(&ws.pooled_in[n * H], last + n * in.L * H, H * sizeof(float));
      if (pooler_) {
        run_linear(pooler_, ws.pooled_in.data(), in.N, H, pooled, H, ops::Activation::tanh, nullptr, 0.0f, ws);
      } else {
        std::memcpy(pooled, ws.pooled_in.data(), in.N * H * sizeof(float));
      }
      if (pooled_head_ && out.pooled_logits != nullptr)
        ops::linear_forward(*pooled_head_, pooled, in.N, H, out.pooled_logits, pooled_head_->n(), {}, pool_);
    }
    if (token_head_ && out.token_logits != nullptr)
      ops::linear_forward(*token_head_, last, R, H, out.token_logits, token_head_->n(), {}, pool_);
    if (mlm_decoder_ && out.mlm_logits != nullptr) {
      const std::size_t rows = in.mlm_rows ? in.num_mlm_rows : R;
      const float* src = last;
      if (in.mlm_rows) {
        ensure(ws.mlm_in, rows * H);
        for (std::size_t r = 0; r < rows; ++r)
          std::memcpy(&ws.mlm_in[r * H], last + static_cast<std::size_t>(in.mlm_rows[r]) * H, H * sizeof(float));
        src = ws.mlm_in.data();
      }
      ensure(ws.mlm_t, rows * H);
      ops::Epilogue ep;
      ep.activation = cfg_.activation;
      ops::linear_forward(*mlm_transform_, src, rows, H, ws.mlm_t.data(), H, ep, pool_);
      // The transform's norm is a real LayerNorm with the config eps, even in no_norm models.
      kernels::AddNormParams p{ws.mlm_t.data(), nullptr, nullptr, mlm_norm_.weight, mlm_norm_.bias,
                               ws.mlm_t.data(), rows, H, true, cfg_.layer_norm_eps};
      table_->add_norm.fn(p);
      ops::linear_forward(*mlm_decoder_, ws.mlm_t.data(), rows, H, out.mlm_logits, cfg_.vocab_size, {}, pool_);
    }
  } catch (...) {
    release(std::move(owned));
    throw;
  }
  release(std::move(owned));
}

}  // namespace mbl::model
