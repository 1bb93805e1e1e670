// Small helpers every binding file uses for argument checking and error messages.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu/dispatch.h"

namespace mbl::bindings {

namespace py = pybind11;

// "(3, 4)", and "(3,)" for one dimension, as NumPy prints shapes.
inline std::string shape_str(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::vector<py::ssize_t> shape_of(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

inline std::string type_name(const py::handle& obj) {
  return py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>();
}

// The kernel table for isa= (or the active one). An unknown name is a bad argument like any other (ValueError
// prefixed with the calling function's name); an ISA this build or CPU cannot run stays a RuntimeError.
inline const KernelTable& resolve_table(const std::optional<std::string>& isa, const char* caller) {
  if (!isa) return kernel_table();
  try {
    return kernel_table_for(*isa);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(std::string(caller) + ": " + e.what());
  }
}

}  // namespace mbl::bindings
