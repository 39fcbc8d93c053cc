// Batching: tokenize_dataset against the tokenizer's own encode/encode_pair, padded (B, T) batches from
// hand-made encodings, example orders (sequential, shuffled, length-bucketed), and the progress line.
#include "text/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/progress.h"

namespace nlpf {
namespace {

// [PAD] is deliberately not id 0, so padding with a hard-coded 0 would show.
WordPieceTokenizer small_tokenizer() {
  Vocab vocab = Vocab::from_tokens({"the", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "cat", "sat", "on", "mat",
                                    "##s", ".", "a", "dog", "run", "##ning", ","});
  return WordPieceTokenizer(std::move(vocab), TokenizerOptions{});
}

Dataset make_dataset(std::vector<std::pair<std::string, int32_t>> rows) {
  Dataset d;
  d.path = "mem.tsv";
  int64_t line = 2;
  for (auto& [text, label] : rows) d.examples.push_back(Example{text, "", label, line++});
  return d;
}

// Encoding of n tokens with ids 100, 101, ... between [CLS]=3 and [SEP]=4; type 1 after the first half to
// check that types are carried.
Encoding synthetic_encoding(int64_t n) {
  Encoding e;
  for (int64_t i = 0; i < n; ++i) {
    e.input_ids.push_back(i == 0 ? 3 : i == n - 1 ? 4 : static_cast<int32_t>(100 + i));
    e.token_type_ids.push_back(i >= n / 2 ? 1 : 0);
    e.attention_mask.push_back(1);
  }
  return e;
}

TokenizedDataset synthetic_dataset(const std::vector<int64_t>& lengths, int64_t max_length) {
  TokenizedDataset data;
  data.max_length = max_length;
  data.pad_id = 7;
  for (size_t i = 0; i < lengths.size(); ++i) {
    data.encodings.push_back(synthetic_encoding(lengths[i]));
    data.labels.push_back(static_cast<int32_t>(i % 2));
  }
  return data;
}

bool is_permutation_of_indices(const std::vector<int64_t>& order, int64_t n) {
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> expected(static_cast<size_t>(n));
  std::iota(expected.begin(), expected.end(), int64_t{0});
  return sorted == expected;
}

// Padding cells of the batches cut from `order` when each is padded to its longest example.
int64_t padding_cells(const TokenizedDataset& data, const std::vector<int64_t>& order, int64_t batch_size) {
  int64_t cells = 0;
  for (const Batch& b : make_batches(data, batch_size, PaddingMode::LONGEST, data.max_length, order)) {
    cells += std::count(b.attention_mask.begin(), b.attention_mask.end(), 0);
  }
  return cells;
}

void expect_same_encoding(const Encoding& got, const Encoding& want) {
  EXPECT_EQ(got.input_ids, want.input_ids);
  EXPECT_EQ(got.token_type_ids, want.token_type_ids);
  EXPECT_EQ(got.attention_mask, want.attention_mask);
}

// ---- tokenize_dataset ----

TEST(TokenizeDataset, MatchesEncodeAtEveryLengthAndCountsTruncation) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  const Dataset d =
      make_dataset({{"the cat sat on the mat .", 1}, {"a dog", 0}, {"cats running , birds", 1}});
  for (int64_t max_length : {2, 3, 4, 5, 9, 128}) {
    SCOPED_TRACE(max_length);
    const TokenizedDataset t = tokenize_dataset(d, tokenizer, max_length, /*show_progress=*/false);
    ASSERT_EQ(t.size(), 3);
    EXPECT_EQ(t.labels, (std::vector<int32_t>{1, 0, 1}));
    EXPECT_EQ(t.pad_id, 1);
    EXPECT_EQ(t.max_length, max_length);
    for (size_t i = 0; i < d.examples.size(); ++i) {
      expect_same_encoding(t.encodings[i], tokenizer.encode(d.examples[i].text, max_length));
      EXPECT_LE(t.encodings[i].size(), max_length);
    }
    // Untruncated lengths: 7+2, 2+2, and cat ##s run ##ning , [UNK] ("birds") 6+2.
    EXPECT_EQ(t.max_untruncated_length, 9);
    EXPECT_DOUBLE_EQ(t.mean_untruncated_length, (9.0 + 4.0 + 8.0) / 3.0);
    const int64_t truncated = (9 > max_length) + (4 > max_length) + (8 > max_length);
    EXPECT_EQ(t.num_truncated, truncated);
  }
}

TEST(TokenizeDataset, PairsGoThroughEncodePair) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  Dataset d;
  d.path = "pairs.tsv";
  d.has_text_b = true;
  d.examples.push_back(Example{"the cat sat", "on the mat .", 1, 2});
  d.examples.push_back(Example{"a dog", "", 0, 3});  // an empty second sentence still gets its [SEP]
  for (int64_t max_length : {4, 6, 64}) {
    SCOPED_TRACE(max_length);
    const TokenizedDataset t = tokenize_dataset(d, tokenizer, max_length, /*show_progress=*/false);
    for (size_t i = 0; i < d.examples.size(); ++i) {
      expect_same_encoding(t.encodings[i],
                           tokenizer.encode_pair(d.examples[i].text, d.examples[i].text_b, max_length));
    }
    EXPECT_EQ(t.max_untruncated_length, 3 + 3 + 4);
    EXPECT_EQ(t.num_truncated, (10 > max_length) + (5 > max_length));
  }
}

TEST(TokenizeDataset, ErrorsNameFileAndLine) {
  const WordPieceTokenizer tokenizer = small_tokenizer();
  const Dataset d = make_dataset({{"the cat", 0}, {"bad \xFF utf8", 1}});
  try {
    tokenize_dataset(d, tokenizer, 16, false);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("mem.tsv:3:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tokenize_dataset(d, tokenizer, 1, false), Error);
}

// ---- make_batch / make_batches ----

TEST(MakeBatch, PadsWithPadIdMaskZeroTypeZero) {
  const TokenizedDataset data = synthetic_dataset({4, 2, 6}, 8);
  const std::vector<int64_t> indices = {2, 1};
  for (PaddingMode mode : {PaddingMode::LONGEST, PaddingMode::MAX_LENGTH, PaddingMode::BUCKETED}) {
    const Batch b = make_batch(data, indices, mode, 8);
    const int64_t T = mode == PaddingMode::MAX_LENGTH ? 8 : 6;  // bucketed pads to the longest, as longest
    ASSERT_EQ(b.B, 2);
    ASSERT_EQ(b.T, T);
    ASSERT_EQ(b.input_ids.size(), static_cast<size_t>(2 * T));
    EXPECT_EQ(b.labels, (std::vector<int32_t>{0, 1}));
    EXPECT_EQ(b.example_index, indices);
    for (int64_t row = 0; row < 2; ++row) {
      const Encoding& e = data.encodings[static_cast<size_t>(indices[static_cast<size_t>(row)])];
      for (int64_t t = 0; t < T; ++t) {
        const size_t cell = static_cast<size_t>(row * T + t);
        if (t < e.size()) {
          EXPECT_EQ(b.input_ids[cell], e.input_ids[static_cast<size_t>(t)]);
          EXPECT_EQ(b.token_type_ids[cell], e.token_type_ids[static_cast<size_t>(t)]);
          EXPECT_EQ(b.attention_mask[cell], 1);
        } else {
          EXPECT_EQ(b.input_ids[cell], 7) << "row " << row << " t " << t;
          EXPECT_EQ(b.token_type_ids[cell], 0);
          EXPECT_EQ(b.attention_mask[cell], 0);
        }
      }
    }
  }
}

TEST(MakeBatch, RejectsBadIndicesAndTooLongExamples) {
  const TokenizedDataset data = synthetic_dataset({4, 9}, 16);
  const std::vector<int64_t> bad_index = {0, 2};
  EXPECT_THROW(make_batch(data, bad_index, PaddingMode::LONGEST, 16), Error);
  const std::vector<int64_t> negative = {-1};
  EXPECT_THROW(make_batch(data, negative, PaddingMode::LONGEST, 16), Error);
  const std::vector<int64_t> both = {0, 1};
  try {
    make_batch(data, both, PaddingMode::MAX_LENGTH, 8);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("example 1 has 9 tokens"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_batch(data, std::vector<int64_t>{}, PaddingMode::LONGEST, 16), Error);
  EXPECT_THROW(make_batches(data, 0, PaddingMode::LONGEST, 16, both), Error);
}

TEST(MakeBatches, CutsOrderIntoGroupsWithASmallerLastOne) {
  const TokenizedDataset data = synthetic_dataset({3, 4, 5, 6, 7, 8, 9}, 9);
  const std::vector<int64_t> order = {6, 5, 4, 3, 2, 1, 0};
  const std::vector<Batch> batches = make_batches(data, 3, PaddingMode::LONGEST, 9, order);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].example_index, (std::vector<int64_t>{6, 5, 4}));
  EXPECT_EQ(batches[0].T, 9);
  EXPECT_EQ(batches[1].T, 6);
  EXPECT_EQ(batches[2].B, 1);
  EXPECT_EQ(batches[2].T, 3);
  EXPECT_EQ(batches[2].example_index, (std::vector<int64_t>{0}));
  EXPECT_TRUE(make_batches(data, 4, PaddingMode::LONGEST, 9, {}).empty());
}

// ---- orders ----

TEST(Orders, ShuffledIsADeterministicPermutation) {
  EXPECT_EQ(sequential_order(4), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_TRUE(sequential_order(0).empty());
  const std::vector<int64_t> a = shuffled_order(1000, 42);
  EXPECT_TRUE(is_permutation_of_indices(a, 1000));
  EXPECT_EQ(a, shuffled_order(1000, 42));
  EXPECT_NE(a, shuffled_order(1000, 43));
  EXPECT_NE(a, sequential_order(1000));
  EXPECT_TRUE(shuffled_order(1, 5) == sequential_order(1));
}

TEST(Orders, BucketedForEvaluationSortsLongestFirst) {
  const TokenizedDataset data = synthetic_dataset({5, 9, 3, 9, 7, 5}, 9);
  const std::vector<int64_t> order = bucketed_order(data, 2, std::nullopt);
  EXPECT_EQ(order, (std::vector<int64_t>{1, 3, 4, 0, 5, 2}));
}

TEST(Orders, EvaluationOrderIsFileOrderUnlessBucketed) {
  const TokenizedDataset data = synthetic_dataset({5, 9, 3, 9, 7, 5}, 9);
  EXPECT_EQ(evaluation_order(data, 2, PaddingMode::MAX_LENGTH), sequential_order(6));
  EXPECT_EQ(evaluation_order(data, 2, PaddingMode::LONGEST), sequential_order(6));
  EXPECT_EQ(evaluation_order(data, 2, PaddingMode::BUCKETED), (std::vector<int64_t>{1, 3, 4, 0, 5, 2}));
  // Bucketed batches carry the least padding of the three: (9,9) (7,5) (5,3) against (5,9) (3,9) (7,5).
  const auto cells = [&](PaddingMode mode) {
    int64_t padding = 0;
    for (const Batch& b : make_batches(data, 2, mode, 9, evaluation_order(data, 2, mode))) {
      padding += std::count(b.attention_mask.begin(), b.attention_mask.end(), 0);
    }
    return padding;
  };
  EXPECT_EQ(cells(PaddingMode::BUCKETED), 0 + 2 + 2);
  EXPECT_EQ(cells(PaddingMode::LONGEST), 4 + 6 + 2);
  EXPECT_EQ(cells(PaddingMode::MAX_LENGTH), 6 * 9 - (5 + 9 + 3 + 9 + 7 + 5));
}

TEST(Orders, PaddingNamesRoundTripAndUnknownNamesAreRefused) {
  EXPECT_EQ(padding_names(), (std::vector<std::string>{"max-length", "longest", "bucketed"}));
  for (const std::string& name : padding_names()) EXPECT_EQ(padding_name(parse_padding(name)), name);
  EXPECT_EQ(kDefaultEvalPadding, PaddingMode::BUCKETED);
  try {
    parse_padding("max_length", "--paddings");
    FAIL() << "an unknown padding was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("--paddings max_length"), std::string::npos) << e.what();
  }
}

TEST(Orders, BucketedForTrainingShufflesBatchesAndCutsPadding) {
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < 1003; ++i) lengths.push_back(2 + (i * 37) % 61);  // lengths 2..62, mixed
  const TokenizedDataset data = synthetic_dataset(lengths, 64);
  const int64_t batch_size = 8;
  const std::vector<int64_t> order = bucketed_order(data, batch_size, uint64_t{7}, /*chunk_batches=*/10);
  EXPECT_TRUE(is_permutation_of_indices(order, data.size()));
  EXPECT_EQ(order, bucketed_order(data, batch_size, uint64_t{7}, 10));
  EXPECT_NE(order, bucketed_order(data, batch_size, uint64_t{8}, 10));
  // Far less padding than a plain shuffle, and more than the fully sorted evaluation order.
  const int64_t bucketed = padding_cells(data, order, batch_size);
  const int64_t shuffled = padding_cells(data, shuffled_order(data.size(), 7), batch_size);
  const int64_t sorted = padding_cells(data, bucketed_order(data, batch_size, std::nullopt), batch_size);
  EXPECT_LT(bucketed * 3, shuffled);
  EXPECT_GE(bucketed, sorted);
  // 1003 = 125 * 8 + 3: the partial batch stays last, so make_batches cuts the same groups.
  const std::vector<Batch> batches = make_batches(data, batch_size, PaddingMode::LONGEST, 64, order);
  ASSERT_EQ(batches.size(), 126u);
  EXPECT_EQ(batches.back().B, 3);
  // Batches are not in length order (they were shuffled after bucketing).
  std::vector<int64_t> widths;
  for (const Batch& b : batches) widths.push_back(b.T);
  EXPECT_FALSE(std::is_sorted(widths.begin(), widths.end(), std::greater<>()));
  EXPECT_THROW(bucketed_order(data, 0, std::nullopt), Error);
  EXPECT_THROW(bucketed_order(data, 8, uint64_t{1}, 0), Error);
}

// ---- progress ----

TEST(Progress, FormatsRateAndEta) {
  EXPECT_EQ(Progress::format_duration(0), "0:00");
  EXPECT_EQ(Progress::format_duration(75.4), "1:15");
  EXPECT_EQ(Progress::format_duration(3600 + 62), "1:01:02");
  EXPECT_EQ(Progress::format_line("tok", 500, 1000, 2.0, "ex"), "tok 500/1000 (50.0%) 250 ex/s ETA 0:02");
  EXPECT_EQ(Progress::format_line("tok", 3, 0, 2.0, "steps"), "tok 3 1.5 steps/s");
  EXPECT_EQ(Progress::format_line("tok", 0, 10, 0.0, "ex"), "tok 0/10 (0.0%)");
  EXPECT_EQ(Progress::format_line("tok", 10, 10, 1.0, "ex", /*with_eta=*/false),
            "tok 10/10 (100.0%) 10.0 ex/s");
}

TEST(Progress, CountsEvenWhenNotDrawing) {
  Progress p("x", 10, /*enabled=*/false);
  EXPECT_FALSE(p.enabled());
  p.update(3);
  p.update();
  EXPECT_EQ(p.done(), 4);
  p.finish();
  p.finish();
}

}  // namespace
}  // namespace nlpf
