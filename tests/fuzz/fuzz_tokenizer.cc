// libFuzzer target: arbitrary bytes through WordPieceTokenizer (tokenize, encode, encode_pair) with a small
// built-in vocabulary. nlpf::Error is an expected outcome (invalid UTF-8); any other exception, a crash or
// a sanitizer report is a finding. Invariants checked: encodings fit max_length, start with [CLS], end
// with [SEP], and have matching id / type / mask lengths.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

namespace {

const nlpf::WordPieceTokenizer& tokenizer(bool lower_case) {
  static const std::vector<std::string> kTokens = {
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",   "a", "##a", "ab", "##b", "abc", "##c", "é", "##é", "中",
      "α",     "##ς",   "##σ",   "i",     "##\u0307", ",", ".",   "!",  "$",   "the", "##s", "A", "##A"};
  static const nlpf::WordPieceTokenizer kLower(nlpf::Vocab::from_tokens(kTokens), nlpf::TokenizerOptions{});
  static const nlpf::WordPieceTokenizer kCased = [] {
    nlpf::TokenizerOptions options;
    options.do_lower_case = false;
    options.max_input_chars_per_word = 8;
    return nlpf::WordPieceTokenizer(nlpf::Vocab::from_tokens(kTokens), options);
  }();
  return lower_case ? kLower : kCased;
}

void check(const nlpf::Encoding& e, int64_t max_length, const nlpf::Vocab& vocab) {
  const bool ok = e.size() >= 2 && e.size() <= max_length && e.input_ids.front() == vocab.cls_id() &&
                  e.input_ids.back() == vocab.sep_id() && e.token_type_ids.size() == e.input_ids.size() &&
                  e.attention_mask.size() == e.input_ids.size();
  if (!ok) std::abort();
  for (const int32_t id : e.input_ids) {
    if (id < 0 || id >= vocab.size()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // First byte: options and max_length; second: where the pair is cut; the rest is text.
  const bool lower_case = (data[0] & 1) != 0;
  const int64_t max_length = 3 + (data[0] >> 1) % 40;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t cut = text.empty() ? 0 : data[1] % (text.size() + 1);
  const nlpf::WordPieceTokenizer& tok = tokenizer(lower_case);
  try {
    const std::vector<int32_t> ids = tok.tokenize_ids(text);
    const std::vector<std::string> pieces = tok.tokenize(text);
    if (pieces.size() != ids.size()) std::abort();
    const nlpf::Encoding single = tok.encode(text, max_length);
    check(single, max_length, tok.vocab());
    // Truncation keeps a prefix of the untruncated ids.
    for (int64_t i = 1; i + 1 < single.size(); ++i) {
      if (single.input_ids[static_cast<size_t>(i)] != ids[static_cast<size_t>(i - 1)]) std::abort();
    }
  } catch (const nlpf::Error&) {
  }
  try {
    check(tok.encode_pair(text.substr(0, cut), text.substr(cut), max_length), max_length, tok.vocab());
  } catch (const nlpf::Error&) {
  }
  return 0;
}
