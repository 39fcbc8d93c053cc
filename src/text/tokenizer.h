// WordPiece tokenizer equal to Hugging Face BertTokenizer: basic tokenisation (clean text, CJK split,
// lower-case + accent strip when do_lower_case, punctuation split), greedy longest-match WordPiece with
// "##", [CLS] ... [SEP], truncation (longest-first for pairs). Unicode through utf8proc.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "text/vocab.h"

namespace nlpf {

// One encoded example, unpadded: size() <= max_length. Batching pads.
struct Encoding {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> token_type_ids;
  std::vector<int32_t> attention_mask;  // all 1 here; 0 only where batching pads
  int64_t size() const { return static_cast<int64_t>(input_ids.size()); }
};

struct TokenizerOptions {
  bool do_lower_case = true;
  bool tokenize_chinese_chars = true;
  bool strip_accents_set = false;  // when false, accents are stripped iff do_lower_case (HF's default)
  bool strip_accents = false;
  int64_t max_input_chars_per_word = 100;
};

class WordPieceTokenizer {
 public:
  WordPieceTokenizer(Vocab vocab, TokenizerOptions options);
  // Reads DIR/vocab.txt and DIR/tokenizer_config.json (do_lower_case, strip_accents,
  // tokenize_chinese_chars; a missing tokenizer_config.json means HF's defaults).
  static WordPieceTokenizer from_model_dir(const std::filesystem::path& dir);

  const Vocab& vocab() const { return vocab_; }
  const TokenizerOptions& options() const { return options_; }

  // Throws Error(INVALID_ARGUMENT) for invalid UTF-8 (Python strings cannot hold it, so HF never sees it).
  // As in HF, "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]" written in the text are single special tokens.
  std::vector<std::string> tokenize(std::string_view text) const;  // word pieces, no added specials
  std::vector<int32_t> tokenize_ids(std::string_view text) const;
  // [CLS] a [SEP], truncated to max_length (>= 2) tokens in all.
  Encoding encode(std::string_view text, int64_t max_length) const;
  // [CLS] a [SEP] b [SEP] with the slow tokenizer's longest-first truncation to max_length (>= 3) tokens;
  // token_type_ids 0 for [CLS] a [SEP], 1 for b [SEP].
  Encoding encode_pair(std::string_view text_a, std::string_view text_b, int64_t max_length) const;

 private:
  Vocab vocab_;
  TokenizerOptions options_;
};

}  // namespace nlpf
