// The training loop and phase1's failure paths in process: train_log.csv rows, evaluation per epoch,
// Ctrl-C (the interrupt flag raised after a step) leaving no run directory or staging directory, and the
// refusals that must come before any work (CUDA device, non-fp32 training), and loss scaling's two columns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "experiment/phase1.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "test_util.h"
#include "text/dataset.h"
#include "text/tokenizer.h"
#include "train/interrupt.h"
#include "train/trainer.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using testing_util::TempDir;
const fs::path kTiny = fs::path(NLPF_TEST_DATA) / "checkpoint" / "tiny";
const fs::path kSample = fs::path(NLPF_TEST_DATA) / "text" / "sample.tsv";

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Trainer, LogsEveryStepAndEvaluatesEveryEpoch) {
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(kTiny);
  const Dataset data = read_dataset(kSample);
  const TokenizedDataset tokens = tokenize_dataset(data, tokenizer, 32, false);
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification model(config, 1);
  TrainerOptions options;
  options.epochs = 2;
  options.batch_size = 6;  // 20 examples: 4 steps per epoch, the last batch of 2
  options.max_length = 32;
  options.eval_batch_size = 7;
  options.optimizer.learning_rate = 1e-3;
  int epochs_seen = 0;
  options.on_epoch_end = [&](const EpochResult& e, BertForSequenceClassification&) {
    ++epochs_seen;
    EXPECT_EQ(e.steps_done, 4 * e.epoch);
  };
  const TrainResult result = train_classifier(model, tokens, tokens, options);
  EXPECT_EQ(epochs_seen, 2);
  EXPECT_EQ(result.steps, 8);
  EXPECT_EQ(result.examples, 40);
  ASSERT_EQ(result.epochs.size(), 2u);
  for (const EpochResult& e : result.epochs) {
    ASSERT_TRUE(e.accuracy.has_value());
    EXPECT_EQ(e.predictions.size(), 20u);
  }
  EXPECT_GE(result.best_epoch, 1);
  // The best epoch is the first of the highest accuracy.
  const double a1 = *result.epochs[0].accuracy, a2 = *result.epochs[1].accuracy;
  EXPECT_EQ(result.best_epoch, a2 > a1 ? 2 : 1);
  EXPECT_EQ(count_lines(result.train_log_csv), 1 + 8);
  EXPECT_EQ(result.train_log_csv.rfind("step,epoch,learning_rate,loss,grad_norm,examples_per_s\n", 0), 0u);
  // The evaluation pass agrees with a separate one on the final weights, whatever the padding.
  EXPECT_EQ(options.eval_padding, PaddingMode::BUCKETED);
  for (PaddingMode padding : {PaddingMode::BUCKETED, PaddingMode::LONGEST, PaddingMode::MAX_LENGTH}) {
    const EvaluationResult again = evaluate_classifier(model, tokens, 5, 32, padding);
    EXPECT_EQ(again.predictions, result.epochs[1].predictions) << padding_name(padding);
  }
}

TEST(Trainer, LossScalingLogsTheScaleAndTheSkippedSteps) {
  // fp16's loss scaling adds two columns to train_log.csv: the step's scale and whether it was skipped. A
  // scale that overflows f32 (2^200) skips the first steps; backing off by 2^-64 makes the third finite.
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(kTiny);
  const TokenizedDataset tokens = tokenize_dataset(read_dataset(kSample), tokenizer, 32, false);
  BertForSequenceClassification model(BertConfig::load(kTiny / "config.json"), 1);
  TrainerOptions options;
  options.epochs = 1;
  options.batch_size = 6;
  options.max_length = 32;
  options.optimizer.loss_scaling = {
      .enabled = true, .initial_scale = std::pow(2.0, 200), .backoff = std::pow(2.0, -64)};
  const TrainResult result = train_classifier(model, tokens, tokens, options);
  EXPECT_EQ(result.train_log_csv.rfind(
                "step,epoch,learning_rate,loss,grad_norm,examples_per_s,loss_scale,skipped\n", 0),
            0u);
  std::istringstream log(result.train_log_csv);
  std::string line;
  std::getline(log, line);
  std::vector<std::string> skipped;
  while (std::getline(log, line)) {
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 7) << line;
    skipped.push_back(line.substr(line.rfind(',') + 1));
  }
  ASSERT_EQ(skipped.size(), 4u);
  EXPECT_EQ(skipped[0], "1");
  EXPECT_EQ(skipped[1], "1");
  EXPECT_EQ(skipped[3], "0");
  EXPECT_EQ(result.skipped_steps, std::count(skipped.begin(), skipped.end(), "1"));
  EXPECT_EQ(result.final_loss_scale, std::pow(2.0, skipped[2] == "1" ? 8 : 72));
}

// train_log.csv without its examples_per_s column (a wall-clock rate, different at every run).
std::string without_rates(const std::string& csv) {
  std::string out, line;
  std::istringstream in(csv);
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream cells(line);
    while (std::getline(cells, field, ',')) fields.push_back(field);
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i != 5) out += fields[i] + (i + 1 < fields.size() ? "," : "");
    }
    out += '\n';
  }
  return out;
}

TEST(Trainer, CollectingEveryFewStepsLogsTheSameRows) {
  // The CUDA path queues steps and collects their results every few steps; on the CPU the same path with 3
  // steps per collection (one collection straddles the epoch's end, which collects early) logs the rows of
  // one step per collection, to the bit, loss scaling's columns included.
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(kTiny);
  const TokenizedDataset tokens = tokenize_dataset(read_dataset(kSample), tokenizer, 32, false);
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  std::vector<std::string> logs;
  std::vector<std::vector<int64_t>> seen_steps;
  for (int64_t every : {1, 3}) {
    BertForSequenceClassification model(config, 1);
    model.set_dropout(DropoutSettings::from_config(config, 1));
    TrainerOptions options;
    options.epochs = 2;
    options.batch_size = 6;  // 4 steps per epoch
    options.max_length = 32;
    options.optimizer.learning_rate = 1e-3;
    // 2^200 overflows f32: the first steps are skipped, and the scale grows after 3 updates in a row.
    options.optimizer.loss_scaling = {.enabled = true,
                                      .initial_scale = std::pow(2.0, 200),
                                      .backoff = std::pow(2.0, -64),
                                      .growth_interval = 3};
    options.collect_every_steps = every;
    seen_steps.emplace_back();
    options.on_step = [&](const StepResult& s) { seen_steps.back().push_back(s.step); };
    const TrainResult result = train_classifier(model, tokens, tokens, options);
    EXPECT_EQ(result.steps, 8);
    EXPECT_EQ(count_lines(result.train_log_csv), 1 + 8);
    logs.push_back(without_rates(result.train_log_csv));
  }
  EXPECT_EQ(logs[0], logs[1]);
  EXPECT_EQ(seen_steps[0], (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(seen_steps[1], seen_steps[0]);
}

TEST(Trainer, InterruptFlagStopsAfterTheCurrentStep) {
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(kTiny);
  const TokenizedDataset tokens = tokenize_dataset(read_dataset(kSample), tokenizer, 32, false);
  BertForSequenceClassification model(BertConfig::load(kTiny / "config.json"), 1);
  SigintGuard guard;
  TrainerOptions options;
  options.batch_size = 4;
  options.max_length = 32;
  int steps = 0;
  options.on_step = [&](const StepResult& s) {
    ++steps;
    if (s.step == 2) interrupt_flag().store(true);
  };
  try {
    train_classifier(model, tokens, tokens, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INTERRUPTED);
    EXPECT_NE(std::string(e.what()).find("interrupted by Ctrl-C after step 3"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(steps, 3);
  interrupt_flag().store(false);
}

Phase1Settings tiny_phase1(const fs::path& runs) {
  Phase1Settings s;
  s.model = kTiny.string();
  s.data.train_file = kSample.string();
  s.data.eval_file = kSample.string();
  s.max_sequence_length = 32;
  s.batch_size = 4;
  s.epochs = 2;
  s.device = "cpu";
  s.runs_dir = runs.string();
  s.protocol.trials = 2;
  s.protocol.min_trial_seconds = 0.01;
  s.protocol.idle_seconds = 0.01;
  s.protocol.warmup_min_seconds = 0.01;
  s.quiet = true;
  return s;
}

TEST(Phase1, CtrlCLeavesNoRunDirectoryAndNoStagingDirectory) {
  const TempDir temp("phase1_interrupt");
  const fs::path runs = temp.path();
  Phase1Settings s = tiny_phase1(runs);
  std::ostringstream out, log;
  s.out = &out;
  s.log = &log;
  s.on_step = [](const StepResult& step) {
    if (step.step == 1) interrupt_flag().store(true);
  };
  try {
    run_phase1(s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INTERRUPTED);
    EXPECT_NE(std::string(e.what()).find("after step 2; no run directory was completed"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fs::is_empty(runs)) << "left behind: " << fs::directory_iterator(runs)->path();
}

TEST(Phase1, InvisibleCudaDeviceRefusedBeforeAnyWork) {
  const TempDir temp("phase1_cuda");
  const fs::path runs = temp.path();
  Phase1Settings s = tiny_phase1(runs);
  s.model = "/nonexistent/model";  // never looked at: the refusal comes first
  s.device = "cuda:64";            // no machine has that many GPUs; a build without CUDA refuses any cuda
  try {
    run_phase1(s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("--device cuda:64"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(runs));
}

TEST(Phase1, NonFp32TrainingRefusedBeforeAnyWork) {
  const TempDir temp("phase1_precision");
  const fs::path runs = temp.path();
  Phase1Settings s = tiny_phase1(runs);
  s.model = "/nonexistent/model";
  // tf32, bf16 and fp16 are GPU tensor-core modes, refused on the CPU.
  for (const char* precision : {"bf16", "fp16", "tf32", "int8"}) {
    s.train_precision = precision;
    try {
      run_phase1(s);
      FAIL() << "no error for " << precision;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::UNSUPPORTED);
      EXPECT_NE(std::string(e.what()).find(std::string("--train-precision ") + precision), std::string::npos)
          << e.what();
    }
  }
  EXPECT_TRUE(fs::is_empty(runs));
}

TEST(Phase1, HalfGivenDataFilesNameTheOption) {
  const TempDir temp("phase1_files");
  const fs::path runs = temp.path();
  Phase1Settings s = tiny_phase1(runs);
  s.data.eval_file.clear();
  try {
    run_phase1(s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("--eval-file"), std::string::npos) << e.what();
  }
  s = tiny_phase1(runs);
  s.max_sequence_length = 64;  // the tiny model has 32 positions
  try {
    run_phase1(s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("--max-sequence-length 64"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
