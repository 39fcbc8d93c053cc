// Tokenization of whole datasets and padded batch assembly; orders (sequential, shuffled, length-bucketed)
// are index vectors drawn from the Philox stream so they are identical on every platform.
#include "text/batching.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/random.h"
#include "text/progress.h"

namespace nlpf {
namespace {

// Philox subsequences keep the two kinds of shuffle apart for one seed.
constexpr uint64_t kExampleShuffleStream = 0x5348'5546;  // "SHUF"
constexpr uint64_t kBatchShuffleStream = 0x4241'5443;    // "BATC"

// Fisher-Yates over `items` with uniform draws j in [0, i] from Philox block i of (seed, stream); the
// multiply-shift maps 64 random bits to [0, i] with bias below 2^-40 for any realistic size.
template <typename T>
void philox_shuffle(std::vector<T>& items, uint64_t seed, uint64_t stream) {
  for (size_t i = items.size(); i > 1; --i) {
    const PhiloxCounter r = philox_block(seed, i, stream);
    const uint64_t bits = (uint64_t{r[0]} << 32) | r[1];
    const auto j = static_cast<size_t>((static_cast<unsigned __int128>(bits) * i) >> 64);
    std::swap(items[i - 1], items[j]);
  }
}

// [CLS] ids[:max_length-2] [SEP], types 0: what encode(text, max_length) gives (batching_test checks
// it), built from the word-piece ids that were needed anyway to measure the untruncated length.
Encoding single_encoding(const std::vector<int32_t>& ids, int64_t max_length, const Vocab& vocab) {
  const size_t kept = std::min(ids.size(), static_cast<size_t>(max_length - 2));
  Encoding e;
  e.input_ids.reserve(kept + 2);
  e.input_ids.push_back(vocab.cls_id());
  e.input_ids.insert(e.input_ids.end(), ids.begin(), ids.begin() + static_cast<ptrdiff_t>(kept));
  e.input_ids.push_back(vocab.sep_id());
  e.token_type_ids.assign(e.input_ids.size(), 0);
  e.attention_mask.assign(e.input_ids.size(), 1);
  return e;
}

}  // namespace

TokenizedDataset tokenize_dataset(const Dataset& dataset, const WordPieceTokenizer& tokenizer,
                                  int64_t max_length, bool show_progress) {
  NLPF_CHECK(max_length >= 2, ErrorCode::INVALID_ARGUMENT,
             "max sequence length must be at least 2 ([CLS] and [SEP]), got ", max_length);
  TokenizedDataset out;
  out.max_length = max_length;
  out.pad_id = tokenizer.vocab().pad_id();
  out.encodings.reserve(dataset.examples.size());
  out.labels.reserve(dataset.examples.size());
  Progress progress("tokenizing " + std::filesystem::path(dataset.path).filename().string(), dataset.size(),
                    show_progress);
  double total_length = 0;
  for (const Example& example : dataset.examples) {
    try {
      // Pairs go through encode_pair for its longest-first truncation; singles are cut here.
      const bool pair = dataset.has_text_b;
      const std::vector<int32_t> ids = tokenizer.tokenize_ids(example.text);
      const int64_t length =
          static_cast<int64_t>(ids.size()) + 2 +
          (pair ? static_cast<int64_t>(tokenizer.tokenize_ids(example.text_b).size()) + 1 : 0);
      total_length += static_cast<double>(length);
      out.max_untruncated_length = std::max(out.max_untruncated_length, length);
      out.num_truncated += length > max_length;
      out.encodings.push_back(pair ? tokenizer.encode_pair(example.text, example.text_b, max_length)
                                   : single_encoding(ids, max_length, tokenizer.vocab()));
    } catch (const Error& e) {
      NLPF_THROW(e.code(), dataset.path, ":", example.line, ": ", e.what());
    }
    out.labels.push_back(example.label);
    progress.update();
  }
  progress.finish();
  if (!dataset.examples.empty())
    out.mean_untruncated_length = total_length / static_cast<double>(dataset.size());
  return out;
}

std::string padding_name(PaddingMode padding) {
  switch (padding) {
    case PaddingMode::MAX_LENGTH:
      return "max-length";
    case PaddingMode::LONGEST:
      return "longest";
    case PaddingMode::BUCKETED:
      return "bucketed";
  }
  NLPF_THROW(ErrorCode::INTERNAL, "unknown padding mode ", static_cast<int>(padding));
}

std::vector<std::string> padding_names() {
  return {padding_name(PaddingMode::MAX_LENGTH), padding_name(PaddingMode::LONGEST),
          padding_name(PaddingMode::BUCKETED)};
}

PaddingMode parse_padding(const std::string& name, const std::string& option) {
  for (PaddingMode mode : {PaddingMode::MAX_LENGTH, PaddingMode::LONGEST, PaddingMode::BUCKETED}) {
    if (name == padding_name(mode)) return mode;
  }
  NLPF_THROW(ErrorCode::INVALID_ARGUMENT, option, " ", name, ": expected max-length, longest or bucketed");
}

Batch make_batch(const TokenizedDataset& data, std::span<const int64_t> indices, PaddingMode padding,
                 int64_t max_length) {
  NLPF_CHECK(!indices.empty(), ErrorCode::INVALID_ARGUMENT, "a batch needs at least one example");
  NLPF_CHECK(max_length >= 1, ErrorCode::INVALID_ARGUMENT, "max sequence length must be positive, got ",
             max_length);
  Batch batch;
  batch.B = static_cast<int64_t>(indices.size());
  int64_t longest = 0;
  for (int64_t index : indices) {
    NLPF_CHECK(index >= 0 && index < data.size(), ErrorCode::INVALID_ARGUMENT, "example index ", index,
               " out of range [0, ", data.size(), ")");
    const int64_t length = data.encodings[static_cast<size_t>(index)].size();
    NLPF_CHECK(length <= max_length, ErrorCode::INVALID_ARGUMENT, "example ", index, " has ", length,
               " tokens, more than max sequence length ", max_length, " (it was tokenized with max length ",
               data.max_length, "; tokenize again with the smaller length)");
    longest = std::max(longest, length);
  }
  batch.T = padding == PaddingMode::MAX_LENGTH ? max_length : longest;
  const auto cells = static_cast<size_t>(batch.B * batch.T);
  batch.input_ids.assign(cells, data.pad_id);
  batch.token_type_ids.assign(cells, 0);
  batch.attention_mask.assign(cells, 0);
  batch.labels.reserve(indices.size());
  batch.example_index.assign(indices.begin(), indices.end());
  for (size_t b = 0; b < indices.size(); ++b) {
    const Encoding& e = data.encodings[static_cast<size_t>(indices[b])];
    const size_t row = b * static_cast<size_t>(batch.T);
    std::copy(e.input_ids.begin(), e.input_ids.end(), batch.input_ids.begin() + static_cast<ptrdiff_t>(row));
    std::copy(e.token_type_ids.begin(), e.token_type_ids.end(),
              batch.token_type_ids.begin() + static_cast<ptrdiff_t>(row));
    std::copy(e.attention_mask.begin(), e.attention_mask.end(),
              batch.attention_mask.begin() + static_cast<ptrdiff_t>(row));
    batch.labels.push_back(data.labels[static_cast<size_t>(indices[b])]);
  }
  return batch;
}

std::vector<Batch> make_batches(const TokenizedDataset& data, int64_t batch_size, PaddingMode padding,
                                int64_t max_length, const std::vector<int64_t>& order) {
  NLPF_CHECK(batch_size >= 1, ErrorCode::INVALID_ARGUMENT, "batch size must be positive, got ", batch_size);
  std::vector<Batch> batches;
  batches.reserve((order.size() + static_cast<size_t>(batch_size) - 1) / static_cast<size_t>(batch_size));
  const std::span<const int64_t> all(order);
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    const size_t count = std::min(static_cast<size_t>(batch_size), order.size() - start);
    batches.push_back(make_batch(data, all.subspan(start, count), padding, max_length));
  }
  return batches;
}

std::vector<int64_t> sequential_order(int64_t n) {
  NLPF_CHECK(n >= 0, ErrorCode::INVALID_ARGUMENT, "example count must not be negative, got ", n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  return order;
}

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed) {
  std::vector<int64_t> order = sequential_order(n);
  philox_shuffle(order, seed, kExampleShuffleStream);
  return order;
}

std::vector<int64_t> bucketed_order(const TokenizedDataset& data, int64_t batch_size,
                                    std::optional<uint64_t> shuffle_seed, int64_t chunk_batches) {
  NLPF_CHECK(batch_size >= 1, ErrorCode::INVALID_ARGUMENT, "batch size must be positive, got ", batch_size);
  NLPF_CHECK(chunk_batches >= 1, ErrorCode::INVALID_ARGUMENT,
             "bucketing chunk must hold at least one batch, got ", chunk_batches);
  const auto longer = [&data](int64_t a, int64_t b) {
    return data.encodings[static_cast<size_t>(a)].size() > data.encodings[static_cast<size_t>(b)].size();
  };
  if (!shuffle_seed) {
    std::vector<int64_t> order = sequential_order(data.size());
    std::stable_sort(order.begin(), order.end(), longer);
    return order;
  }
  std::vector<int64_t> order = shuffled_order(data.size(), *shuffle_seed);
  const auto size = static_cast<size_t>(batch_size);
  const size_t chunk =
      size * static_cast<size_t>(std::min<int64_t>(chunk_batches, std::numeric_limits<int32_t>::max()));
  for (size_t start = 0; start < order.size(); start += chunk) {
    const auto first = order.begin() + static_cast<ptrdiff_t>(start);
    const auto last = order.begin() + static_cast<ptrdiff_t>(std::min(order.size(), start + chunk));
    std::stable_sort(first, last, longer);
  }
  // Shuffle whole batches; the partial one (if any) keeps the last place.
  const size_t full_batches = order.size() / size;
  std::vector<size_t> batch_order(full_batches);
  std::iota(batch_order.begin(), batch_order.end(), size_t{0});
  philox_shuffle(batch_order, *shuffle_seed, kBatchShuffleStream);
  std::vector<int64_t> out;
  out.reserve(order.size());
  for (size_t b : batch_order) {
    out.insert(out.end(), order.begin() + static_cast<ptrdiff_t>(b * size),
               order.begin() + static_cast<ptrdiff_t>((b + 1) * size));
  }
  out.insert(out.end(), order.begin() + static_cast<ptrdiff_t>(full_batches * size), order.end());
  return out;
}

std::vector<int64_t> evaluation_order(const TokenizedDataset& data, int64_t batch_size, PaddingMode padding) {
  if (padding == PaddingMode::BUCKETED) return bucketed_order(data, batch_size, std::nullopt);
  return sequential_order(data.size());
}

}  // namespace nlpf
