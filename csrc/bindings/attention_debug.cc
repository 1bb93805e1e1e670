// _C.attention and _C._attention_exp: the fused attention driver (ops/attention.h) and its vector exp,
// reachable from Python per ISA for kernel tests and benchmarks. Validation follows module.cc: every bad
// argument is a ValueError naming it; an ISA this build or CPU cannot run is a RuntimeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cfloat>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/binding_utils.h"
#include "cpu/dispatch.h"
#include "ops/attention.h"

namespace py = pybind11;
using mbl::bindings::resolve_table;
using mbl::bindings::shape_of;
using mbl::bindings::shape_str;
using mbl::bindings::type_name;

namespace {

[[noreturn]] void bad(const std::string& what) { throw py::value_error("attention: " + what); }

py::array checked_float(const py::handle& obj, const char* name, int ndim) {
  if (!py::isinstance<py::array>(obj)) bad(std::string(name) + " must be a numpy.ndarray, got " + type_name(obj));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!py::isinstance<py::array_t<float>>(a))  // also rejects non-native byte order
    bad(std::string(name) + " must be float32, got " + std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    bad(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " + std::to_string(a.ndim()) +
        "-D with shape " + shape_str(shape_of(a)));
  return a;
}

// The row stride, in floats, of a [B, L, W] float32 array whose rows are evenly spaced (row b*L + i at
// b*L*ld + i*ld) with a contiguous last axis: C-contiguous arrays (ld = W) and column slices of a wider one,
// e.g. q = qkv[:, :, :W] of a fused projection. Anything else is a ValueError.
std::size_t row_stride(const py::array& a, const char* name) {
  const py::ssize_t f = static_cast<py::ssize_t>(sizeof(float));
  const py::ssize_t B = a.shape(0), L = a.shape(1), W = a.shape(2);
  if (B * L <= 1 || W == 0) return static_cast<std::size_t>(W);  // one row or none: any stride will do
  // The stride between consecutive rows: along L, or along B when each batch has one row.
  const py::ssize_t step = L > 1 ? a.strides(1) : a.strides(0);
  const bool ok = (W == 1 || a.strides(2) == f) && step % f == 0 && step >= W * f &&
                  (B == 1 || L == 1 || a.strides(0) == L * step);
  if (!ok)
    bad(std::string(name) + " must be C-contiguous, or a view whose rows are evenly spaced with a contiguous "
                            "last axis (e.g. a column slice of a C-contiguous array)");
  return static_cast<std::size_t>(step / f);
}

bool overlaps(const py::array& a, const py::array& b) {
  if (a.size() == 0 || b.size() == 0) return false;
  // Extents from the first to one past the last element (strides are positive here).
  auto extent = [](const py::array& x) {
    auto lo = reinterpret_cast<std::uintptr_t>(x.data());
    std::uintptr_t hi = lo + sizeof(float);
    for (py::ssize_t i = 0; i < x.ndim(); ++i) hi += static_cast<std::uintptr_t>((x.shape(i) - 1) * x.strides(i));
    return std::pair{lo, hi};
  };
  const auto [a_lo, a_hi] = extent(a);
  const auto [b_lo, b_hi] = extent(b);
  return a_lo < b_hi && b_lo < a_hi;
}

py::tuple attention(const py::object& q_obj, const py::object& k_obj, const py::object& v_obj,
                    const py::object& keep_obj, py::ssize_t num_heads, const std::optional<double>& scale_opt,
                    bool want_probs, const py::object& out_obj, const std::optional<std::string>& isa,
                    double mask_value) {
  const mbl::KernelTable& table = resolve_table(isa, "attention");

  const py::array q = checked_float(q_obj, "q", 3);
  const py::ssize_t B = q.shape(0), L = q.shape(1), width = q.shape(2);
  const py::array k = checked_float(k_obj, "k", 3);
  const py::array v = checked_float(v_obj, "v", 3);
  for (const auto& [name, arr] : {std::pair{"k", &k}, std::pair{"v", &v}})
    if (shape_of(*arr) != shape_of(q))
      bad(std::string(name) + " has shape " + shape_str(shape_of(*arr)) + ", expected q's " + shape_str(shape_of(q)));
  if (num_heads < 1) bad("num_heads must be >= 1, got " + std::to_string(num_heads));
  if (width < 1 || width % num_heads != 0)
    bad("the last axis of q (" + std::to_string(width) + ") must be a positive multiple of num_heads (" +
        std::to_string(num_heads) + ")");
  const py::ssize_t d = width / num_heads;
  const std::size_t ldq = row_stride(q, "q"), ldk = row_stride(k, "k"), ldv = row_stride(v, "v");

  // keep: any bool or integer array [B, L], nonzero = attend.
  std::optional<py::array> keep;
  if (!keep_obj.is_none()) {
    if (!py::isinstance<py::array>(keep_obj)) bad("keep must be a numpy.ndarray or None, got " + type_name(keep_obj));
    auto kp = py::reinterpret_borrow<py::array>(keep_obj);
    const char kind = kp.dtype().kind();
    if (kind != 'b' && kind != 'i' && kind != 'u')
      bad("keep must be bool or an integer dtype, got " + std::string(py::str(kp.dtype())));
    if (shape_of(kp) != std::vector<py::ssize_t>{B, L})
      bad("keep has shape " + shape_str(shape_of(kp)) + ", expected " + shape_str({B, L}));
    // bool and uint8 are read as they are (the kernels test keep[j] != 0); wider integers are reduced to bool.
    const bool bytes = (kind == 'b' || (kind == 'u' && kp.dtype().itemsize() == 1)) &&
                       (kp.flags() & py::array::c_style);
    keep = bytes ? kp : py::module_::import("numpy").attr("ascontiguousarray")(kp.attr("__ne__")(0), "bool");
  }

  float scale;
  if (scale_opt) {
    if (!std::isfinite(*scale_opt)) bad("scale must be finite, got " + std::string(py::str(py::float_(*scale_opt))));
    scale = static_cast<float>(*scale_opt);
  } else {
    scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));  // HF: head_dim ** -0.5
  }

  py::array out;
  if (out_obj.is_none()) {
    out = py::array_t<float>({B, L, width});
  } else {
    out = checked_float(out_obj, "out", 3);
    if (shape_of(out) != shape_of(q)) bad("out has shape " + shape_str(shape_of(out)) + ", expected " + shape_str(shape_of(q)));
    if (!out.writeable()) bad("out must be writeable");
    for (const auto& [name, arr] : {std::pair{"q", &q}, std::pair{"k", &k}, std::pair{"v", &v}})
      if (overlaps(out, *arr)) bad(std::string("out overlaps ") + name + "; pass a separate array");
  }
  const std::size_t ldc = row_stride(out, "out");
  py::object probs = py::none();
  if (want_probs) probs = py::array_t<float>({B, num_heads, L, L});
  if (B == 0 || L == 0) return py::make_tuple(out, probs);

  mbl::ops::AttentionArgs a{};
  a.q = static_cast<const float*>(q.data());
  a.k = static_cast<const float*>(k.data());
  a.v = static_cast<const float*>(v.data());
  a.ldq = ldq, a.ldk = ldk, a.ldv = ldv;
  a.keep = keep ? static_cast<const unsigned char*>(keep->data()) : nullptr;  // bool or uint8: one byte
  a.B = static_cast<std::size_t>(B), a.L = static_cast<std::size_t>(L);
  a.heads = static_cast<std::size_t>(num_heads), a.d = static_cast<std::size_t>(d);
  a.scale = scale;
  a.mask_value = static_cast<float>(mask_value);
  a.ctx = static_cast<float*>(out.mutable_data());
  a.ldc = ldc;
  a.probs = want_probs ? static_cast<float*>(py::reinterpret_borrow<py::array>(probs).mutable_data()) : nullptr;
  std::vector<float> scratch(mbl::ops::attention_scratch_floats(a.L, a.d));
  {
    py::gil_scoped_release nogil;  // every array is held by this frame
    mbl::ops::attention_forward(table, a, scratch.data());
  }
  return py::make_tuple(out, probs);
}

py::array attention_exp(const py::object& x_obj, const std::optional<std::string>& isa) {
  const mbl::KernelTable& table = resolve_table(isa, "attention");
  const py::array x = checked_float(x_obj, "x", 1);
  if (!(x.flags() & py::array::c_style)) bad("x must be C-contiguous");
  py::array_t<float> y(x.shape(0));
  const float* xp = static_cast<const float*>(x.data());
  float* yp = y.mutable_data();
  const auto n = static_cast<std::size_t>(x.shape(0));
  py::gil_scoped_release nogil;
  table.attention.exp(xp, yp, n);
  return y;
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention", &attention, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("keep") = py::none(),
        py::kw_only(), py::arg("num_heads"), py::arg("scale") = py::none(), py::arg("want_probs") = false,
        py::arg("out") = py::none(), py::arg("isa") = py::none(), py::arg("mask_value") = -FLT_MAX,
        "Fused multi-head attention, transformers' MobileBERT eager math: per batch and head h (columns\n"
        "[h*d, (h+1)*d), d = width / num_heads), softmax((q k^T) * scale + mask) v, the mask adding\n"
        "mask_value (default float32 min, PyTorch semantics; TensorFlow uses -10000) to masked keys.\n\n"
        "q, k, v: float32 [B, L, width], C-contiguous or column slices of one (rows evenly spaced, last axis\n"
        "contiguous). keep: bool/integer [B, L], nonzero = attend, None = all. scale: default d ** -0.5.\n"
        "out: optional float32 [B, L, width] destination, same layout rules. Returns (ctx, probs) with probs\n"
        "[B, num_heads, L, L] if want_probs else None. isa=None uses the active kernels. GIL released.");
  m.def("_attention_exp", &attention_exp, py::arg("x"), py::arg("isa") = py::none(),
        "The vector exp of the attention softmax, elementwise over a float32 1-D array (accuracy tests).");
}
