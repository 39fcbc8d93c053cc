// Evidence that the CPU engine trains (issue "CPU engine", 7a): a 2-layer, 128-hidden BERT (2 heads,
// intermediate 512, bert-base-uncased vocabulary, 128 positions) trained from random initialisation for
// one epoch on SST-2 at max length 64 reaches >= 0.76 dev accuracy. The learning rate is 1e-3: the recipe's
// 3e-5 is for fine-tuning a pre-trained model and barely moves randomly initialised embeddings in one epoch.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "experiment/phase1.h"
#include "model/bert_config.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;

TEST(Phase1Slow, FromScratchSmallBertLearnsSst2) {
  const fs::path shared = NLPF_SHARED_DIR;
  const fs::path sst2 = shared / "data" / "sst2";
  const fs::path vocab_dir = shared / "models" / "bert-base-uncased";
  if (!fs::exists(sst2 / "train.tsv") || !fs::exists(sst2 / "dev.tsv")) {
    GTEST_SKIP() << "SST-2 absent under " << sst2;
  }
  if (!fs::exists(vocab_dir / "vocab.txt"))
    GTEST_SKIP() << "bert-base-uncased vocabulary absent under " << vocab_dir;

  const testing_util::TempDir work("phase1_slow");
  const fs::path model = work / "small_bert";
  fs::create_directories(model);
  BertConfig config;
  config.vocab_size = 30522;
  config.hidden_size = 128;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 2;
  config.intermediate_size = 512;
  config.max_position_embeddings = 128;
  { std::ofstream(model / "config.json") << config.to_json_string(); }
  fs::copy_file(vocab_dir / "vocab.txt", model / "vocab.txt");
  if (fs::exists(vocab_dir / "tokenizer_config.json")) {
    fs::copy_file(vocab_dir / "tokenizer_config.json", model / "tokenizer_config.json");
  }

  Phase1Settings s;
  s.model = model.string();
  s.init = "random";
  s.data.data_dir = sst2.string();
  s.max_sequence_length = 64;
  s.batch_size = 32;
  s.epochs = 1;
  s.learning_rate = 1e-3;
  s.device = "cpu";
  s.runs_dir = (work / "runs").string();
  s.protocol.trials = 1;
  s.protocol.min_trial_seconds = 0.1;
  s.protocol.idle_seconds = 0.1;
  s.protocol.warmup_min_seconds = 0.1;
  std::ostringstream out;
  s.out = &out;
  const Phase1Result result = run_phase1(s);
  std::cout << out.str();
  ASSERT_TRUE(result.best_accuracy.has_value());
  std::cout << "SST-2 dev accuracy after one epoch from scratch: " << *result.best_accuracy << "\n";
  EXPECT_GE(*result.best_accuracy, 0.76);
}

}  // namespace
}  // namespace nlpf
