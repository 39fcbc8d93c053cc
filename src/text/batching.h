// From a Dataset to padded batches: tokenize every example once (unpadded Encodings, truncated to
// max_length), then gather examples in a given order into (B, T) row-major int32 batches. Padding uses
// the vocabulary's [PAD] id with attention mask 0 and token type 0. Orders are vectors of example
// indices so the trainer shuffles and evaluation maps outputs back through Batch::example_index.
// Evaluation padding (DESIGN §2 --padding): max-length (the study's), longest, or bucketed (length order).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "text/dataset.h"
#include "text/tokenizer.h"

namespace nlpf {

struct TokenizedDataset {
  std::vector<Encoding> encodings;  // each of size <= max_length
  std::vector<int32_t> labels;      // kNoLabel where the split has none
  int64_t max_length = 0;           // the truncation length used
  int32_t pad_id = 0;
  // Lengths in tokens before truncation (with [CLS]/[SEP]).
  int64_t max_untruncated_length = 0;
  double mean_untruncated_length = 0.0;
  int64_t num_truncated = 0;  // examples longer than max_length
  int64_t size() const { return static_cast<int64_t>(encodings.size()); }
};

// Tokenizes every example ([CLS] a [SEP] or [CLS] a [SEP] b [SEP] when text_b is set). Progress goes to
// stderr when show_progress and stderr is a terminal. A tokenizer error is rethrown naming FILE:LINE.
TokenizedDataset tokenize_dataset(const Dataset& dataset, const WordPieceTokenizer& tokenizer,
                                  int64_t max_length, bool show_progress);

enum class PaddingMode {
  MAX_LENGTH,  // T = max_length for every batch (the reference study's behaviour)
  LONGEST,     // T = the longest example of the batch
  // T = the longest example of the batch, as LONGEST; an evaluation cuts its batches from the examples
  // sorted by length (evaluation_order), so a batch holds examples of nearly one length, and writes its
  // outputs back in file order through Batch::example_index.
  BUCKETED,
};

// The default of every measured evaluation: the least work for the same predictions (padding is masked, so
// the three modes predict alike up to float summation order; bucketed pads least).
constexpr PaddingMode kDefaultEvalPadding = PaddingMode::BUCKETED;

// "max-length", "longest", "bucketed": the --padding spellings.
std::string padding_name(PaddingMode padding);
// The spellings of padding_name, in enum order.
std::vector<std::string> padding_names();
// The inverse of padding_name. Errors: INVALID_ARGUMENT naming `option` ("--padding") and the choices.
PaddingMode parse_padding(const std::string& name, const std::string& option = "--padding");

struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> input_ids;       // (B, T)
  std::vector<int32_t> token_type_ids;  // (B, T), 0 on padding
  std::vector<int32_t> attention_mask;  // (B, T), 1 on tokens, 0 on padding
  std::vector<int32_t> labels;          // (B)
  std::vector<int64_t> example_index;   // (B): row b holds example example_index[b] of the dataset
};

// One batch of the examples `indices`. Throws Error(INVALID_ARGUMENT) for an index out of range or an
// example longer than max_length (tokenize with max_length no larger than the padding length).
Batch make_batch(const TokenizedDataset& data, std::span<const int64_t> indices, PaddingMode padding,
                 int64_t max_length);

// Consecutive groups of batch_size indices of `order` (the last may be smaller), as batches.
std::vector<Batch> make_batches(const TokenizedDataset& data, int64_t batch_size, PaddingMode padding,
                                int64_t max_length, const std::vector<int64_t>& order);

// 0, 1, ..., n-1.
std::vector<int64_t> sequential_order(int64_t n);
// A permutation of 0..n-1 that depends only on the seed (Fisher-Yates on the Philox stream, so it is the
// same on every platform and standard library).
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed);

// An order in which consecutive groups of batch_size examples have similar lengths (less padding with
// PaddingMode::LONGEST). With a seed (training): shuffle, sort by length within chunks of chunk_batches
// batches, then shuffle the full batches among themselves; a partial batch stays last so make_batches
// cuts the same groups. Without a seed (evaluation): all examples sorted by length, longest first
// (the largest batch comes first, so memory trouble shows at once), ties in index order.
std::vector<int64_t> bucketed_order(const TokenizedDataset& data, int64_t batch_size,
                                    std::optional<uint64_t> shuffle_seed, int64_t chunk_batches = 50);

// The order an evaluation pass batches the examples in: file order for MAX_LENGTH and LONGEST, the
// unseeded bucketed_order (longest first) for BUCKETED.
std::vector<int64_t> evaluation_order(const TokenizedDataset& data, int64_t batch_size, PaddingMode padding);

}  // namespace nlpf
