// _C.WordPieceTokenizer: the native core of MobileBertTokenizerFast (tokenizer/wordpiece.h).
//
// Strings cross the boundary without conversion: CPython keeps a str as 1-, 2- or 4-byte code units, and the
// core reads all three layouts, so encode_batch neither encodes to UTF-8 nor copies the text. The GIL is
// released for the tokenisation of the whole batch; building the result lists needs it again.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bindings/binding_utils.h"
#include "tokenizer/wordpiece.h"

namespace py = pybind11;
using mbl::bindings::type_name;
namespace tk = mbl::tokenizer;

namespace {

constexpr const char* kClass = "WordPieceTokenizer";

[[noreturn]] void bad_value(const std::string& msg) { throw py::value_error(std::string(kClass) + ": " + msg); }
[[noreturn]] void bad_type(const std::string& msg) { throw py::type_error(std::string(kClass) + ": " + msg); }

// The code points of a str. Lone surrogates are kept (a UTF-8 round trip would reject them).
std::u32string code_points(PyObject* s) {
#if PY_VERSION_HEX < 0x030C0000
  if (PyUnicode_READY(s) < 0) throw py::error_already_set();  // legacy strings before 3.12
#endif
  const Py_ssize_t n = PyUnicode_GET_LENGTH(s);
  const int kind = PyUnicode_KIND(s);
  const void* data = PyUnicode_DATA(s);
  std::u32string out(static_cast<std::size_t>(n), U'\0');
  for (Py_ssize_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = PyUnicode_READ(kind, data, i);
  return out;
}

std::string repr_of(const py::handle& obj) { return py::repr(obj).cast<std::string>(); }

// An int in [lo, hi], or a ValueError (TypeError if not an int) that starts with `what`.
std::int64_t int_in(const py::handle& obj, std::int64_t lo, std::int64_t hi, const std::string& what) {
  if (!PyLong_Check(obj.ptr())) bad_type(what + " must be an int, got " + type_name(obj));
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  if (overflow != 0 || v < lo || v > hi)
    bad_value(what + " is " + repr_of(obj) + ", expected an int in [" + std::to_string(lo) + ", " +
              std::to_string(hi) + "]");
  return v;
}

std::vector<tk::Range> ranges(const std::vector<std::pair<std::int64_t, std::int64_t>>& pairs, const char* name) {
  std::vector<tk::Range> out;
  out.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto [first, last] = pairs[i];
    if (!(0 <= first && first <= last && last <= static_cast<std::int64_t>(tk::kMaxCodePoint)))
      bad_value(std::string(name) + "[" + std::to_string(i) + "] is (" + std::to_string(first) + ", " +
                std::to_string(last) + "), expected an inclusive range of code points (0 <= first <= last <= " +
                "0x10FFFF)");
    out.push_back({static_cast<char32_t>(first), static_cast<char32_t>(last)});
  }
  return out;
}

// Python ints for the result lists. Values repeat a lot (token ids, offsets, word indices), so the ints
// below `size` are made once per call and shared: an incref instead of an allocation (and, when the lists
// die, a decref instead of a free). Per call, not global, so the cache holds nothing between calls.
class IntCache {
 public:
  explicit IntCache(std::size_t size) : cache_(size, nullptr) {}
  IntCache(const IntCache&) = delete;
  IntCache& operator=(const IntCache&) = delete;
  ~IntCache() {
    for (PyObject* o : cache_) Py_XDECREF(o);
  }

  PyObject* get(std::int64_t v) {  // a new reference, or nullptr with a Python error set
    if (v < 0 || static_cast<std::uint64_t>(v) >= cache_.size()) return PyLong_FromLongLong(v);
    PyObject*& o = cache_[static_cast<std::size_t>(v)];
    if (o == nullptr && (o = PyLong_FromLongLong(v)) == nullptr) return nullptr;
    Py_INCREF(o);
    return o;
  }

  // A list of Python ints, built with the C API: this runs once per token and field, so it is the
  // binding's hot loop (pybind11's generic casters would cost several times more).
  template <typename T>
  py::list list(const std::vector<T>& values) {
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(values.size()));
    if (list == nullptr) throw py::error_already_set();
    for (std::size_t i = 0; i < values.size(); ++i) {
      PyObject* v = get(values[i]);
      if (v == nullptr) {
        Py_DECREF(list);
        throw py::error_already_set();
      }
      PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), v);
    }
    return py::reinterpret_steal<py::list>(list);
  }

 private:
  std::vector<PyObject*> cache_;
};

class PyWordPieceTokenizer {
 public:
  PyWordPieceTokenizer(const py::dict& vocab, std::int64_t unk_id, const py::dict& char_map,
                       const std::vector<std::pair<std::int64_t, std::int64_t>>& split_whitespace,
                       const std::vector<std::pair<std::int64_t, std::int64_t>>& punctuation,
                       std::int64_t max_input_chars_per_word, const py::str& continuing_prefix) {
    constexpr std::int64_t kMaxId = std::numeric_limits<std::int32_t>::max();
    std::vector<std::pair<std::u32string, std::int32_t>> pieces;
    pieces.reserve(vocab.size());
    std::unordered_set<std::int64_t> ids;
    for (const auto& [key, value] : vocab) {
      if (!PyUnicode_Check(key.ptr())) bad_type("vocab keys must be str, got " + type_name(key));
      const std::int64_t id = int_in(value, 0, kMaxId, "vocab[" + repr_of(key) + "]");
      pieces.emplace_back(code_points(key.ptr()), static_cast<std::int32_t>(id));
      ids.insert(id);
    }
    // The unk token must be in the vocabulary (HF's WordPiece fails on encode otherwise).
    if (ids.count(unk_id) == 0) bad_value("unk_id " + std::to_string(unk_id) + " is not an id of vocab");

    std::vector<std::pair<char32_t, std::u32string>> mapping;
    mapping.reserve(char_map.size());
    for (const auto& [key, value] : char_map) {
      const std::int64_t c = int_in(key, 0, tk::kMaxCodePoint, "char_map key");
      if (!PyUnicode_Check(value.ptr()))
        bad_type("char_map[" + std::to_string(c) + "] must be a str, got " + type_name(value));
      mapping.emplace_back(static_cast<char32_t>(c), code_points(value.ptr()));
    }
    if (max_input_chars_per_word < 0)
      bad_value("max_input_chars_per_word must be >= 0, got " + std::to_string(max_input_chars_per_word));

    core_ = std::make_unique<tk::WordPiece>(pieces, static_cast<std::int32_t>(unk_id), mapping,
                                            ranges(split_whitespace, "split_whitespace"),
                                            ranges(punctuation, "punctuation"),
                                            static_cast<std::size_t>(max_input_chars_per_word),
                                            code_points(continuing_prefix.ptr()));
  }

  py::tuple encode_batch(const py::handle& texts) const {
    // A tuple of the texts keeps every str alive while the GIL is released, even if another thread
    // empties the caller's list meanwhile (strs are immutable, so their buffers stay put).
    py::tuple items;
    if (PyList_Check(texts.ptr())) {
      items = py::reinterpret_steal<py::tuple>(PyList_AsTuple(texts.ptr()));
      if (!items) throw py::error_already_set();
    } else if (PyTuple_Check(texts.ptr())) {
      items = py::reinterpret_borrow<py::tuple>(texts);
    } else {
      throw py::type_error("encode_batch: texts must be a list of str, got " + type_name(texts));
    }
    std::vector<tk::TextView> views;
    views.reserve(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      PyObject* s = PyTuple_GET_ITEM(items.ptr(), static_cast<Py_ssize_t>(i));
      if (!PyUnicode_Check(s))
        throw py::type_error("encode_batch: texts[" + std::to_string(i) + "] is " + type_name(s) +
                             ", expected str");
#if PY_VERSION_HEX < 0x030C0000
      if (PyUnicode_READY(s) < 0) throw py::error_already_set();
#endif
      views.push_back({PyUnicode_DATA(s), static_cast<std::size_t>(PyUnicode_GET_LENGTH(s)),
                       static_cast<int>(PyUnicode_KIND(s))});
    }

    tk::Encoded enc;
    {
      py::gil_scoped_release nogil;
      enc = core_->encode_batch(views);
    }
    // Sized to the output: a short call must not pay for a large cache; 2^16 covers BERT-sized vocabularies.
    IntCache ints(std::min<std::size_t>(enc.ids.size(), std::size_t{1} << 16));
    return py::make_tuple(ints.list(enc.ids), ints.list(enc.starts), ints.list(enc.ends), ints.list(enc.words),
                          ints.list(enc.splits));
  }

 private:
  std::unique_ptr<const tk::WordPiece> core_;
};

}  // namespace

void bind_tokenizer(py::module_& m) {
  py::class_<PyWordPieceTokenizer>(
      m, kClass,
      "BERT normaliser + pre-tokeniser + WordPiece in C++: the core of MobileBertTokenizerFast, with results\n"
      "identical to mobilebert_lite.tokenization.normalization.WordPieceCore. Immutable; safe to share\n"
      "between threads.")
      .def(py::init<const py::dict&, std::int64_t, const py::dict&,
                    const std::vector<std::pair<std::int64_t, std::int64_t>>&,
                    const std::vector<std::pair<std::int64_t, std::int64_t>>&, std::int64_t, const py::str&>(),
           py::arg("vocab"), py::arg("unk_id"), py::arg("char_map"), py::arg("split_whitespace"),
           py::arg("punctuation"), py::arg("max_input_chars_per_word") = 100, py::arg("continuing_prefix") = "##",
           "vocab: token -> id (ids in [0, 2**31)); unk_id: an id of vocab; char_map: code point -> normalised\n"
           "text for the code points the normaliser changes ('' removes); split_whitespace, punctuation:\n"
           "inclusive (first, last) code point ranges (whitespace wins where they overlap).")
      .def("encode_batch", &PyWordPieceTokenizer::encode_batch, py::arg("texts"),
           "texts: list of str -> (ids, starts, ends, words, splits), flat lists of ints; text i owns items\n"
           "splits[i]:splits[i + 1]; starts/ends are offsets in code points into that text, words 0-based word\n"
           "indices within it. The GIL is released while the batch is tokenised.");
}
