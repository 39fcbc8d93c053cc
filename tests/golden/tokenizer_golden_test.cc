// Token ids of nlpf's WordPiece against transformers' slow BertTokenizer on every SST-2 dev sentence (at
// max_length 128 and 16) and on the hand-made hard cases. Goldens: tests/data/tokenizer/*, written by
// tools/dump_tokenizer_goldens.py; the vocabulary comes from NLPF_SHARED_DIR (skipped when absent).
// A mismatch prints the text, both id lists and the first differing index; every row is checked.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;

const fs::path kModelDir = fs::path(NLPF_SHARED_DIR) / "models" / "bert-base-uncased";
const fs::path kGoldenDir = fs::path(NLPF_TEST_DATA) / "tokenizer";
constexpr size_t kDevRows = 872;

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

std::string join(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? ", " : "") << ids[i];
  out << ']';
  return out.str();
}

// Empty when equal; otherwise a report naming the case and the first differing index.
std::string compare(const std::string& what, const std::vector<int32_t>& want,
                    const std::vector<int32_t>& got) {
  if (want == got) return {};
  size_t first = 0;
  while (first < want.size() && first < got.size() && want[first] == got[first]) ++first;
  std::ostringstream out;
  out << what << "\n  want " << join(want) << "\n  got  " << join(got) << "\n  first difference at index "
      << first << '\n';
  return out.str();
}

class TokenizerGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kModelDir / "vocab.txt")) GTEST_SKIP() << "no vocabulary at " << kModelDir;
    tokenizer_ = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_model_dir(kModelDir));
  }
  std::unique_ptr<WordPieceTokenizer> tokenizer_;
};

TEST_F(TokenizerGoldenTest, Sst2DevSentencesMatchAt128And16) {
  const std::vector<nlohmann::json> rows = read_jsonl(kGoldenDir / "sst2_dev_goldens.jsonl");
  ASSERT_EQ(rows.size(), kDevRows) << "sst2_dev_goldens.jsonl must hold every SST-2 dev sentence";
  size_t mismatches = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string text = rows[i].at("text").get<std::string>();
    for (const int64_t max_length : {128, 16}) {
      const auto want = rows[i].at("ids_" + std::to_string(max_length)).get<std::vector<int32_t>>();
      const Encoding got = tokenizer_->encode(text, max_length);
      const std::string report =
          compare("dev row " + std::to_string(i) + " max_length " + std::to_string(max_length) + ": " + text,
                  want, got.input_ids);
      if (!report.empty()) {
        ++mismatches;
        ADD_FAILURE() << report;
      }
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << 2 * rows.size() << " dev encodings";
}

TEST_F(TokenizerGoldenTest, HardCasesMatch) {
  const std::vector<nlohmann::json> rows = read_jsonl(kGoldenDir / "hard_case_goldens.jsonl");
  ASSERT_GE(rows.size(), 70u);
  size_t mismatches = 0;
  for (const nlohmann::json& row : rows) {
    const std::string id = row.at("id").get<std::string>();
    const std::string text = row.at("text").get<std::string>();
    const int64_t max_length = row.at("max_length").get<int64_t>();
    const Encoding got = row.contains("text_b")
                             ? tokenizer_->encode_pair(text, row.at("text_b").get<std::string>(), max_length)
                             : tokenizer_->encode(text, max_length);
    const std::string what = "hard case " + id + " (max_length " + std::to_string(max_length) +
                             "): " + row.at("text").dump() +
                             (row.contains("text_b") ? " / " + row.at("text_b").dump() : "");
    std::string report =
        compare(what + " input_ids", row.at("input_ids").get<std::vector<int32_t>>(), got.input_ids);
    report += compare(what + " token_type_ids", row.at("token_type_ids").get<std::vector<int32_t>>(),
                      got.token_type_ids);
    EXPECT_EQ(got.attention_mask, std::vector<int32_t>(got.input_ids.size(), 1)) << what;
    if (!report.empty()) {
      ++mismatches;
      ADD_FAILURE() << report;
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << rows.size() << " hard cases";
}

}  // namespace
}  // namespace nlpf
