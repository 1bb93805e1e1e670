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
  PyPackedLinear(const py::object& weight_obj, const py::object& bias_obj, const std::optional<std::string>& isa) {
    const mbl::KernelTable& table = resolve_table(isa, "PackedLinear");
    const py::array w = checked(weight_obj, "weight", {-1, -1});
    const py::ssize_t N = w.shape(0), K = w.shape(1);
    if (N < 1 || K < 1) bad("weight must have N >= 1 and K >= 1, got shape " + shape_str(shape_of(w)));
    std::optional<py::array> b;
    if (!bias_obj.is_none()) b = checked(bias_obj, "bias", {N});
    const float* wp = static_cast<const float*>(w.data());
    const float* bp = b ? static_cast<const float*>(b->data()) : nullptr;
    py::gil_scoped_release nogil;
    layer_ = std::make_unique<mbl::ops::PackedLinear>(table, wp, bp, static_cast<std::size_t>(N),
                                                       static_cast<std::size_t>(K));
  }

  std::size_t n() const { return layer_->n(); }
  std::size_t k() const { return layer_->k(); }
  const char* isa() const { return mbl::isa_name(layer_->table().isa); }
  const char* kernel_name() const { return layer_->gemm().name; }

  py::array call(const py::object& x_obj, const std::string& activation, const py::object& residual_obj,
                 const py::object& norm_obj, const py::object& norm_weight_obj, const py::object& norm_bias_obj,
                 double eps, const py::object& out_obj, int num_threads) const {
    const auto N = static_cast<py::ssize_t>(layer_->n()), K = static_cast<py::ssize_t>(layer_->k());
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
      mbl::ops::linear_forward(*layer_, a, static_cast<std::size_t>(M), static_cast<std::size_t>(K), c,
                               static_cast<std::size_t>(N), ep, pool);
    }
    return out;
  }

 private:
  std::unique_ptr<mbl::ops::PackedLinear> layer_;
};

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
                             "then activation, + residual, then norm, fused. isa=None uses the active kernels.")
      .def(py::init<const py::object&, const py::object&, const std::optional<std::string>&>(), py::arg("weight"),
           py::arg("bias") = py::none(), py::arg("isa") = py::none())
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
