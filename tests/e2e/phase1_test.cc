// `nlpf phase1` end to end through the binary on the committed tiny checkpoint: every file of the run
// directory with its header/keys, empty/null (never 0) where a value is unavailable, best_model reloads;
// and SIGINT during training leaves no run directory.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "model/checkpoint.h"
#include "test_util.h"

extern char** environ;

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing_util::run_nlpf;
using testing_util::TempDir;
using Result = testing_util::CommandResult;
const fs::path kTiny = fs::path(NLPF_TEST_DATA) / "checkpoint" / "tiny";
const fs::path kSample = fs::path(NLPF_TEST_DATA) / "text" / "sample.tsv";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> cells_of(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.push_back("");
  return cells;
}

// A null in JSON must come with a reason; a number standing for "unknown" would be 0.
void expect_nulls_have_reasons(const json& metrics, const std::string& where) {
  for (const auto& [key, value] : metrics.items()) {
    if (value.is_null()) {
      EXPECT_TRUE(metrics.contains("null_reasons") && metrics["null_reasons"].contains(key))
          << where << ": " << key << " is null without a reason";
    }
  }
}

TEST(Phase1E2E, TinyRunWritesEveryFile) {
  const TempDir temp("e2e_phase1");
  const fs::path runs = temp.path();
  const std::string args =
      "phase1 --model " + kTiny.string() + " --train-file " + kSample.string() + " --eval-file " +
      kSample.string() +
      " --max-sequence-length 32 --batch-size 4 --epochs 2 --learning-rate 1e-3 --device cpu"
      " --trials 2 --min-trial-seconds 0.05 --idle-seconds 0.05 --runs-dir " +
      runs.string();
  const Result r = run_nlpf(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("run directory:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ms/example"), std::string::npos) << r.output;

  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(runs)) entries.push_back(e.path());
  ASSERT_EQ(entries.size(), 1u);
  const fs::path run = entries[0];
  EXPECT_TRUE(run.filename().string().ends_with("_phase_1_baseline")) << run;
  EXPECT_EQ(run.filename().string().size(), std::string("2026-11-28_22-58-08_phase_1_baseline").size())
      << run;

  // run.json
  const json run_json = json::parse(read_file(run / "run.json"));
  for (const char* key : {"nlpf_version", "nlpf_commit", "device", "cpu_model", "threads", "hostname"}) {
    EXPECT_TRUE(run_json["environment"].contains(key)) << key;
  }
  EXPECT_EQ(run_json["environment"]["device"], "cpu");
  EXPECT_EQ(run_json["config"]["epochs"], 2);
  EXPECT_EQ(run_json["config"]["train_arithmetic"], "IEEE fp32 (no TF32)");
  EXPECT_EQ(run_json["config"]["padding"], "bucketed");  // the default: least work, same predictions
  EXPECT_EQ(run_json["config"]["total_steps"], 10);      // 20 examples / 4 x 2 epochs
  EXPECT_EQ(run_json["config"]["warmup_steps"], 1);      // ceil(0.06 * 10)
  EXPECT_EQ(run_json["data"]["train"]["examples_used"], 20);
  EXPECT_TRUE(run_json.contains("start_time") && run_json.contains("end_time"));

  // metrics.json
  const json metrics = json::parse(read_file(run / "metrics.json"));
  EXPECT_EQ(fs::path(metrics["best_model_directory"].get<std::string>()), fs::absolute(run / "best_model"));
  const json& inference = metrics["inference_benchmark_metrics"];
  for (const char* key :
       {"accuracy", "average_latency_per_example_ms", "energy_per_example_j", "energy_per_correct_j",
        "peak_gpu_memory_mb", "peak_memory_mb", "throughput_examples_per_s", "trials"}) {
    EXPECT_TRUE(inference.contains(key)) << key;
  }
  EXPECT_TRUE(inference["peak_gpu_memory_mb"].is_null());
  EXPECT_GT(inference["peak_memory_mb"].get<double>(), 0.0);
  EXPECT_GT(inference["average_latency_per_example_ms"].get<double>(), 0.0);
  expect_nulls_have_reasons(inference, "inference_benchmark_metrics");
  const json& training = metrics["training"];
  EXPECT_EQ(training["steps"], 10);
  EXPECT_EQ(training["captured_step_shapes"], 0);  // the CPU runs every step eagerly
  EXPECT_EQ(training["replayed_steps"], 0);
  EXPECT_TRUE(training["graph_memory_mb"].is_null());
  EXPECT_FALSE(training["null_reasons"]["graph_memory_mb"].get<std::string>().empty());
  EXPECT_GT(training["seconds"].get<double>(), 0.0);
  EXPECT_GT(training["examples_per_s"].get<double>(), 0.0);
  if (training["energy"].is_null()) {
    EXPECT_FALSE(training["null_reasons"]["energy"].get<std::string>().empty());
  } else {
    EXPECT_GT(training["energy"]["joules"].get<double>(), 0.0);
  }

  // pareto.csv: header, one row per epoch, empty (never 0) where a value is unavailable.
  const std::vector<std::string> pareto = lines_of(read_file(run / "pareto.csv"));
  ASSERT_EQ(pareto.size(), 3u);
  EXPECT_EQ(
      pareto[0],
      "label,epoch,accuracy,average_latency_per_example_ms,energy_per_example_j,energy_per_correct_j,"
      "peak_gpu_memory_mb,on_frontier,frontier_cost,energy_per_example_j_ci_low,energy_per_example_j_ci_high,"
      "dynamic_energy_per_example_j,throughput_examples_per_s,latency_p50_ms,latency_p90_ms,latency_p99_ms,"
      "trials");
  const std::vector<std::string> header = cells_of(pareto[0]);
  const bool energy = !inference["energy_per_example_j"].is_null();
  int on_frontier = 0;
  for (int row = 1; row <= 2; ++row) {
    const std::vector<std::string> cells = cells_of(pareto[row]);
    ASSERT_EQ(cells.size(), header.size()) << pareto[row];
    EXPECT_EQ(cells[0], "epoch_" + std::to_string(row));
    for (size_t c = 2; c < cells.size(); ++c) {
      if (header[c] == "on_frontier") continue;
      EXPECT_NE(cells[c], "0") << header[c] << " is 0 in " << pareto[row];
    }
    EXPECT_TRUE(cells[6].empty()) << "peak_gpu_memory_mb on the CPU";
    EXPECT_EQ(cells[4].empty(), !energy);
    EXPECT_EQ(cells[8], energy ? "energy_per_example_j" : "average_latency_per_example_ms");
    on_frontier += cells[7] == "1";
  }
  EXPECT_GE(on_frontier, 1);

  // power_trace.csv: the study's first two columns; power empty (never 0) without a reading.
  const std::vector<std::string> trace = lines_of(read_file(run / "power_trace.csv"));
  ASSERT_GE(trace.size(), 2u);
  EXPECT_EQ(trace[0].rfind("timestamp_s,power_w", 0), 0u) << trace[0];
  for (size_t i = 1; i < trace.size(); ++i) {
    const std::vector<std::string> cells = cells_of(trace[i]);
    ASSERT_GE(cells.size(), 2u);
    if (!energy) {
      EXPECT_TRUE(cells[1].empty()) << trace[i];
    }
    EXPECT_NE(cells[1], "0") << trace[i];
  }

  // predictions.jsonl: one per evaluation example, in file order (bucketed batches ran longest first), with
  // its label: sample.tsv's labels alternate 1, 0, 1, ...
  const std::vector<std::string> predictions = lines_of(read_file(run / "predictions.jsonl"));
  ASSERT_EQ(predictions.size(), 20u);
  int correct = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const std::string& line = predictions[i];
    const json p = json::parse(line);
    EXPECT_EQ(p["label"], i % 2 == 0 ? 1 : 0) << "line " << i + 1;
    ASSERT_TRUE(p.contains("prediction") && p.contains("label")) << line;
    correct += p["prediction"] == p["label"];
  }
  EXPECT_DOUBLE_EQ(inference["accuracy"].get<double>(), correct / 20.0);

  // train_log.csv: every step.
  const std::vector<std::string> log = lines_of(read_file(run / "train_log.csv"));
  ASSERT_EQ(log.size(), 11u);
  EXPECT_EQ(log[0], "step,epoch,learning_rate,loss,grad_norm,examples_per_s");
  EXPECT_EQ(cells_of(log[1])[0], "1");
  EXPECT_EQ(cells_of(log[1])[2], "0");  // warm-up starts at 0
  EXPECT_EQ(cells_of(log[10])[0], "10");

  // best_model/ reloads.
  CheckpointLoadOptions quiet;
  quiet.quiet = true;
  const Checkpoint best = load_checkpoint(run / "best_model", quiet);
  EXPECT_EQ(best.config.hidden_size, 8);
  EXPECT_TRUE(best.initialized.empty());

  // The plot exists when the build has PLplot, and the summary says so when it does not.
#if NLPF_WITH_PLPLOT
  EXPECT_GT(fs::file_size(run / "pareto_frontier.png"), 1000u);
#else
  EXPECT_NE(r.output.find("plots skipped (built without PLplot)"), std::string::npos) << r.output;
#endif
}

TEST(Phase1E2E, RandomInitNeedsNoWeights) {
  const TempDir temp("e2e_phase1_random");
  const fs::path runs = temp.path();
  const fs::path model = runs / "config_only";
  fs::create_directories(model);
  for (const char* f : {"config.json", "vocab.txt", "tokenizer_config.json"})
    fs::copy_file(kTiny / f, model / f);
  const fs::path out = runs / "out";
  const Result r = run_nlpf("phase1 --init random --model " + model.string() + " --train-file " +
                            kSample.string() + " --eval-file " + kSample.string() +
                            " --max-sequence-length 32 --batch-size 8 --epochs 1 --device cpu --quiet"
                            " --trials 1 --min-trial-seconds 0.01 --idle-seconds 0.01 --runs-dir " +
                            out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("run directory:"), std::string::npos) << r.output;
}

// --epochs 0: the inference benchmark of a given (fine-tuned) model, no training data needed; its weights
// come back unchanged as best_model, and the training figures are null with the reason.
TEST(Phase1E2E, EpochsZeroMeasuresTheGivenModelAsItIs) {
  const TempDir temp("e2e_phase1_epochs0");
  const fs::path runs = temp.path();
  const Result r = run_nlpf("phase1 --model " + kTiny.string() + " --eval-file " + kSample.string() +
                            " --max-sequence-length 32 --epochs 0 --device cpu --quiet"
                            " --trials 1 --min-trial-seconds 0.01 --idle-seconds 0.01 --runs-dir " +
                            runs.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(runs)) entries.push_back(e.path());
  ASSERT_EQ(entries.size(), 1u);
  const fs::path run = entries[0];
  const json metrics = json::parse(read_file(run / "metrics.json"));
  EXPECT_EQ(metrics["best_epoch"], 0);
  EXPECT_TRUE(metrics["inference_benchmark_metrics"]["accuracy"].is_number());
  EXPECT_EQ(metrics["training"]["steps"], 0);
  EXPECT_TRUE(metrics["training"]["energy"].is_null());
  EXPECT_NE(metrics["training"]["null_reasons"]["energy"].get<std::string>().find("--epochs 0"),
            std::string::npos);
  EXPECT_TRUE(metrics["training"]["examples_per_s"].is_null());
  const json run_json = json::parse(read_file(run / "run.json"));
  EXPECT_TRUE(run_json["data"]["train"].is_null());
  EXPECT_EQ(run_json["config"]["total_steps"], 0);
  EXPECT_EQ(lines_of(read_file(run / "predictions.jsonl")).size(), 20u);
  EXPECT_EQ(lines_of(read_file(run / "train_log.csv")).size(), 1u);  // the header only
  // The given weights, unchanged.
  const Checkpoint given = load_checkpoint(kTiny), saved = load_checkpoint(run / "best_model");
  const Tensor& a = given.tensor("bert.embeddings.word_embeddings.weight");
  const Tensor b = saved.tensor("bert.embeddings.word_embeddings.weight").to(a.dtype());
  ASSERT_EQ(a.nbytes(), b.nbytes());
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0);
}

TEST(Phase1E2E, InvisibleCudaDeviceRefusedWithExitCodeOfUnsupported) {
  const TempDir temp("e2e_phase1_cuda");
  const fs::path runs = temp.path();
  const Result r = run_nlpf("phase1 --device cuda:64 --model /nonexistent --runs-dir " + runs.string());
  EXPECT_EQ(r.exit_code, error_exit_code(ErrorCode::UNSUPPORTED)) << r.output;
  EXPECT_NE(r.output.find("--device cuda:64"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::is_empty(runs));
}

// SIGINT while training: the child waits until the staging directory exists (training starts right after
// it is created), so the signal lands in the training loop; 200 epochs of 2000 one-example steps last far
// longer than the wait.
TEST(Phase1E2E, SigintDuringTrainingLeavesNoRunDirectory) {
  const TempDir temp("e2e_phase1_sigint");
  const fs::path runs = temp.path();
  const fs::path data = runs / "train.tsv";
  {
    std::ofstream tsv(data);
    tsv << "sentence\tlabel\n";
    for (int i = 0; i < 2000; ++i) tsv << "a sentence number " << i << "\t" << i % 2 << "\n";
  }
  const fs::path out = runs / "out";
  const std::string binary = NLPF_BINARY;
  std::vector<std::string> args = {binary,
                                   "phase1",
                                   "--model",
                                   kTiny.string(),
                                   "--train-file",
                                   data.string(),
                                   "--eval-file",
                                   kSample.string(),
                                   "--max-sequence-length",
                                   "32",
                                   "--batch-size",
                                   "1",
                                   "--epochs",
                                   "200",
                                   "--device",
                                   "cpu",
                                   "--quiet",
                                   "--runs-dir",
                                   out.string()};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log_path = (runs / "child.log").string();
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t child = 0;
  ASSERT_EQ(posix_spawn(&child, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  bool staging_seen = false;
  for (int i = 0; i < 600 && !staging_seen; ++i) {  // up to 60 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::error_code ec;
    if (fs::exists(out, ec)) staging_seen = !fs::is_empty(out, ec);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(child, SIGINT);
  int status = 0;
  waitpid(child, &status, 0);
  const std::string child_log = read_file(log_path);
  ASSERT_TRUE(staging_seen) << child_log;
  ASSERT_TRUE(WIFEXITED(status)) << "child died of a signal: " << child_log;
  EXPECT_EQ(WEXITSTATUS(status), error_exit_code(ErrorCode::INTERRUPTED)) << child_log;
  EXPECT_NE(child_log.find("interrupted by Ctrl-C after step"), std::string::npos) << child_log;
  EXPECT_TRUE(fs::is_empty(out)) << "left behind: " << fs::directory_iterator(out)->path();
}

}  // namespace
}  // namespace nlpf
