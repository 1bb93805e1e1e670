// _C.Engine: the whole MobileBERT forward (embeddings, encoder, pooler, heads) in one native call.
//
// The Python side (mobilebert_lite/backends.py) validates user inputs with friendly messages; this layer
// still checks everything it dereferences (dtypes, shapes, index ranges) so that no call can crash the process.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/mobilebert.h"

namespace py = pybind11;

namespace {

using I64Array = py::array_t<std::int64_t, py::array::c_style>;

[[noreturn]] void bad(const std::string& msg) { throw py::value_error("Engine: " + msg); }

std::size_t get_size(const py::dict& d, const char* key) {
  const long long v = d[key].cast<long long>();
  if (v < 0) bad(std::string(key) + " must be >= 0");
  return static_cast<std::size_t>(v);
}

// An int64 [N, L] array whose values lie in [0, limit).
const std::int64_t* index_array(const py::handle& obj, const char* name, std::size_t N, std::size_t L,
                                std::size_t limit, std::vector<py::object>& keep_alive) {
  if (!py::isinstance<I64Array>(obj)) bad(std::string(name) + " must be a C-contiguous int64 array");
  auto a = py::reinterpret_borrow<I64Array>(obj);
  if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(0)) != N || static_cast<std::size_t>(a.shape(1)) != L)
    bad(std::string(name) + " must have shape (N, L) like the other inputs");
  const std::int64_t* p = a.data();
  for (std::size_t i = 0; i < N * L; ++i)
    if (p[i] < 0 || static_cast<std::size_t>(p[i]) >= limit)
      bad(std::string(name) + " holds " + std::to_string(p[i]) + ", out of range [0, " + std::to_string(limit) +
          ")");
  keep_alive.push_back(a);
  return p;
}

class PyEngine {
 public:
  PyEngine(const py::dict& config, const py::dict& weights, const py::dict& heads, int num_threads,
           const std::vector<std::string>& file_backed) {
    if (num_threads < 1) bad("num_threads must be >= 1");
    mbl::model::Config c{};
    c.vocab_size = get_size(config, "vocab_size");
    c.hidden_size = get_size(config, "hidden_size");
    c.embedding_size = get_size(config, "embedding_size");
    c.true_hidden_size = get_size(config, "true_hidden_size");
    c.intra_bottleneck_size = get_size(config, "intra_bottleneck_size");
    c.intermediate_size = get_size(config, "intermediate_size");
    c.num_layers = get_size(config, "num_hidden_layers");
    c.num_heads = get_size(config, "num_attention_heads");
    c.max_position = get_size(config, "max_position_embeddings");
    c.type_vocab_size = get_size(config, "type_vocab_size");
    c.num_ffn = get_size(config, "num_feedforward_networks");
    c.trigram_input = config["trigram_input"].cast<bool>();
    c.use_bottleneck = config["use_bottleneck"].cast<bool>();
    c.use_bottleneck_attention = config["use_bottleneck_attention"].cast<bool>();
    c.key_query_shared_bottleneck = config["key_query_shared_bottleneck"].cast<bool>();
    c.layer_norm = config["normalization_type"].cast<std::string>() == "layer_norm";
    c.classifier_activation = config["classifier_activation"].cast<bool>();
    c.layer_norm_eps = config["layer_norm_eps"].cast<float>();
    // optional: the TF twins' semantics (model.h Config); absent = transformers' PyTorch classes
    if (config.contains("_quirk_eps")) c.quirk_eps = config["_quirk_eps"].cast<float>();
    if (config.contains("_mask_value")) c.mask_value = config["_mask_value"].cast<float>();
    const std::string act = config["hidden_act"].cast<std::string>();
    if (!mbl::ops::parse_activation(act, &c.activation))
      bad("hidden_act '" + act + "' has no native kernel; expected one of " + mbl::ops::activation_names());
    if (c.num_ffn < 1) bad("num_feedforward_networks must be >= 1");
    if (c.use_bottleneck && !c.use_bottleneck_attention && !c.key_query_shared_bottleneck)
      bad("key_query_shared_bottleneck=False with use_bottleneck and without use_bottleneck_attention is not "
          "supported (transformers cannot run it either)");

    mbl::model::WeightMap map;
    for (auto item : weights) {
      auto name = item.first.cast<std::string>();
      const bool is_i8 = py::isinstance<py::array_t<std::int8_t>>(item.second);
      if (!is_i8 && !py::isinstance<py::array_t<float>>(item.second))
        bad("weight '" + name + "' must be a float32 (or, for a quantised Linear weight, int8) array");
      auto arr = py::reinterpret_borrow<py::array>(item.second);
      if (!(arr.flags() & py::array::c_style)) bad("weight '" + name + "' must be C-contiguous");
      mbl::model::TensorView view;
      if (is_i8) view.i8 = static_cast<const std::int8_t*>(arr.data());
      else view.data = static_cast<const float*>(arr.data());
      for (py::ssize_t i = 0; i < arr.ndim(); ++i) view.shape.push_back(static_cast<std::size_t>(arr.shape(i)));
      map[name] = view;
      weights_alive_.push_back(arr);  // embedding tables are used in place (memory-mapped), never copied
    }
    for (const std::string& name : file_backed) {
      auto it = map.find(name);
      if (it == map.end()) bad("file_backed names unknown weight '" + name + "'");
      it->second.file_backed = true;
    }
    heads_.pooler = heads["pooler"].cast<bool>();
    heads_.mlm = heads["mlm"].cast<bool>();
    heads_.pooled_linear = heads["pooled_linear"].cast<std::string>();
    heads_.token_linear = heads["token_linear"].cast<std::string>();
    try {
      engine_ = std::make_unique<mbl::model::Engine>(c, map, heads_, num_threads);
    } catch (const std::invalid_argument& e) {
      bad(e.what());
    }
  }

  py::dict forward(const py::object& input_ids, const py::object& inputs_embeds, const py::object& token_type_ids,
                   const py::object& position_ids, const py::object& keep, bool want_hidden, bool want_attentions,
                   const py::object& mlm_rows) {
    const mbl::model::Config& c = engine_->config();
    std::vector<py::object> alive;
    mbl::model::Inputs in;
    if (input_ids.is_none() == inputs_embeds.is_none()) bad("pass exactly one of input_ids and inputs_embeds");
    if (!input_ids.is_none()) {
      auto ids = py::reinterpret_borrow<py::array>(input_ids);
      if (ids.ndim() != 2) bad("input_ids must be 2-D (N, L)");
      in.N = static_cast<std::size_t>(ids.shape(0));
      in.L = static_cast<std::size_t>(ids.shape(1));
      in.input_ids = index_array(input_ids, "input_ids", in.N, in.L, c.vocab_size, alive);
    } else {
      using F32 = py::array_t<float, py::array::c_style>;
      if (!py::isinstance<F32>(inputs_embeds)) bad("inputs_embeds must be a C-contiguous float32 array");
      auto e = py::reinterpret_borrow<F32>(inputs_embeds);
      if (e.ndim() != 3 || static_cast<std::size_t>(e.shape(2)) != c.embedding_size)
        bad("inputs_embeds must have shape (N, L, embedding_size)");
      in.N = static_cast<std::size_t>(e.shape(0));
      in.L = static_cast<std::size_t>(e.shape(1));
      in.inputs_embeds = e.data();
      alive.push_back(e);
    }
    if (in.N == 0 || in.L == 0) bad("inputs must hold at least one token");
    in.token_type_ids = index_array(token_type_ids, "token_type_ids", in.N, in.L, c.type_vocab_size, alive);
    in.position_ids = index_array(position_ids, "position_ids", in.N, in.L, c.max_position, alive);
    if (!keep.is_none()) {
      using U8 = py::array_t<std::uint8_t, py::array::c_style>;
      if (!py::isinstance<U8>(keep)) bad("keep must be a C-contiguous uint8 array");
      auto k = py::reinterpret_borrow<U8>(keep);
      if (k.ndim() != 2 || static_cast<std::size_t>(k.shape(0)) != in.N || static_cast<std::size_t>(k.shape(1)) != in.L)
        bad("keep must have shape (N, L)");
      in.keep = k.data();
      alive.push_back(k);
    }
    const std::size_t R = in.N * in.L, H = c.hidden_size;
    if (!mlm_rows.is_none()) {
      if (!heads_.mlm) bad("mlm_rows given but this engine has no MLM head");
      if (!py::isinstance<I64Array>(mlm_rows)) bad("mlm_rows must be a C-contiguous int64 array");
      auto rows = py::reinterpret_borrow<I64Array>(mlm_rows);
      if (rows.ndim() != 1) bad("mlm_rows must be 1-D");
      for (py::ssize_t i = 0; i < rows.shape(0); ++i)
        if (rows.data()[i] < 0 || static_cast<std::size_t>(rows.data()[i]) >= R)
          bad("mlm_rows holds " + std::to_string(rows.data()[i]) + ", out of range [0, N*L)");
      in.mlm_rows = rows.data();
      in.num_mlm_rows = static_cast<std::size_t>(rows.shape(0));
      alive.push_back(rows);
    }

    auto f32 = [](std::vector<py::ssize_t> shape) { return py::array_t<float>(shape); };
    const auto N = static_cast<py::ssize_t>(in.N), L = static_cast<py::ssize_t>(in.L);
    const auto Hs = static_cast<py::ssize_t>(H);
    py::dict result;
    mbl::model::Outputs out;
    auto last = f32({N, L, Hs});
    out.last_hidden_state = last.mutable_data();
    result["last_hidden_state"] = last;
    if (want_hidden) {
      py::list hs;
      for (std::size_t i = 0; i <= c.num_layers; ++i) {
        auto a = f32({N, L, Hs});
        out.hidden_states.push_back(a.mutable_data());
        hs.append(a);
      }
      result["hidden_states"] = py::tuple(hs);
    }
    if (want_attentions) {
      py::list at;
      for (std::size_t i = 0; i < c.num_layers; ++i) {
        auto a = f32({N, static_cast<py::ssize_t>(c.num_heads), L, L});
        out.attentions.push_back(a.mutable_data());
        at.append(a);
      }
      result["attentions"] = py::tuple(at);
    }
    if (heads_.pooler) {
      auto a = f32({N, Hs});
      out.pooler_output = a.mutable_data();
      result["pooler_output"] = a;
      if (engine_->pooled_outputs()) {
        auto b = f32({N, static_cast<py::ssize_t>(engine_->pooled_outputs())});
        out.pooled_logits = b.mutable_data();
        result["pooled_logits"] = b;
      }
    }
    if (engine_->token_outputs()) {
      auto a = f32({N, L, static_cast<py::ssize_t>(engine_->token_outputs())});
      out.token_logits = a.mutable_data();
      result["token_logits"] = a;
    }
    if (heads_.mlm) {
      const auto rows = static_cast<py::ssize_t>(in.mlm_rows ? in.num_mlm_rows : R);
      auto a = f32({rows, static_cast<py::ssize_t>(c.vocab_size)});
      out.mlm_logits = a.mutable_data();
      result["mlm_logits"] = a;
    }
    {
      py::gil_scoped_release release;
      engine_->forward(in, out);
    }
    return result;
  }

  int num_threads() const { return engine_->num_threads(); }
  std::string isa() const { return engine_->isa_name(); }
  std::size_t int8_linears() const { return engine_->int8_linears(); }

 private:
  std::vector<py::array> weights_alive_;
  mbl::model::HeadSpec heads_;
  std::unique_ptr<mbl::model::Engine> engine_;
};

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<PyEngine>(m, "Engine", "The whole MobileBERT forward in one native call (weights packed once).")
      .def(py::init<const py::dict&, const py::dict&, const py::dict&, int, const std::vector<std::string>&>(),
           py::arg("config"), py::arg("weights"), py::arg("heads"), py::arg("num_threads") = 1,
           py::arg("file_backed") = std::vector<std::string>{})
      .def("forward", &PyEngine::forward, py::arg("input_ids"), py::arg("inputs_embeds"),
           py::arg("token_type_ids"), py::arg("position_ids"), py::arg("keep"), py::arg("want_hidden") = false,
           py::arg("want_attentions") = false, py::arg("mlm_rows") = py::none())
      .def_property_readonly("num_threads", &PyEngine::num_threads)
      .def_property_readonly("isa", &PyEngine::isa)
      .def_property_readonly("int8_linears", &PyEngine::int8_linears);
}
