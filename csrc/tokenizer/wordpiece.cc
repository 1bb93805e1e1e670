// See wordpiece.h. The per-character loop (normalize_and_split) and the per-word loop (emit_word) are the hot
// paths; everything else runs once per tokenizer.
#include "tokenizer/wordpiece.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

namespace mbl::tokenizer {

namespace {

constexpr std::uint64_t kHashBase = 0x100000001B3ull;  // odd, so powers never vanish mod 2^64
constexpr std::size_t kNumCodePoints = std::size_t{kMaxCodePoint} + 1;

// The polynomial hash: h(c0..cn-1) = sum c_i * B^(n-1-i) mod 2^64. Prefix hashes H[k] = h(c0..ck-1) give
// h(ca..cb-1) = H[b] - H[a] * B^(b-a).
std::uint64_t hash_of(const char32_t* s, std::size_t n) {
  std::uint64_t h = 0;
  for (std::size_t i = 0; i < n; ++i) h = h * kHashBase + s[i];
  return h;
}

// The polynomial hash is weak in its low bits (they only see the chars' low bits): mix the whole word
// (MurmurHash3's finaliser), then the low bits pick the slot and the high 32 bits are the tag.
std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

}  // namespace

// --- Vocabulary tables ---------------------------------------------------------------------------------------

void WordPiece::PieceTable::build(const std::vector<std::pair<std::u32string_view, std::int32_t>>& items) {
  std::size_t capacity = 16;
  while (capacity < 2 * items.size()) capacity *= 2;
  slots.assign(capacity, Slot{0, kEmpty});
  filter.assign(capacity / 4, 0);  // 16 filter bits per slot
  const std::size_t filter_mask = filter.size() * 64 - 1;
  const std::size_t mask = capacity - 1;
  for (const auto& [key, id] : items) {
    const std::uint64_t m = mix(hash_of(key.data(), key.size()));
    const auto tag = static_cast<std::uint32_t>(m >> 32);
    filter[(tag & filter_mask) >> 6] |= std::uint64_t{1} << (tag & 63);
    for (std::size_t i = m & mask;; i = (i + 1) & mask) {
      Slot& slot = slots[i];
      if (slot.record == kEmpty) {
        if (records.size() + 2 + key.size() >= kEmpty) throw std::invalid_argument("vocab: too large");
        slot = Slot{tag, static_cast<std::uint32_t>(records.size())};
        records.push_back(static_cast<std::uint32_t>(id));
        records.push_back(static_cast<std::uint32_t>(key.size()));
        records.insert(records.end(), key.begin(), key.end());
        max_length = std::max(max_length, key.size());
        break;
      }
      const std::uint32_t* r = &records[slot.record];
      if (slot.tag == tag && r[1] == key.size() && std::equal(key.begin(), key.end(), r + 2)) {
        records[slot.record] = static_cast<std::uint32_t>(id);  // a repeated key: the last one wins, as in a dict
        break;
      }
    }
  }
}

inline std::int32_t WordPiece::PieceTable::find(const char32_t* key, std::size_t length, std::uint64_t hash) const {
  const std::uint64_t m = mix(hash);
  const auto tag = static_cast<std::uint32_t>(m >> 32);
  const std::size_t filter_mask = filter.size() * 64 - 1;
  if ((filter[(tag & filter_mask) >> 6] >> (tag & 63) & 1) == 0) return -1;
  const std::size_t mask = slots.size() - 1;
  for (std::size_t i = m & mask;; i = (i + 1) & mask) {
    const Slot slot = slots[i];
    if (slot.record == kEmpty) return -1;
    if (slot.tag != tag) continue;
    const std::uint32_t* r = records.data() + slot.record;
    if (r[1] != length) continue;
    std::size_t j = 0;
    while (j < length && r[2 + j] == key[j]) ++j;  // keys are short: a loop beats a call to memcmp
    if (j == length) return static_cast<std::int32_t>(r[0]);
  }
}

// --- Construction --------------------------------------------------------------------------------------------

WordPiece::WordPiece(const std::vector<std::pair<std::u32string, std::int32_t>>& vocab, std::int32_t unk_id,
                     const std::vector<std::pair<char32_t, std::u32string>>& char_map,
                     const std::vector<Range>& split_whitespace, const std::vector<Range>& punctuation,
                     std::size_t max_input_chars_per_word, const std::u32string& continuing_prefix)
    : unk_id_(unk_id), max_chars_(max_input_chars_per_word) {
  if (unk_id < 0) throw std::invalid_argument("unk_id must be >= 0");

  // Normalisation: the full per-code-point entry array first (a few MB, only while building), then folded
  // into deduplicated blocks.
  std::vector<std::uint32_t> entries(kNumCodePoints, kOther);
  auto mark = [&entries](const std::vector<Range>& ranges, CharClass cls, const char* what) {
    // Punctuation is marked first and whitespace over it: whitespace wins, as in split_class().
    for (const Range& r : ranges) {
      if (r.first > r.last || r.last > kMaxCodePoint)
        throw std::invalid_argument(std::string(what) + ": bad range");
      for (char32_t c = r.first; c <= r.last; ++c) entries[c] = cls;
    }
  };
  mark(punctuation, kPunctuation, "punctuation");
  mark(split_whitespace, kWhitespace, "split_whitespace");

  std::map<std::u32string, std::uint32_t> template_index;  // template -> its number t >= 1
  tmpl_start_.assign(1, 0);
  for (const auto& [c, replacement] : char_map) {
    if (c > kMaxCodePoint) throw std::invalid_argument("char_map: key is not a code point");
    for (char32_t r : replacement)
      if (r > kMaxCodePoint) throw std::invalid_argument("char_map: replacement holds a value above U+10FFFF");
    std::u32string t = replacement;
    std::replace(t.begin(), t.end(), c, kSelf);
    auto [it, added] = template_index.emplace(t, static_cast<std::uint32_t>(tmpl_start_.size()));
    if (added) {
      if (tmpl_start_.size() >= (std::size_t{1} << (32 - kTemplateShift)))
        throw std::invalid_argument("char_map: too many distinct replacements");
      tmpl_chars_.insert(tmpl_chars_.end(), t.begin(), t.end());
      tmpl_start_.push_back(static_cast<std::uint32_t>(tmpl_chars_.size()));
    }
    entries[c] = (entries[c] & kClassMask) | (it->second << kTemplateShift);
  }

  constexpr std::size_t block = std::size_t{1} << kBlockBits;
  std::map<std::vector<std::uint32_t>, std::uint32_t> block_index;
  stage1_.resize(kNumCodePoints / block);
  for (std::size_t b = 0; b < stage1_.size(); ++b) {
    std::vector<std::uint32_t> content(entries.begin() + b * block, entries.begin() + (b + 1) * block);
    auto [it, added] = block_index.emplace(std::move(content), static_cast<std::uint32_t>(block_index.size()));
    if (added) blocks_.insert(blocks_.end(), it->first.begin(), it->first.end());
    stage1_[b] = it->second;
  }

  // Vocabulary: every token for the first piece of a word, the prefixed ones without their prefix for the
  // others (continuation pieces are then looked up without building prefix + span).
  std::vector<std::pair<std::u32string_view, std::int32_t>> initial, continuation;
  initial.reserve(vocab.size());
  const std::u32string_view prefix = continuing_prefix;
  for (const auto& [token, id] : vocab) {
    if (id < 0) throw std::invalid_argument("vocab: ids must be >= 0");
    const std::u32string_view t = token;
    if (t.empty()) continue;  // an empty piece never matches
    initial.emplace_back(t, id);
    if (t.size() > prefix.size() && t.substr(0, prefix.size()) == prefix)
      continuation.emplace_back(t.substr(prefix.size()), id);
  }
  initial_.build(initial);
  continuation_.build(continuation);
  powers_.resize(std::max(initial_.max_length, continuation_.max_length) + 1);
  powers_[0] = 1;
  for (std::size_t k = 1; k < powers_.size(); ++k) powers_[k] = powers_[k - 1] * kHashBase;
}

// --- Encoding ------------------------------------------------------------------------------------------------

struct WordPiece::Scratch {
  std::vector<char32_t> chars;        // the current word, normalised
  std::vector<std::int64_t> sources;  // for each of its chars, the index of the input char it came from
  std::vector<std::uint64_t> prefix;  // prefix hashes of the word
  std::int64_t word = 0;              // index of the next word within the text
};

Encoded WordPiece::encode_batch(const std::vector<TextView>& texts) const {
  Encoded out;
  std::size_t total = 0;
  for (const TextView& t : texts) total += t.length;
  const std::size_t guess = total / 4 + 16;  // ~4 chars per token in English; only a first reservation
  out.ids.reserve(guess);
  out.starts.reserve(guess);
  out.ends.reserve(guess);
  out.words.reserve(guess);
  out.splits.reserve(texts.size() + 1);
  out.splits.push_back(0);
  Scratch scratch;
  for (const TextView& t : texts) {
    encode_text(t, scratch, out);
    out.splits.push_back(static_cast<std::int64_t>(out.ids.size()));
  }
  return out;
}

Encoded WordPiece::encode(std::u32string_view text) const {
  const std::vector<std::uint32_t> units(text.begin(), text.end());  // the 4-byte layout is read as uint32_t
  return encode_batch({TextView{units.data(), units.size(), 4}});
}

void WordPiece::encode_text(const TextView& text, Scratch& s, Encoded& out) const {
  s.word = 0;
  s.chars.clear();
  s.sources.clear();
  switch (text.width) {
    case 1:
      return normalize_and_split(static_cast<const std::uint8_t*>(text.data), text.length, s, out);
    case 2:
      return normalize_and_split(static_cast<const std::uint16_t*>(text.data), text.length, s, out);
    case 4:
      return normalize_and_split(static_cast<const std::uint32_t*>(text.data), text.length, s, out);
    default:
      throw std::invalid_argument("TextView: width must be 1, 2 or 4");
  }
}

template <typename Unit>
void WordPiece::normalize_and_split(const Unit* text, std::size_t length, Scratch& s, Encoded& out) const {
  // One normalised character: whitespace ends the word, punctuation ends it and is a word of its own.
  auto add = [&](char32_t c, std::uint32_t cls, std::size_t source) {
    if (cls == kOther) {
      s.chars.push_back(c);
      s.sources.push_back(static_cast<std::int64_t>(source));
      return;
    }
    if (!s.chars.empty()) emit_word(s, out);
    if (cls == kPunctuation) {
      s.chars.push_back(c);
      s.sources.push_back(static_cast<std::int64_t>(source));
      emit_word(s, out);
    }
  };
  const std::uint32_t* latin1 = &blocks_[static_cast<std::size_t>(stage1_[0]) << kBlockBits];
  for (std::size_t i = 0; i < length; ++i) {
    const char32_t c = text[i];
    std::uint32_t entry;
    if constexpr (sizeof(Unit) == 1) {
      entry = latin1[c];  // Latin-1 lies in block 0
    } else if constexpr (sizeof(Unit) == 2) {
      entry = lookup(c);
    } else {
      if (c > kMaxCodePoint) throw std::invalid_argument("text holds a value above U+10FFFF");
      entry = lookup(c);
    }
    const std::uint32_t t = entry >> kTemplateShift;
    if (t == 0) {
      add(c, entry & kClassMask, i);
      continue;
    }
    for (std::uint32_t k = tmpl_start_[t - 1]; k < tmpl_start_[t]; ++k) {
      const char32_t o = tmpl_chars_[k] == kSelf ? c : tmpl_chars_[k];
      add(o, lookup(o) & kClassMask, i);
    }
  }
  if (!s.chars.empty()) emit_word(s, out);
}

void WordPiece::emit_word(Scratch& s, Encoded& out) const {
  const std::size_t n = s.chars.size();
  const std::int64_t word = s.word++;
  const std::size_t mark = out.ids.size();
  auto push = [&](std::int32_t id, std::size_t first, std::size_t last) {  // chars first..last, inclusive
    out.ids.push_back(id);
    out.starts.push_back(s.sources[first]);
    out.ends.push_back(s.sources[last] + 1);
    out.words.push_back(word);
  };

  bool ok = n <= max_chars_;
  if (ok) {
    const char32_t* w = s.chars.data();
    s.prefix.resize(n + 1);
    std::uint64_t* H = s.prefix.data();
    H[0] = 0;
    for (std::size_t k = 0; k < n; ++k) H[k + 1] = H[k] * kHashBase + w[k];

    // Greedy longest match first: at each position the longest vocabulary piece (candidates start at the
    // longest key of the table, not at the end of the word).
    for (std::size_t start = 0; start < n;) {
      const PieceTable& table = start == 0 ? initial_ : continuation_;
      std::size_t end = start + std::min(n - start, table.max_length);
      std::int32_t id = -1;
      for (; end > start; --end) {
        const std::size_t len = end - start;
        id = table.find(w + start, len, H[end] - H[start] * powers_[len]);
        if (id >= 0) break;
      }
      if (id < 0) {
        ok = false;
        break;
      }
      push(id, start, end - 1);
      start = end;
    }
  }
  if (!ok) {  // too long, or some position has no piece: the whole word is one unk
    out.ids.resize(mark);
    out.starts.resize(mark);
    out.ends.resize(mark);
    out.words.resize(mark);
    push(unk_id_, 0, n - 1);
  }
  s.chars.clear();
  s.sources.clear();
}

}  // namespace mbl::tokenizer
