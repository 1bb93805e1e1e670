// _C.PackedLinear, _C._fma_peak and _C._pool_check: the GEMM driver (ops/linear.h) and the thread pool
// (cpu/threadpool.h) reachable from Python, per ISA, for kernel tests and benchmarks. Validation follows
// module.cc: every bad argument is a ValueError naming it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/binding_utils.h"
#include "cpu/dispatch.h"
#include "cpu/threadpool.h"
#include "ops/linear.h"

namespace py = pybind11;
using mbl::bindings::resolve_table;
using mbl::bindings::shape_of;
using mbl::bindings::shape_str;

namespace {

[[noreturn]] void bad(const std::string& what) { throw py::value_error("PackedLinear: " + what); }

// A sanity bound on num_threads= (as for MBL_NUM_THREADS): a typo like 10**6 should be an error, not an
// attempt to start a million threads.
constexpr int kMaxThreads = 1024;

// obj as a float32, C-contiguous ndarray of the given shape (-1 = any extent), or a ValueError naming it.
py::array checked(const py::handle& obj, const char* name, const std::vector<py::ssize_t>& shape) {
  if (!py::isinstance<py::array>(obj))
    bad(std::string(name) + " must be a numpy.ndarray, got " +
        py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!py::isinstance<py::array_t<float>>(a))
    bad(std::string(name) + " must be float32, got " + std::string(py::str(a.dtype())));
  if (a.ndim() != static_cast<py::ssize_t>(shape.size()))
    bad(std::string(name) + " must be " + std::to_string(shape.size()) + "-D, got " + std::to_string(a.ndim()) +
        "-D with shape " + shape_str(shape_of(a)));
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (shape[i] >= 0 && a.shape(i) != shape[i]) {
      std::vector<py::ssize_t> want = shape;
      for (std::size_t j = 0; j < want.size(); ++j)
        if (want[j] < 0) want[j] = a.shape(j);
      bad(std::string(name) + " has shape " + shape_str(shape_of(a)) + ", expected " + shape_str(want));
    }
  if (!(a.flags() & py::array::c_style)) bad(std::string(name) + " must be C-contiguous");
  return a;
}

bool overlaps(const py::array& a, const py::array& b) {
  const auto a_lo = reinterpret_cast<std::uintptr_t>(a.data());
  const auto b_lo = reinterpret_cast<std::uintptr_t>(b.data());
  return a_lo < b_lo + static_cast<std::uintptr_t>(b.nbytes()) &&
         b_lo < a_lo + static_cast<std::uintptr_t>(a.nbytes());
}

class PyPackedLinear {
 public:
  // float32 weight: ops::PackedLinear; int8 weight (values in [-127, 127]) with weight_scale: ops::QPackedLinear.
  PyPackedLinear(const py::object& weight_obj, const py::object& bias_obj, const std::optional<std::string>& isa,
                 const py::object& scale_obj, const py::object& smooth_obj) {
    const mbl::KernelTable& table = resolve_table(isa, "PackedLinear");
    const bool int8 = py::isinstance<py::array_t<std::int8_t>>(weight_obj);
    py::array w;
    if (int8) {
      w = py::reinterpret_borrow<py::array>(weight_obj);
      if (w.ndim() != 2) bad("weight must be 2-D, got shape " + shape_str(shape_of(w)));
      if (!(w.flags() & py::array::c_style)) bad("weight must be C-contiguous");
    } else {
      w = checked(weight_obj, "weight", {-1, -1});
    }
    const py::ssize_t N = w.shape(0), K = w.shape(1);
    if (N < 1 || K < 1) bad("weight must have N >= 1 and K >= 1, got shape " + shape_str(shape_of(w)));
    std::optional<py::array> b, scale, smooth;
    if (!bias_obj.is_none()) b = checked(bias_obj, "bias", {N});
    const float* bp = b ? static_cast<const float*>(b->data()) : nullptr;
    if (!int8) {
      if (!scale_obj.is_none() || !smooth_obj.is_none()) bad("weight_scale/smooth are for int8 weights only");
      const float* wp = static_cast<const float*>(w.data());
      py::gil_scoped_release nogil;
      layer_ = std::make_unique<mbl::ops::PackedLinear>(table, wp, bp, static_cast<std::size_t>(N),
                                                         static_cast<std::size_t>(K));
      return;
    }
    if (scale_obj.is_none()) bad("an int8 weight needs weight_scale (float32, one per output row)");
    scale = checked(scale_obj, "weight_scale", {N});
    if (!smooth_obj.is_none()) smooth = checked(smooth_obj, "smooth", {K});
    try {
      qlayer_ = std::make_unique<mbl::ops::QPackedLinear>(
          table, static_cast<const std::int8_t*>(w.data()), static_cast<const float*>(scale->data()), bp,
          smooth ? static_cast<const float*>(smooth->data()) : nullptr, static_cast<std::size_t>(N),
          static_cast<std::size_t>(K));
    } catch (const std::invalid_argument& e) {
      bad(e.what());
    }
  }

  std::size_t n() const { return layer_ ? layer_->n() : qlayer_->n(); }
  std::size_t k() const { return layer_ ? layer_->k() : qlayer_->k(); }
  const mbl::KernelTable& table() const { return layer_ ? layer_->table() : qlayer_->table(); }
  const char* isa() const { return mbl::isa_name(table().isa); }
  const char* kernel_name() const { return layer_ ? layer_->gemm().name : qlayer_->gemm().name; }
  bool is_int8() const { return qlayer_ != nullptr; }

  py::array call(const py::object& x_obj, const std::string& activation, const py::object& residual_obj,
                 const py::object& norm_obj, const py::object& norm_weight_obj, const py::object& norm_bias_obj,
                 double eps, const py::object& out_obj, int num_threads) const {
    const auto N = static_cast<py::ssize_t>(n()), K = static_cast<py::ssize_t>(k());
    const py::array x = checked(x_obj, "x", {-1, K});
    const py::ssize_t M = x.shape(0);

    mbl::ops::Epilogue ep;
    if (!mbl::ops::parse_activation(activation, &ep.activation))
      bad("unknown activation '" + activation + "'; expected one of " + mbl::ops::activation_names());
    std::vector<std::pair<const char*, py::array>> inputs{{"x", x}};
    if (!residual_obj.is_none()) {
      inputs.push_back({"residual", checked(residual_obj, "residual", {M, N})});
      ep.residual = static_cast<const float*>(inputs.back().second.data());
      ep.ldr = static_cast<std::size_t>(N);
    }
    if (!norm_obj.is_none()) {
      if (!py::isinstance<py::str>(norm_obj))
        bad("norm must be None, 'no_norm' or 'layer_norm', got a " +
            py::str(py::type::handle_of(norm_obj).attr("__name__")).cast<std::string>());
      const std::string norm = norm_obj.cast<std::string>();
      if (norm == "no_norm") ep.norm = mbl::ops::Norm::no_norm;
      else if (norm == "layer_norm") ep.norm = mbl::ops::Norm::layer_norm;
      else bad("unknown norm '" + norm + "'; expected None, 'no_norm' or 'layer_norm'");
      if (norm_weight_obj.is_none()) bad("norm='" + norm + "' needs norm_weight");
      if (norm_bias_obj.is_none()) bad("norm='" + norm + "' needs norm_bias");
      inputs.push_back({"norm_weight", checked(norm_weight_obj, "norm_weight", {N})});
      ep.norm_weight = static_cast<const float*>(inputs.back().second.data());
      inputs.push_back({"norm_bias", checked(norm_bias_obj, "norm_bias", {N})});
      ep.norm_bias = static_cast<const float*>(inputs.back().second.data());
    } else if (!norm_weight_obj.is_none() || !norm_bias_obj.is_none()) {
      bad("norm_weight/norm_bias given but norm is None");
    }
    if (!(eps >= 0.0)) bad("eps must be >= 0, got " + std::string(py::str(py::float_(eps))));
    ep.eps = static_cast<float>(eps);
    if (num_threads < 1 || num_threads > kMaxThreads)
      bad("num_threads must be in [1, " + std::to_string(kMaxThreads) + "], got " + std::to_string(num_threads));
    mbl::ThreadPool* pool = num_threads > 1 ? &mbl::shared_pool(num_threads) : nullptr;

    py::array out;
    if (out_obj.is_none()) {
      out = py::array_t<float>({M, N});
    } else {
      out = checked(out_obj, "out", {M, N});
      if (!out.writeable()) bad("out must be writeable");
      for (const auto& [name, arr] : inputs)
        if (overlaps(out, arr)) bad(std::string("out overlaps ") + name + "; pass a separate array");
    }
    if (M == 0) return out;
    const float* a = static_cast<const float*>(x.data());
    float* c = static_cast<float*>(out.mutable_data());
    {
      py::gil_scoped_release nogil;  // x, out and the epilogue arrays are held by this frame
      const auto m = static_cast<std::size_t>(M), k = static_cast<std::size_t>(K), n = static_cast<std::size_t>(N);
      if (layer_) {
        mbl::ops::linear_forward(*layer_, a, m, k, c, n, ep, pool);
      } else {
        mbl::ops::QScratch scratch;
        mbl::ops::qlinear_forward(*qlayer_, a, m, k, c, n, ep, scratch, pool);
      }
    }
    return out;
  }

 private:
  std::unique_ptr<mbl::ops::PackedLinear> layer_;
  std::unique_ptr<mbl::ops::QPackedLinear> qlayer_;
};

// The int8 GEMM's activation quantiser of an ISA (kernels::QuantizeRows), for bit-exact tests against NumPy:
// returns (q, scale, zero, a_offset) with q the signed values int8 [M, K] (the stored bytes minus a_offset),
// scale and zero float32 [M]; also checks that the padding bytes up to Kp hold a_offset.
py::tuple quantize_rows(const py::object& x_obj, const py::object& smooth_obj, const std::optional<std::string>& isa) {
  const mbl::QGemmKernel& g = resolve_table(isa, "_quantize_rows").qgemm;
  const py::array x = checked(x_obj, "x", {-1, -1});
  const py::ssize_t M = x.shape(0), K = x.shape(1);
  if (K < 1) bad("x must have K >= 1 columns");
  std::optional<py::array> smooth;
  if (!smooth_obj.is_none()) smooth = checked(smooth_obj, "smooth", {K});
  const std::size_t Kp = (static_cast<std::size_t>(K) + 3) / 4 * 4;
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(M) * Kp);
  py::array_t<float> scale(M), zero(M);
  {
    py::gil_scoped_release nogil;
    g.quantize({static_cast<const float*>(x.data()), static_cast<std::size_t>(K), static_cast<std::size_t>(M),
                static_cast<std::size_t>(K), smooth ? static_cast<const float*>(smooth->data()) : nullptr,
                bytes.data(), Kp, scale.mutable_data(), zero.mutable_data(), g.a_offset});
  }
  py::array_t<std::int8_t> q({M, K});
  std::int8_t* qp = q.mutable_data();
  for (std::size_t m = 0; m < static_cast<std::size_t>(M); ++m) {
    for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k)
      qp[m * K + k] = static_cast<std::int8_t>(static_cast<std::uint8_t>(bytes[m * Kp + k] - g.a_offset));
    for (std::size_t k = K; k < Kp; ++k)
      if (bytes[m * Kp + k] != static_cast<std::uint8_t>(g.a_offset))
        throw std::logic_error("_quantize_rows: padding byte is not a_offset");
  }
  return py::make_tuple(q, scale, zero, g.a_offset);
}

// The FMA throughput of one core for an ISA's vector width: best of `repeats` timed probe runs, GFLOP/s.
double fma_peak(const std::optional<std::string>& isa, std::size_t iters, int repeats) {
  const mbl::GemmKernel& g = resolve_table(isa, "PackedLinear").gemm;
  py::gil_scoped_release nogil;
  double best = 0.0;
  volatile float sink = 0.0f;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sink = sink + g.probe(iters);
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    const double gflops = static_cast<double>(iters) * static_cast<double>(g.probe_flops) / dt.count() * 1e-9;
    if (gflops > best) best = gflops;
  }
  return best;
}

// Runs a job of num_tasks tasks on a pool of num_threads (the shared one, or a fresh one created and
// destroyed here), `repeats` times. Each task spins for task_us microseconds (so that the workers get a
// share) and records which worker ran it; the task numbered throw_at (if >= 0) throws. Returns
// (times each task ran, in total over the repeats; the set of worker indices seen); a thrown task surfaces
// as RuntimeError.
// Back-to-back jobs of varying sizes (the pattern of a forward pass: GEMMs and attention with different task
// counts), checking that every job runs each of its tasks exactly once and nothing else. Returns the number of
// violations (0 when the pool is correct); a lost or phantom task used to show up here as a hang or a count.
long long pool_stress(int num_threads, const std::vector<std::size_t>& sizes, int repeats) {
  if (num_threads < 1 || num_threads > kMaxThreads)
    throw py::value_error("_pool_stress: num_threads must be in [1, " + std::to_string(kMaxThreads) + "]");
  std::size_t largest = 0;
  for (std::size_t s : sizes) largest = s > largest ? s : largest;
  std::vector<std::atomic<int>> runs(largest);
  std::atomic<long long> violations{0};
  py::gil_scoped_release nogil;
  mbl::ThreadPool pool(num_threads);
  for (int r = 0; r < repeats; ++r) {
    for (std::size_t n : sizes) {
      for (std::size_t t = 0; t < n; ++t) runs[t] = 0;
      pool.run(n, [&](std::size_t task, int) {
        if (task >= n) violations.fetch_add(1);
        else runs[task].fetch_add(1);
      });
      for (std::size_t t = 0; t < n; ++t)
        if (runs[t].load() != 1) violations.fetch_add(1);
    }
  }
  return violations.load();
}

py::tuple pool_check(int num_threads, std::size_t num_tasks, long long throw_at, int repeats, double task_us,
                     bool shared) {
  if (num_threads < 1 || num_threads > kMaxThreads)
    throw py::value_error("_pool_check: num_threads must be in [1, " + std::to_string(kMaxThreads) + "]");
  std::vector<std::atomic<int>> runs(num_tasks);
  std::vector<std::atomic<bool>> workers(static_cast<std::size_t>(num_threads));
  {
    py::gil_scoped_release nogil;
    std::unique_ptr<mbl::ThreadPool> own;
    if (!shared) own = std::make_unique<mbl::ThreadPool>(num_threads);
    mbl::ThreadPool& pool = shared ? mbl::shared_pool(num_threads) : *own;
    const auto spin = std::chrono::duration<double, std::micro>(task_us);
    for (int r = 0; r < repeats; ++r)
      pool.run(num_tasks, [&](std::size_t task, int worker) {
        if (worker < 0 || worker >= num_threads) throw std::logic_error("worker index out of range");
        workers[static_cast<std::size_t>(worker)] = true;
        runs[task].fetch_add(1);
        const auto t0 = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < spin) mbl::cpu_relax();
        if (throw_at >= 0 && task == static_cast<std::size_t>(throw_at))
          throw std::runtime_error("task " + std::to_string(task) + " failed");
      });
  }
  py::list runs_out, workers_out;
  for (const auto& r : runs) runs_out.append(r.load());
  for (std::size_t w = 0; w < workers.size(); ++w)
    if (workers[w]) workers_out.append(w);
  return py::make_tuple(runs_out, workers_out);
}

}  // namespace

void bind_linear(py::module_& m) {
  py::class_<PyPackedLinear>(m, "PackedLinear",
                             "A Linear layer packed once for one ISA's GEMM kernel: y = x @ weight.T + bias,\n"
                             "then activation, + residual, then norm, fused. isa=None uses the active kernels.\n"
                             "An int8 weight (values in [-127, 127]) with weight_scale [N] runs the int8 GEMM:\n"
                             "x (times smooth [K], if given) quantised per row, exact int32 products, dequantised.")
      .def(py::init<const py::object&, const py::object&, const std::optional<std::string>&, const py::object&,
                    const py::object&>(),
           py::arg("weight"), py::arg("bias") = py::none(), py::arg("isa") = py::none(), py::kw_only(),
           py::arg("weight_scale") = py::none(), py::arg("smooth") = py::none())
      .def_property_readonly("is_int8", &PyPackedLinear::is_int8)
      .def_property_readonly("n", &PyPackedLinear::n)
      .def_property_readonly("k", &PyPackedLinear::k)
      .def_property_readonly("isa", &PyPackedLinear::isa)
      .def_property_readonly("kernel_name", &PyPackedLinear::kernel_name)
      .def("__call__", &PyPackedLinear::call, py::arg("x"), py::kw_only(), py::arg("activation") = "none",
           py::arg("residual") = py::none(), py::arg("norm") = py::none(), py::arg("norm_weight") = py::none(),
           py::arg("norm_bias") = py::none(), py::arg("eps") = 1e-12, py::arg("out") = py::none(),
           py::arg("num_threads") = 1,
           "x: float32 C-contiguous [M, K] -> [M, N]: act(x @ W.T + bias) + residual, then norm\n"
           "('no_norm': y * norm_weight + norm_bias; 'layer_norm' with eps). activation: any HF hidden_act\n"
           "name (see the error for an unknown one). num_threads > 1 runs on the process-wide pool of that\n"
           "size; the result is bitwise the same for every num_threads. The GIL is released.");
  m.def("_quantize_rows", &quantize_rows, py::arg("x"), py::arg("smooth") = py::none(), py::arg("isa") = py::none(),
        "The int8 GEMM's per-row activation quantiser: (q int8 [M, K], scale, zero float32 [M], a_offset).");
  m.def("_fma_peak", &fma_peak, py::arg("isa") = py::none(), py::arg("iters") = 20000000,
        py::arg("repeats") = 5,
        "Measured FMA throughput of one core at an ISA's vector width, GFLOP/s (best of `repeats`).");
  m.def("_pool_check", &pool_check, py::arg("num_threads"), py::arg("num_tasks"), py::kw_only(),
        py::arg("throw_at") = -1, py::arg("repeats") = 1, py::arg("task_us") = 0.0, py::arg("shared") = true,
        "Thread-pool self-test: run num_tasks tasks `repeats` times; returns (runs per task, workers seen).\n"
        "Task throw_at throws (RuntimeError here); shared=False uses a pool created for this call.");
  m.def("_pool_stress", &pool_stress, py::arg("num_threads"), py::arg("sizes"), py::arg("repeats"),
        "Thread-pool stress test: jobs of the given task counts back to back, `repeats` rounds, on a fresh pool;\n"
        "returns the number of violations (a task run zero or several times, or an index past the job's end).");
}
