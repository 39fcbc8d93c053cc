// `nlpf phase1 --device cuda` end to end through the binary on the committed tiny checkpoint: training and
// the inference benchmark on the GPU write every file, with the GPU named in run.json and GPU memory in
// metrics.json; the training log follows the same run on the CPU step by step (same seed, dropout on: the
// masks are drawn from the same Philox stream on both devices).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/device.h"
#include "core/file_util.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing_util::run_nlpf;
using testing_util::TempDir;
using Result = testing_util::CommandResult;
const fs::path kTiny = fs::path(NLPF_TEST_DATA) / "checkpoint" / "tiny";
const fs::path kSample = fs::path(NLPF_TEST_DATA) / "text" / "sample.tsv";

// The one run directory under `runs`.
fs::path only_run(const fs::path& runs) {
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(runs)) entries.push_back(e.path());
  EXPECT_EQ(entries.size(), 1u);
  return entries.empty() ? fs::path() : entries[0];
}

// train_log.csv rows as numbers: step, epoch, learning_rate, loss, grad_norm, examples_per_s.
std::vector<std::vector<double>> train_log(const fs::path& run) {
  std::vector<std::vector<double>> rows;
  std::istringstream in(read_file(run / "train_log.csv"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

TEST(Phase1CudaE2E, TrainsAndMeasuresOnTheGpuFollowingTheCpu) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const TempDir temp("e2e_phase1_cuda_run");
  // The tiny checkpoint's head size (4) is below what the CUDA attention kernels take (a multiple of 8): a
  // config-only copy with hidden_size 16 over 2 heads, initialised from the seed on both devices.
  const fs::path model = temp.path() / "tiny_hs8";
  fs::create_directories(model);
  for (const char* f : {"vocab.txt", "tokenizer_config.json"}) fs::copy_file(kTiny / f, model / f);
  json config = json::parse(read_file(kTiny / "config.json"));
  config["hidden_size"] = 16;
  config["intermediate_size"] = 32;
  write_file_atomic(model / "config.json", config.dump(2));
  const std::string common = "phase1 --init random --model " + model.string() + " --train-file " +
                             kSample.string() + " --eval-file " + kSample.string() +
                             " --max-sequence-length 32 --batch-size 4 --epochs 2 --learning-rate 1e-3"
                             " --trials 2 --min-trial-seconds 0.05 --idle-seconds 0.05 --quiet";
  const Result gpu = run_nlpf(common + " --device cuda --runs-dir " + (temp.path() / "gpu").string());
  ASSERT_EQ(gpu.exit_code, 0) << gpu.output;
  const Result cpu = run_nlpf(common + " --device cpu --runs-dir " + (temp.path() / "cpu").string());
  ASSERT_EQ(cpu.exit_code, 0) << cpu.output;
  const fs::path gpu_run = only_run(temp.path() / "gpu"), cpu_run = only_run(temp.path() / "cpu");
  ASSERT_FALSE(gpu_run.empty() || cpu_run.empty());
  for (const char* file : {"run.json", "metrics.json", "power_trace.csv", "pareto.csv", "predictions.jsonl",
                           "train_log.csv", "best_model/model.safetensors", "best_model/config.json"}) {
    EXPECT_TRUE(fs::exists(gpu_run / file)) << file;
  }

  const json run_json = json::parse(read_file(gpu_run / "run.json"));
  EXPECT_EQ(run_json["environment"]["device"], "cuda:0");
  EXPECT_FALSE(run_json["environment"]["device_name"].get<std::string>().empty());
  EXPECT_TRUE(run_json["environment"]["cuda_driver"].is_string());

  const json metrics = json::parse(read_file(gpu_run / "metrics.json"));
  EXPECT_GT(metrics["inference_benchmark_metrics"]["peak_gpu_memory_mb"].get<double>(), 0.0);
  EXPECT_GT(metrics["training"]["peak_gpu_memory_mb"].get<double>(), 0.0);
  EXPECT_EQ(metrics["training"]["device"], "cuda:0");
  EXPECT_EQ(metrics["training"]["steps"], 10);
  // Each batch shape's first step runs eagerly, its later ones replay the graph captured at its second.
  const int64_t captured = metrics["training"]["captured_step_shapes"].get<int64_t>(),
                replayed = metrics["training"]["replayed_steps"].get<int64_t>();
  EXPECT_LE(captured, replayed);
  EXPECT_LE(replayed, 10 - captured);
  EXPECT_GE(metrics["training"]["graph_memory_mb"].get<double>(), 0.0);

  // Step by step, the GPU's training follows the CPU's (fp32, IEEE GEMMs).
  const std::vector<std::vector<double>> g = train_log(gpu_run), c = train_log(cpu_run);
  ASSERT_EQ(g.size(), 10u);
  ASSERT_EQ(g.size(), c.size());
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(g[i][0], c[i][0]);
    EXPECT_EQ(g[i][2], c[i][2]) << "learning rate, step " << i + 1;
    EXPECT_NEAR(g[i][3], c[i][3], 1e-4) << "loss, step " << i + 1;
    EXPECT_NEAR(g[i][4], c[i][4], 1e-4 * std::max(1.0, c[i][4])) << "grad norm, step " << i + 1;
  }
  const json cpu_metrics = json::parse(read_file(cpu_run / "metrics.json"));
  EXPECT_NEAR(metrics["inference_benchmark_metrics"]["accuracy"].get<double>(),
              cpu_metrics["inference_benchmark_metrics"]["accuracy"].get<double>(), 0.051)
      << "at most one of the 20 examples may flip";
}

TEST(Phase1CudaE2E, HeadSizeTheGpuEngineCannotRunRefusedBeforeTraining) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const TempDir temp("e2e_phase1_cuda_hs4");
  const Result r = run_nlpf("phase1 --device cuda --model " + kTiny.string() + " --train-file " +
                            kSample.string() + " --eval-file " + kSample.string() +
                            " --max-sequence-length 32 --quiet --runs-dir " + temp.path().string());
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("head size"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::is_empty(temp.path()));
}

TEST(Phase1CudaE2E, TensorCoreTrainingPrecisionsRefusedOnTheCpu) {
  // tf32, bf16 and fp16 train only on the GPU: asked for on the CPU they are refused before any work.
  const TempDir temp("e2e_phase1_cpu_fp16");
  for (const char* precision : {"tf32", "bf16", "fp16"}) {
    const Result r = run_nlpf(std::string("phase1 --device cpu --train-precision ") + precision +
                              " --model /nonexistent --runs-dir " + temp.path().string());
    EXPECT_EQ(r.exit_code, 4) << r.output;
    EXPECT_NE(r.output.find(std::string("--train-precision ") + precision), std::string::npos) << r.output;
  }
  EXPECT_TRUE(fs::is_empty(temp.path()));
}

}  // namespace
}  // namespace nlpf
