// The BERT WordPiece core: normalise (one code point at a time through a char map), pre-tokenise (split on
// whitespace, isolate punctuation) and greedy longest-match-first WordPiece, with offsets into the input.
//
// The oracle is mobilebert_lite/tokenization/normalization.py (WordPieceCore); results must be identical.
// Plain C++17, no Python: text comes in as code points (1-, 2- or 4-byte units, i.e. the three layouts of a
// CPython str, so the binding can hand strings over without converting them), results go out as vectors.
//
// A WordPiece object is immutable once built; encode_batch keeps its scratch space per call, so one object
// may be used from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mbl::tokenizer {

inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

// Inclusive code point range.
struct Range {
  char32_t first, last;
};

// One input text: `length` code points stored as `width`-byte units (1: Latin-1, 2: UCS-2, 4: UTF-32).
struct TextView {
  const void* data;
  std::size_t length;
  int width;
};

// Flat results of a batch: token k has ids[k], offsets [starts[k], ends[k]) in code points of its text and
// the 0-based index words[k] of its word within that text; text i owns tokens splits[i]..splits[i+1].
struct Encoded {
  std::vector<std::int32_t> ids;
  std::vector<std::int64_t> starts, ends, words;
  std::vector<std::int64_t> splits;
};

// Pre-tokeniser classes of a normalised character (as in normalization.py).
enum CharClass : std::uint8_t { kOther = 0, kWhitespace = 1, kPunctuation = 2 };

class WordPiece {
 public:
  // vocab: (token, id) pairs with distinct tokens and ids >= 0; char_map: code point -> replacement for the
  // code points the normaliser changes ("" removes); whitespace wins over punctuation where ranges overlap.
  // Arguments are assumed valid (the binding checks them); std::invalid_argument otherwise.
  WordPiece(const std::vector<std::pair<std::u32string, std::int32_t>>& vocab, std::int32_t unk_id,
            const std::vector<std::pair<char32_t, std::u32string>>& char_map,
            const std::vector<Range>& split_whitespace, const std::vector<Range>& punctuation,
            std::size_t max_input_chars_per_word, const std::u32string& continuing_prefix);

  Encoded encode_batch(const std::vector<TextView>& texts) const;
  Encoded encode(std::u32string_view text) const;  // one text, for tests and tools

  // The pre-tokeniser class of a normalised character.
  CharClass char_class(char32_t c) const { return static_cast<CharClass>(lookup(c) & kClassMask); }

 private:
  // --- Normalisation table -------------------------------------------------------------------------------
  // Every code point maps to a 32-bit entry: bits 0-1 its CharClass, bits 2-31 a template index (0: the code
  // point is kept as it is). A template is the replacement string with the code point itself written as
  // kSelf, so " c " for the ~90k CJK ideographs is one template and their table blocks deduplicate.
  // Two-stage table (blocks of 256 code points), as Unicode property tables usually are: two loads per
  // character, for every code point, in a few hundred kB at most.
  static constexpr std::uint32_t kClassMask = 3;
  static constexpr int kTemplateShift = 2;
  static constexpr char32_t kSelf = 0xFFFFFFFF;  // not a code point
  static constexpr int kBlockBits = 8;

  std::uint32_t lookup(char32_t c) const {
    return blocks_[(static_cast<std::size_t>(stage1_[c >> kBlockBits]) << kBlockBits) |
                   (c & ((1u << kBlockBits) - 1))];
  }

  std::vector<std::uint32_t> stage1_;      // code point >> 8 -> block number
  std::vector<std::uint32_t> blocks_;      // block number * 256 + (code point & 255) -> entry
  std::vector<std::uint32_t> tmpl_start_;  // template t >= 1 is tmpl_chars_[tmpl_start_[t - 1], tmpl_start_[t])
  std::vector<char32_t> tmpl_chars_;

  // --- Vocabulary ----------------------------------------------------------------------------------------
  // Open addressing (linear probing, load <= 1/2) keyed by code point sequences. A key's hash is the
  // polynomial hash of its code points mod 2^64, which a word's prefix hashes give in O(1) for any span:
  // longest-match then costs one probe per candidate length, with no substring built.
  // Lookups are bound by memory latency (the BERT vocabulary's tables exceed L2), so the layout minimises
  // dependent loads: 8-byte slots (a 32-bit tag from the hash, so a miss rarely reads past its slot), and
  // a hit's id, length and code points side by side in one record. Most probes are misses (longest-match
  // tries the long spans first); a bit filter small enough for L2 answers most of them without a slot.
  struct Slot {
    std::uint32_t tag;
    std::uint32_t record;  // records[record] = id, [record + 1] = length, then the code points; kEmpty: none
  };
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFF;
  struct PieceTable {
    std::vector<std::uint64_t> filter;  // one bit per tag value mod its size (32 bits per key, ~3% false hits)
    std::vector<Slot> slots;
    std::vector<std::uint32_t> records;
    std::size_t max_length = 0;  // longest key, in code points: longest-match starts there
    void build(const std::vector<std::pair<std::u32string_view, std::int32_t>>& items);
    std::int32_t find(const char32_t* key, std::size_t length, std::uint64_t hash) const;  // -1: absent
  };

  struct Scratch;
  void encode_text(const TextView& text, Scratch& s, Encoded& out) const;
  template <typename Unit>
  void normalize_and_split(const Unit* text, std::size_t length, Scratch& s, Encoded& out) const;
  void emit_word(Scratch& s, Encoded& out) const;

  PieceTable initial_;       // every vocabulary token, for the first piece of a word
  PieceTable continuation_;  // tokens that start with the prefix, stored without it
  std::vector<std::uint64_t> powers_;  // kHashBase^k, k <= the longest key
  std::int32_t unk_id_;
  std::size_t max_chars_;
};

}  // namespace mbl::tokenizer
