// WordPiece tokenizer reproducing transformers' slow BertTokenizer (BasicTokenizer + WordpieceTokenizer +
// PreTrainedTokenizer's added-token split) step by step, in the same order: special-token split, clean,
// CJK spacing, whitespace split, NFC, Python str.lower(), NFD + drop Mn, punctuation split, greedy WordPiece.
// Text is decoded once into code points; every buffer lives in a per-call Pipeline (nothing global, no
// per-character allocation). Unicode properties come from utf8proc; see tokenizer_test.cc for divergences.
#include "text/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"

namespace nlpf {

namespace {

constexpr int64_t kMinLengthSingle = 2;  // [CLS] [SEP]
constexpr int64_t kMinLengthPair = 3;    // [CLS] [SEP] [SEP]
constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

// PreTrainedTokenizer's all_special_tokens: found verbatim in raw text they are single tokens.
constexpr std::array<std::string_view, 5> kSpecialTokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

// What BasicTokenizer does with an ASCII character.
enum class Ascii : uint8_t { KEEP, DROP, SPACE, PUNCT };

constexpr std::array<Ascii, 128> make_ascii_table() {
  std::array<Ascii, 128> table{};
  for (int c = 0; c < 128; ++c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      table[c] = Ascii::SPACE;
    } else if (c < 32 || c == 127) {
      table[c] = Ascii::DROP;  // category Cc (and U+0000)
    } else if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126)) {
      table[c] = Ascii::PUNCT;  // BERT counts every non-alphanumeric printable ASCII as punctuation ($, ^, `)
    } else {
      table[c] = Ascii::KEEP;
    }
  }
  return table;
}
constexpr std::array<Ascii, 128> kAscii = make_ascii_table();

utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_control_category(utf8proc_category_t cat) {
  return cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO;
}

bool is_punctuation(char32_t c) {
  if (c < 128) return kAscii[c] == Ascii::PUNCT;
  const utf8proc_category_t cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks only (not Hangul, kana or CJK
// punctuation).
bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Unicode Case_Ignorable (Mn, Me, Cf, Lm, Sk and Word_Break MidLetter/MidNumLet/Single_Quote), as
// CPython's final-sigma rule uses it; checked against CPython for every code point of Unicode 14.
bool is_case_ignorable(char32_t c) {
  static constexpr std::array<char32_t, 17> kWordBreakIgnorable = {
      0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,  0x5F4,  0x2018, 0x2019,
      0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
  if (std::find(kWordBreakIgnorable.begin(), kWordBreakIgnorable.end(), c) != kWordBreakIgnorable.end()) {
    return true;
  }
  const utf8proc_category_t cat = category(c);
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK;
}

// Unicode Cased for characters that are not case-ignorable (the only ones the sigma rule asks about).
bool is_cased(char32_t c) {
  const utf8proc_category_t cat = category(c);
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT) return true;
  const auto cp = static_cast<utf8proc_int32_t>(c);
  if (utf8proc_tolower(cp) != cp || utf8proc_toupper(cp) != cp) return true;
  // Other_Lowercase / Other_Uppercase without a case mapping: ordinal indicators, squared letters.
  return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
         (c >= 0x1F170 && c <= 0x1F189);
}

// CPython's handle_capital_sigma: U+03A3 lower-cases to final U+03C2 after a cased letter (skipping
// case-ignorables) unless a cased letter follows (again skipping case-ignorables), within `s`.
bool is_final_sigma(const std::vector<char32_t>& s, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(s[j - 1])) --j;
  if (j == 0 || !is_cased(s[j - 1])) return false;
  j = i + 1;
  while (j < s.size() && is_case_ignorable(s[j])) ++j;
  return j == s.size() || !is_cased(s[j]);
}

int combining_class(char32_t c) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

// Canonical decomposition of `in` appended to `out`, in canonical order (NFD).
void decompose(const std::vector<char32_t>& in, std::vector<char32_t>& out) {
  out.clear();
  for (const char32_t c : in) {
    if (c < 0xC0) {  // nothing below U+00C0 decomposes canonically
      out.push_back(c);
      continue;
    }
    std::array<utf8proc_int32_t, 16> buf{};
    int boundclass = 0;
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf.data(),
                                static_cast<utf8proc_ssize_t>(buf.size()), UTF8PROC_DECOMPOSE, &boundclass);
    NLPF_CHECK(n > 0 && n <= static_cast<utf8proc_ssize_t>(buf.size()), ErrorCode::INTERNAL,
               "utf8proc_decompose_char failed for U+", std::hex, static_cast<uint32_t>(c));
    for (utf8proc_ssize_t k = 0; k < n; ++k) out.push_back(static_cast<char32_t>(buf[k]));
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 1; i < out.size(); ++i) {
    const int cc = combining_class(out[i]);
    if (cc == 0) continue;
    for (size_t j = i; j > 0 && combining_class(out[j - 1]) > cc; --j) std::swap(out[j - 1], out[j]);
  }
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Decodes strictly (no overlongs, surrogates or code points above U+10FFFF), like Python's str.decode.
void decode_utf8(std::string_view text, std::vector<char32_t>& out) {
  out.resize(text.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  size_t n = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (bytes[i] < 0x80) {
      out[n++] = bytes[i++];
      continue;
    }
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t len =
        utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    NLPF_CHECK(len > 0, ErrorCode::INVALID_ARGUMENT, "tokenizer input: invalid UTF-8 at byte ", i);
    out[n++] = static_cast<char32_t>(cp);
    i += static_cast<size_t>(len);
  }
  out.resize(n);
}

// One tokenisation call: the scratch buffers are reused for every word of the text.
class Pipeline {
 public:
  Pipeline(const Vocab& vocab, const TokenizerOptions& options)
      : vocab_(vocab),
        options_(options),
        lower_(options.do_lower_case),
        strip_(options.strip_accents_set ? options.strip_accents : options.do_lower_case) {}

  // Appends the word-piece ids of `text` to `ids`; stops once `ids` holds `limit` ids or more (words are
  // independent, so a prefix of the full result is exact).
  void run(std::string_view text, size_t limit, std::vector<int32_t>& ids) {
    decode_utf8(text, text_);
    ids_ = &ids;
    limit_ = limit;
    // Added-token split on the raw text (the tokens trie of PreTrainedTokenizer.tokenize): a special
    // token glued to other text is cut out before any cleaning.
    size_t segment_start = 0;
    for (size_t i = 0; i < text_.size() && !full(); ++i) {
      if (text_[i] != U'[') continue;
      const std::optional<std::pair<size_t, int32_t>> special = match_special(i);
      if (!special) continue;
      basic_tokenize(segment_start, i);
      if (full()) break;
      ids.push_back(special->second);
      i += special->first - 1;
      segment_start = i + 1;
    }
    if (!full()) basic_tokenize(segment_start, text_.size());
  }

 private:
  bool full() const { return ids_->size() >= limit_; }

  // A special token present in the vocabulary starting at text_[i]: (length, id).
  std::optional<std::pair<size_t, int32_t>> match_special(size_t i) const {
    for (const std::string_view name : kSpecialTokens) {
      if (text_.size() - i < name.size()) continue;
      bool same = true;
      for (size_t k = 0; k < name.size() && same; ++k) same = text_[i + k] == static_cast<char32_t>(name[k]);
      if (!same) continue;
      const std::optional<int32_t> id = vocab_.find(name);
      if (id) return std::make_pair(name.size(), *id);
    }
    return std::nullopt;
  }

  // _clean_text + _tokenize_chinese_chars + whitespace split, fused: each whitespace token goes to
  // word() as soon as it ends.
  void basic_tokenize(size_t begin, size_t end) {
    raw_.clear();
    for (size_t i = begin; i < end; ++i) {
      const char32_t c = text_[i];
      if (c < 128) {
        switch (kAscii[c]) {
          case Ascii::DROP:
            break;
          case Ascii::SPACE:
            flush();
            if (full()) return;
            break;
          default:
            raw_.push_back(c);
            break;
        }
        continue;
      }
      const utf8proc_category_t cat = category(c);
      if (c == 0xFFFD || is_control_category(cat)) continue;
      // Zs becomes a space; U+2028 / U+2029 survive cleaning but Python's str.split() splits on them.
      if (cat == UTF8PROC_CATEGORY_ZS || c == 0x2028 || c == 0x2029) {
        flush();
        if (full()) return;
      } else if (options_.tokenize_chinese_chars && is_chinese_char(c)) {
        flush();
        raw_.push_back(c);
        flush();
        if (full()) return;
      } else {
        raw_.push_back(c);
      }
    }
    flush();
  }

  // One whitespace-separated token of the cleaned text (in raw_).
  void flush() {
    if (raw_.empty()) return;
    if (full()) {
      raw_.clear();
      return;
    }
    if (is_special_literal()) {
      // BasicTokenizer's never_split: neither lower-cased nor split, looked up as it is.
      word_piece(raw_.data(), raw_.size());
    } else {
      normalize();
      size_t word_start = 0;
      for (size_t i = 0; i < norm_.size(); ++i) {
        if (!is_punctuation(norm_[i])) continue;
        if (i > word_start) word_piece(norm_.data() + word_start, i - word_start);
        word_piece(norm_.data() + i, 1);
        word_start = i + 1;
      }
      if (norm_.size() > word_start) word_piece(norm_.data() + word_start, norm_.size() - word_start);
    }
    raw_.clear();
  }

  bool is_special_literal() const {
    for (const std::string_view name : kSpecialTokens) {
      if (raw_.size() == name.size() &&
          std::equal(name.begin(), name.end(), raw_.begin(),
                     [](char a, char32_t b) { return static_cast<char32_t>(a) == b; })) {
        return true;
      }
    }
    return false;
  }

  // raw_ -> norm_: NFC, then (when lower-casing) str.lower(), then (when stripping accents) NFD without Mn.
  void normalize() {
    const bool ascii = std::all_of(raw_.begin(), raw_.end(), [](char32_t c) { return c < 128; });
    if (ascii) {  // NFC and NFD are the identity on ASCII
      norm_.assign(raw_.begin(), raw_.end());
      if (lower_) {
        for (char32_t& c : norm_) {
          if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        }
      }
      return;
    }
    decompose(raw_, tmp_);
    const utf8proc_ssize_t n = utf8proc_normalize_utf32(
        reinterpret_cast<utf8proc_int32_t*>(tmp_.data()), static_cast<utf8proc_ssize_t>(tmp_.size()),
        static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
    NLPF_CHECK(n >= 0, ErrorCode::INTERNAL, "utf8proc_normalize_utf32 failed: ", utf8proc_errmsg(n));
    tmp_.resize(static_cast<size_t>(n));
    if (lower_) {
      lowered_.clear();
      for (size_t i = 0; i < tmp_.size(); ++i) {
        const char32_t c = tmp_[i];
        if (c == 0x130) {  // the one unconditional multi-character lowercase: İ -> i + U+0307
          lowered_.push_back(U'i');
          lowered_.push_back(0x307);
        } else if (c == 0x3A3) {
          lowered_.push_back(is_final_sigma(tmp_, i) ? 0x3C2 : 0x3C3);
        } else {
          lowered_.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
        }
      }
      tmp_.swap(lowered_);
    }
    if (!strip_) {
      norm_.assign(tmp_.begin(), tmp_.end());
      return;
    }
    decompose(tmp_, lowered_);
    norm_.clear();
    for (const char32_t c : lowered_) {
      if (category(c) != UTF8PROC_CATEGORY_MN) norm_.push_back(c);
    }
  }

  // Greedy longest-match-first WordPiece of one word; [UNK] for a word over the length limit or with a
  // remainder that no vocabulary entry starts.
  void word_piece(const char32_t* word, size_t n) {
    if (static_cast<int64_t>(n) > options_.max_input_chars_per_word) {
      ids_->push_back(vocab_.unk_id());
      return;
    }
    // bytes_ = "##" + word; offsets_[k] = byte offset of code point k in the word (offsets_[n] = end).
    bytes_.assign("##");
    offsets_.clear();
    for (size_t k = 0; k < n; ++k) {
      offsets_.push_back(bytes_.size() - 2);
      append_utf8(word[k], bytes_);
    }
    offsets_.push_back(bytes_.size() - 2);
    const size_t max_bytes = vocab_.max_token_bytes();
    const size_t first_id = ids_->size();
    size_t start = 0;
    while (start < n) {
      const size_t prefix = start > 0 ? 2 : 0;
      // The candidate "##" + piece begins 2 bytes before the piece; those bytes belong to the part of the
      // word already matched, so overwriting them with "##" avoids building a string per candidate.
      const size_t base = offsets_[start] + 2 - prefix;
      if (prefix > 0) bytes_[base] = bytes_[base + 1] = '#';
      size_t end = n;
      while (end > start && prefix + offsets_[end] - offsets_[start] > max_bytes) --end;
      std::optional<int32_t> id;
      for (; end > start; --end) {
        id = vocab_.find(std::string_view(bytes_).substr(base, prefix + offsets_[end] - offsets_[start]));
        if (id) break;
      }
      if (!id) {
        ids_->resize(first_id);
        ids_->push_back(vocab_.unk_id());
        return;
      }
      ids_->push_back(*id);
      start = end;
    }
  }

  const Vocab& vocab_;
  const TokenizerOptions& options_;
  const bool lower_;
  const bool strip_;
  std::vector<int32_t>* ids_ = nullptr;
  size_t limit_ = kNoLimit;
  std::vector<char32_t> text_, raw_, norm_, tmp_, lowered_;
  std::string bytes_;
  std::vector<size_t> offsets_;
};

// Reads an optional bool key of tokenizer_config.json; null counts as absent.
std::optional<bool> json_bool(const nlohmann::json& config, const char* key, const std::string& source) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  NLPF_CHECK(it->is_boolean(), ErrorCode::INVALID_ARGUMENT, source, ": \"", key,
             "\" must be true, false or null, got ", it->dump());
  return it->get<bool>();
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(Vocab vocab, TokenizerOptions options)
    : vocab_(std::move(vocab)), options_(options) {
  NLPF_CHECK(options_.max_input_chars_per_word > 0, ErrorCode::INVALID_ARGUMENT,
             "tokenizer option max_input_chars_per_word must be positive, got ",
             options_.max_input_chars_per_word);
}

WordPieceTokenizer WordPieceTokenizer::from_model_dir(const std::filesystem::path& dir) {
  Vocab vocab = Vocab::load(dir / "vocab.txt");
  TokenizerOptions options;
  const std::filesystem::path config_path = dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    const std::string source = config_path.string();
    nlohmann::json config;
    try {
      config = nlohmann::json::parse(read_file(config_path));
    } catch (const nlohmann::json::exception& e) {
      NLPF_THROW(ErrorCode::INVALID_ARGUMENT, source, ": malformed JSON: ", e.what());
    }
    NLPF_CHECK(config.is_object(), ErrorCode::INVALID_ARGUMENT, source, ": expected a JSON object");
    if (const auto v = json_bool(config, "do_lower_case", source)) options.do_lower_case = *v;
    if (const auto v = json_bool(config, "tokenize_chinese_chars", source))
      options.tokenize_chinese_chars = *v;
    if (const auto v = json_bool(config, "strip_accents", source)) {
      options.strip_accents_set = true;
      options.strip_accents = *v;
    }
    const std::optional<bool> basic = json_bool(config, "do_basic_tokenize", source);
    NLPF_CHECK(basic.value_or(true), ErrorCode::UNSUPPORTED, source,
               ": \"do_basic_tokenize\": false is not supported (WordPiece without basic tokenisation)");
  }
  return WordPieceTokenizer(std::move(vocab), options);
}

std::vector<int32_t> WordPieceTokenizer::tokenize_ids(std::string_view text) const {
  std::vector<int32_t> ids;
  Pipeline(vocab_, options_).run(text, kNoLimit, ids);
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  const std::vector<int32_t> ids = tokenize_ids(text);
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) tokens.push_back(vocab_.token(id));
  return tokens;
}

Encoding WordPieceTokenizer::encode(std::string_view text, int64_t max_length) const {
  NLPF_CHECK(max_length >= kMinLengthSingle, ErrorCode::INVALID_ARGUMENT, "max_length must be at least ",
             kMinLengthSingle, " ([CLS] and [SEP]), got ", max_length);
  Encoding out;
  const auto budget = static_cast<size_t>(max_length - 2);
  out.input_ids.reserve(std::min<size_t>(budget, text.size()) + 2);
  out.input_ids.push_back(vocab_.cls_id());
  std::vector<int32_t> body;
  Pipeline(vocab_, options_).run(text, budget, body);
  if (body.size() > budget) body.resize(budget);
  out.input_ids.insert(out.input_ids.end(), body.begin(), body.end());
  out.input_ids.push_back(vocab_.sep_id());
  out.token_type_ids.assign(out.input_ids.size(), 0);
  out.attention_mask.assign(out.input_ids.size(), 1);
  return out;
}

Encoding WordPieceTokenizer::encode_pair(std::string_view text_a, std::string_view text_b,
                                         int64_t max_length) const {
  NLPF_CHECK(max_length >= kMinLengthPair, ErrorCode::INVALID_ARGUMENT, "max_length must be at least ",
             kMinLengthPair, " for a pair ([CLS] [SEP] [SEP]), got ", max_length);
  std::vector<int32_t> a = tokenize_ids(text_a);
  std::vector<int32_t> b = tokenize_ids(text_b);
  // transformers' truncate_sequences(LONGEST_FIRST) for a pair: first even out the lengths by cutting the
  // longer one, then cut the rest half and half, the odd token from the second text; the fast (Rust)
  // tokenizer gives the odd token to the first text instead, so the two disagree there.
  const size_t total = a.size() + b.size() + 3;
  const auto max_total = static_cast<size_t>(max_length);
  if (total > max_total) {
    const size_t remove = total - max_total;
    const size_t diff = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
    const size_t first_remove = std::min(diff, remove);
    const size_t second_remove = remove - first_remove;
    size_t a_remove = 0;
    size_t b_remove = 0;
    if (a.size() > b.size()) {
      a_remove = first_remove + second_remove / 2;
      b_remove = second_remove - second_remove / 2;
    } else {
      a_remove = second_remove / 2;
      b_remove = first_remove + second_remove - second_remove / 2;
    }
    a.resize(a.size() - std::min(a_remove, a.size()));
    b.resize(b.size() - std::min(b_remove, b.size()));
  }
  Encoding out;
  out.input_ids.reserve(a.size() + b.size() + 3);
  out.input_ids.push_back(vocab_.cls_id());
  out.input_ids.insert(out.input_ids.end(), a.begin(), a.end());
  out.input_ids.push_back(vocab_.sep_id());
  out.token_type_ids.assign(out.input_ids.size(), 0);
  out.input_ids.insert(out.input_ids.end(), b.begin(), b.end());
  out.input_ids.push_back(vocab_.sep_id());
  out.token_type_ids.resize(out.input_ids.size(), 1);
  out.attention_mask.assign(out.input_ids.size(), 1);
  return out;
}

}  // namespace nlpf
