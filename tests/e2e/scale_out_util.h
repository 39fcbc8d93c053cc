// Helpers of the scale-out tests (phase2_scale_out_test.cc, slurm_slow_test.cc): the tiny committed model's
// grid as nlpf arguments and as in-process settings (the same points), running the nlpf binary, waiting for a
// file with a bound, and reading a sweep directory's points back.
#pragma once

#include <gtest/gtest.h>

#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "experiment/phase2.h"
#include "experiment/run_files.h"
#include "test_util.h"

namespace nlpf::testing_util {

inline const std::filesystem::path kTinyModel = std::filesystem::path(NLPF_TEST_DATA) / "checkpoint" / "tiny";
inline const std::filesystem::path kSampleText =
    std::filesystem::path(NLPF_TEST_DATA) / "text" / "sample.tsv";

// A 2 x 2 grid (lengths 32 and 4, layers 2 and 1) of the tiny model on the 20 sample sentences, on the CPU,
// with a protocol of milliseconds. `trial_seconds` lengthens each trial (a point to kill mid-way).
inline std::string tiny_grid_arguments(const std::filesystem::path& runs, double trial_seconds = 0.01) {
  return "phase2 grid --baseline-model-directory " + kTinyModel.string() + " --eval-file " +
         kSampleText.string() + " --device cpu --runs-dir " + runs.string() +
         " --sequence-lengths 32 4 --num-layers 2 1 --max-sequence-length 32 --eval-batch-size 8 --trials 2" +
         " --min-trial-seconds " + std::to_string(trial_seconds) +
         " --idle-seconds 0.01 --warmup-seconds 0.01 --quiet";
}

inline Phase2Settings tiny_grid_settings(const std::filesystem::path& runs, std::ostream& sink) {
  Phase2Settings s;
  s.sweep = SweepKind::GRID;
  s.baseline_model_directory = kTinyModel.string();
  s.data.eval_file = kSampleText.string();
  s.device = "cpu";
  s.runs_dir = runs.string();
  s.sequence_lengths = {32, 4};
  s.num_layers = {2, 1};
  s.max_sequence_length = 32;
  s.eval_batch_size = 8;
  s.protocol.trials = 2;
  s.protocol.min_trial_seconds = 0.01;
  s.protocol.idle_seconds = 0.01;
  s.protocol.warmup_min_seconds = 0.01;
  s.quiet = true;
  s.out = &sink;
  s.log = &sink;
  s.executable = NLPF_BINARY;
  return s;
}

// Runs `nlpf <arguments>` (testing_util::run_nlpf); returns the exit code, the output in `output`.
inline int run_nlpf(const std::string& arguments, std::string& output) {
  CommandResult r = testing_util::run_nlpf(arguments);
  output = std::move(r.output);
  return r.exit_code;
}

// Waits until `done()` holds, at most `seconds`; returns whether it held.
template <typename F>
bool wait_for(F&& done, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

// The one run directory under `runs`.
inline std::filesystem::path only_run(const std::filesystem::path& runs) {
  std::vector<std::filesystem::path> found;
  for (const auto& entry : std::filesystem::directory_iterator(runs)) {
    if (entry.path().filename().string()[0] != '.') found.push_back(entry.path());
  }
  EXPECT_EQ(found.size(), 1u) << runs;
  return found.empty() ? runs : found[0];
}

// label -> (accuracy, predictions.jsonl) of every row of DIR/pareto.csv.
inline std::map<std::string, std::pair<nlohmann::json, std::string>> read_points(
    const std::filesystem::path& dir) {
  std::map<std::string, std::pair<nlohmann::json, std::string>> points;
  for (const ParetoRow& row : read_pareto_csv(dir / "pareto.csv").rows) {
    points[row.label] = {row.metrics["accuracy"], read_file(dir / row.label / "predictions.jsonl")};
  }
  return points;
}

// No folder under `dir` that looks like a finished point holds anything but a complete one: every
// metrics.json sits in a folder whose name is a point's (not a staged ".<label>.partial-<pid>").
inline std::vector<std::string> complete_looking_points(const std::filesystem::path& dir) {
  std::vector<std::string> labels;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name[0] != '.' && std::filesystem::exists(entry.path() / "metrics.json")) {
      labels.push_back(name);
    }
  }
  return labels;
}

}  // namespace nlpf::testing_util
