// GLUE SST-2 as shipped (NLPF_SHARED_DIR/data/sst2): every row of train.tsv and dev.tsv parses, with the
// exact example and label counts and the first and last sentences of each file (counted independently
// with Python's str.split on the raw files), and dev's WordPiece length statistics with the bert-base-uncased
// vocabulary (from HF BertTokenizer: max 60 tokens, 22213 in all, 215 longer than 32, 676 longer than 16).
// Skips where the shared data is absent.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <string>

#include "text/batching.h"
#include "text/dataset.h"

namespace nlpf {
namespace {

struct SplitFacts {
  const char* split;
  int64_t examples;
  std::array<int64_t, 2> label_counts;
  const char* first_text;
  const char* last_text;
};

void check_split(const SplitFacts& facts) {
  const std::filesystem::path dir = std::filesystem::path(NLPF_SHARED_DIR) / "data" / "sst2";
  const std::filesystem::path path = dir / (std::string(facts.split) + ".tsv");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent (no shared data in this checkout)";
  EXPECT_EQ(find_glue_split(dir, facts.split), path);
  const Dataset d = read_dataset(path);
  ASSERT_EQ(d.size(), facts.examples);
  std::array<int64_t, 2> counts = {0, 0};
  for (const Example& e : d.examples) {
    ASSERT_TRUE(e.label == 0 || e.label == 1) << path << ":" << e.line;
    ++counts[static_cast<size_t>(e.label)];
    EXPECT_TRUE(e.text_b.empty());
  }
  EXPECT_EQ(counts, facts.label_counts);
  EXPECT_EQ(d.examples.front().text, facts.first_text);
  EXPECT_EQ(d.examples.front().line, 2);
  EXPECT_EQ(d.examples.back().text, facts.last_text);
  EXPECT_EQ(d.examples.back().line, facts.examples + 1);  // one row per line after the header
}

TEST(Sst2Data, Train) {
  check_split(
      {"train",
       67349,
       {29780, 37569},
       "hide new secretions from the parental units",
       "this new jangle of noise , mayhem and stupidity must be a serious contender for the title ."});
}

TEST(Sst2Data, Dev) {
  check_split(
      {"dev",
       872,
       {428, 444},
       "one long string of cliches .",
       "an effectively creepy , fear-inducing -lrb- not fear-reducing -rrb- film from japanese director "
       "hideo nakata , who takes the superstitious curse on chain letters and actually applies it ."});
}

TEST(Sst2Data, DevTokenLengths) {
  const std::filesystem::path shared(NLPF_SHARED_DIR);
  const std::filesystem::path dev = shared / "data" / "sst2" / "dev.tsv";
  const std::filesystem::path model = shared / "models" / "bert-base-uncased";
  if (!std::filesystem::exists(dev) || !std::filesystem::exists(model / "vocab.txt")) {
    GTEST_SKIP() << "shared SST-2 dev or bert-base-uncased vocabulary absent";
  }
  const Dataset d = read_dataset(dev);
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(model);
  const TokenizedDataset full = tokenize_dataset(d, tokenizer, 128, /*show_progress=*/false);
  EXPECT_EQ(full.max_untruncated_length, 60);
  EXPECT_DOUBLE_EQ(full.mean_untruncated_length, 22213.0 / 872.0);
  EXPECT_EQ(full.num_truncated, 0);
  EXPECT_EQ(full.encodings[684].size(), 60);  // the longest, as HF counts it
  EXPECT_EQ(tokenize_dataset(d, tokenizer, 32, false).num_truncated, 215);
  const TokenizedDataset short16 = tokenize_dataset(d, tokenizer, 16, false);
  EXPECT_EQ(short16.num_truncated, 676);
  for (const Encoding& e : short16.encodings) {
    ASSERT_LE(e.size(), 16);
    EXPECT_EQ(e.input_ids.back(), tokenizer.vocab().sep_id());
  }
}

}  // namespace
}  // namespace nlpf
