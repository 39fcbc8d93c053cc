// The nlpf command line: exit codes, one-line errors, aliases, --help and --version (runs the binary).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_util.h"

namespace {

using nlpf::testing_util::run_nlpf;
using Result = nlpf::testing_util::CommandResult;

int count_lines(const std::string& s) {
  int lines = 0;
  for (char c : s) lines += c == '\n';
  return lines;
}

TEST(Cli, VersionNamesCommit) {
  Result r = run_nlpf("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("commit"), std::string::npos) << r.output;
}

TEST(Cli, HelpForEverySubcommand) {
  for (const char* sub : {"phase1",
                          "run_phase_1",
                          "phase2",
                          "phase2 max-sequence-length",
                          "phase2 layers",
                          "phase2 precision",
                          "phase2 padding",
                          "phase2 batch-size",
                          "phase2 batch_size",
                          "phase2 grid",
                          "run_phase_2_max_sequence_length",
                          "run_phase_2_layers",
                          "run_phase_2_precision",
                          "run_phase_2_padding",
                          "run_phase_2_batch_size",
                          "frontier",
                          "plot",
                          "fetch",
                          "fetch model",
                          "fetch dataset",
                          "demo",
                          "inspect"}) {
    Result r = run_nlpf(std::string(sub) + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub << ": " << r.output;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << sub;
  }
}

TEST(Cli, UnknownOptionIsOneLineExitTwo) {
  Result r = run_nlpf("phase1 --no-such-option 3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--no-such-option"), std::string::npos) << r.output;
}

TEST(Cli, BadValueNamesOption) {
  for (const char* args :
       {"phase1 --batch-size zero", "phase1 --device gpu7", "phase1 --train-precision fp8",
        "phase2 precision --baseline-model-directory x --precisions fp4",
        "run_phase_2_layers --baseline_model_directory x --num_layers 0", "phase1 --padding fast",
        "phase2 layers --baseline-model-directory x --padding max_length",
        "phase2 padding --baseline-model-directory x --paddings longest fast",
        "phase2 batch-size --baseline-model-directory x --batch-sizes 8 0",
        "phase2 grid --baseline-model-directory x --batch-sizes 0",
        "phase2 grid --baseline-model-directory x --eval-batch-sizes -4",
        "phase2 precision --baseline-model-directory x --calibration-batches 0",
        "phase2 grid --baseline-model-directory x --precisions fp8 --calibration_batches two",
        "phase2 precision --baseline-model-directory x --precisions fp8 --fp8-weight-scales row"}) {
    Result r = run_nlpf(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 1) << args << ": " << r.output;
  }
}

TEST(Cli, UnderscoreSpellingsAccepted) {
  // Parsing succeeds (not exit 2); the baseline 'm' does not exist, so the command fails later (IO, 5).
  Result r = run_nlpf(
      "run_phase_2_max_sequence_length --baseline_model_directory m --sequence_lengths 128 64 16 "
      "--max_eval_examples 10");
  EXPECT_NE(r.exit_code, 2) << r.output;
  Result p = run_nlpf(
      "phase2 precision --baseline-model-directory m --precisions fp32 fp16 --skip_failed_precisions");
  EXPECT_NE(p.exit_code, 2) << p.output;
  Result c =
      run_nlpf("phase2 precision --baseline-model-directory m --precisions fp8 --calibration_batches 4");
  EXPECT_NE(c.exit_code, 2) << c.output;
  Result w =
      run_nlpf("phase2 grid --baseline-model-directory m --precisions fp8 --fp8_weight_scales channel");
  EXPECT_NE(w.exit_code, 2) << w.output;
  for (const char* args :
       {"run_phase_2_batch_size --baseline_model_directory m --batch_sizes 1 8 --padding longest",
        "run_phase_2_padding --baseline_model_directory m --paddings max-length bucketed",
        "phase2 grid --baseline-model-directory m --paddings longest --eval_batch_sizes 4 8"}) {
    Result r = run_nlpf(args);
    EXPECT_NE(r.exit_code, 2) << args << ": " << r.output;
  }
}

TEST(Cli, SweepsOnlyTakeTheirOwnFixedValues) {
  // The padding sweep has no fixed --padding, the batch-size sweep no fixed --eval-batch-size (usage errors).
  for (const char* args : {"phase2 padding --baseline-model-directory m --padding longest",
                           "phase2 batch-size --baseline-model-directory m --eval-batch-size 8"}) {
    Result r = run_nlpf(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
  }
}

TEST(Cli, InvisibleDeviceSaysSoAndFails) {
  // A GPU that is not there (or a build without CUDA): refused before any work (the model path is never
  // read).
  Result r = run_nlpf("phase1 --device cuda:64 --model /nonexistent");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_EQ(count_lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--device cuda:64"), std::string::npos) << r.output;
}

TEST(Cli, NoSubcommandIsUsageError) {
  Result r = run_nlpf("");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
