// `nlpf demo` end to end through the binary (what `make run` runs): exit 0, one demo directory holding the
// phase 1 run, the three sweeps (fp16/fp8 refused into errors.json on the CPU) and a merged frontier, each
// with its DESIGN §3 files, and the phase 1 model learning the synthetic task. Labelled slow (minutes).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path only_entry_ending(const fs::path& dir, const std::string& suffix) {
  fs::path found;
  int count = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      found = e.path();
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << "entries ending in " << suffix << " under " << dir;
  return found;
}

TEST(Demo, WholePipelineWritesEveryRun) {
  const testing_util::TempDir temp("demo");
  const std::string command =
      std::string(NLPF_BINARY) + " demo --quiet --runs-dir " + temp.path().string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  ASSERT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("demo done"), std::string::npos) << output;

  const fs::path demo = only_entry_ending(temp.path(), "_demo");
  const fs::path phase1 = only_entry_ending(demo, "_phase_1_baseline");
  for (const char* f : {"run.json", "metrics.json", "pareto.csv", "predictions.jsonl", "train_log.csv",
                        "power_trace.csv", "best_model/model.safetensors"}) {
    EXPECT_TRUE(fs::exists(phase1 / f)) << f;
  }
  const json metrics = json::parse(read_file(phase1 / "metrics.json"));
  EXPECT_GE(metrics["inference_benchmark_metrics"]["accuracy"].get<double>(), 0.85) << metrics.dump();

  for (const char* suffix :
       {"_phase_2_sequence_length_sweep", "_phase_2_layers_sweep", "_phase_2_precision_sweep"}) {
    const fs::path sweep = only_entry_ending(demo, suffix);
    EXPECT_TRUE(fs::exists(sweep / "pareto.csv")) << suffix;
    EXPECT_TRUE(fs::exists(sweep / "run.json")) << suffix;
  }
  const json errors =
      json::parse(read_file(only_entry_ending(demo, "_phase_2_precision_sweep") / "errors.json"));
  EXPECT_GE(errors.size(), 2u);  // fp16 and fp8 have no CPU path
  const fs::path frontier = only_entry_ending(demo, "_frontier");
  EXPECT_TRUE(fs::exists(frontier / "pareto.csv"));
  EXPECT_TRUE(fs::exists(frontier / "task") == false);
  EXPECT_TRUE(fs::exists(demo / "task" / "data" / "dev.tsv"));
}

}  // namespace
}  // namespace nlpf
