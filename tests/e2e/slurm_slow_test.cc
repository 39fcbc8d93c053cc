// phase2 --submit slurm against a real Slurm (tools/slurm_local.sh start: one node on this machine;
// SLURM_CONF names it): the tiny model's 2 x 2 grid as a job array on the CPU gives the local grid's points,
// accuracies and predictions once its merge job has run; a point made to fail (NLPF_FAIL_POINTS, exported to
// the tasks by sbatch) lands in errors.json and a resubmission with --resume completes it; a task killed
// mid-point leaves no complete-looking point. Skipped, with the reason, where no Slurm answers.
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "e2e/scale_out_util.h"
#include "experiment/phase2.h"
#include "experiment/phase2_scale_out.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing_util::TempDir;

constexpr double kBoundSeconds = 120;  // a four-task array and its merge take seconds on one idle node

class Slurm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("sinfo -h >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "no Slurm reachable (sinfo failed; SLURM_CONF="
                   << (std::getenv("SLURM_CONF") ? std::getenv("SLURM_CONF") : "unset")
                   << "): start one with eval \"$(tools/slurm_local.sh start)\"";
    }
  }

  // Submits the tiny grid (plus `extra` options); returns the sweep directory.
  fs::path submit(const fs::path& runs, const std::string& extra, double trial_seconds = 0.01) {
    std::string output;
    const int rc = testing_util::run_nlpf(
        testing_util::tiny_grid_arguments(runs, trial_seconds) + " --submit slurm " + extra, output);
    EXPECT_EQ(rc, 0) << output;
    EXPECT_NE(output.find("Slurm job array"), std::string::npos) << output;
    return testing_util::only_run(runs);
  }

  static bool merged(const fs::path& dir) { return fs::exists(dir / "run.json"); }

  static std::string status_text(const fs::path& dir) {
    std::string output;
    testing_util::run_nlpf("status " + dir.string(), output);
    return output;
  }
};

TEST_F(Slurm, ArrayGivesTheLocalGrid) {
  const TempDir temp("slurm_grid");
  std::ostringstream sink;
  const Phase2Result local = run_phase2(testing_util::tiny_grid_settings(temp / "local", sink));
  const fs::path dir = submit(temp / "slurm", "--slurm-time 10 --slurm-option=--comment=nlpf-test");
  EXPECT_TRUE(fs::exists(dir / "plan.json"));
  const std::string script = read_file(dir / "slurm" / "array.sbatch");
  EXPECT_NE(script.find("#SBATCH --array=0-3"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --time=10"), std::string::npos) << script;
  EXPECT_NE(script.find("#SBATCH --comment=nlpf-test"), std::string::npos) << script;
  EXPECT_EQ(script.find("--gres"), std::string::npos) << "no GPU asked for CPU points:\n" << script;
  ASSERT_TRUE(testing_util::wait_for([&] { return merged(dir); }, kBoundSeconds)) << status_text(dir);
  EXPECT_EQ(testing_util::read_points(dir), testing_util::read_points(local.run_directory));
  EXPECT_FALSE(fs::exists(dir / "errors.json"));
  const json metrics = json::parse(read_file(dir / "max_sequence_length_4-num_layers_1" / "metrics.json"));
  EXPECT_TRUE(metrics["device"]["slurm_job_id"].is_string()) << metrics["device"];
  const std::string status = status_text(dir);
  EXPECT_NE(status.find("done 4, pending 0, running 0, failed 0); merged: yes"), std::string::npos) << status;
}

TEST_F(Slurm, FailedPointLandsInErrorsAndResubmissionCompletesIt) {
  const TempDir temp("slurm_resubmit");
  const std::string failing = "max_sequence_length_32-num_layers_1";
  ::setenv("NLPF_FAIL_POINTS", failing.c_str(), 1);  // sbatch exports the environment to the tasks
  const fs::path dir = submit(temp.path(), "");
  ::unsetenv("NLPF_FAIL_POINTS");
  ASSERT_TRUE(testing_util::wait_for([&] { return merged(dir); }, kBoundSeconds)) << status_text(dir);
  const json errors = json::parse(read_file(dir / "errors.json"));
  ASSERT_EQ(errors.size(), 1u) << errors;
  EXPECT_EQ(errors[0]["point"], failing);
  EXPECT_EQ(read_pareto_csv(dir / "pareto.csv").rows.size(), 3u);
  EXPECT_FALSE(fs::exists(dir / failing));
  EXPECT_NE(status_text(dir).find("failed 1)"), std::string::npos) << status_text(dir);

  std::string output;
  ASSERT_EQ(testing_util::run_nlpf(
                testing_util::tiny_grid_arguments(temp.path()) + " --submit slurm --resume " + dir.string(),
                output),
            0)
      << output;
  EXPECT_NE(output.find("submitted 1 point(s)"), std::string::npos) << output;
  ASSERT_TRUE(testing_util::wait_for([&] { return merged(dir); }, kBoundSeconds)) << status_text(dir);
  EXPECT_FALSE(fs::exists(dir / "errors.json"));
  EXPECT_EQ(read_pareto_csv(dir / "pareto.csv").rows.size(), 4u);
  EXPECT_TRUE(fs::exists(dir / failing / "metrics.json"));
}

TEST_F(Slurm, TaskKilledMidPointLeavesNoCompletePoint) {
  const TempDir temp("slurm_kill");
  const fs::path dir = submit(temp.path(), "", /*trial_seconds=*/20.0);
  fs::path marker;
  ASSERT_TRUE(testing_util::wait_for(
      [&] {
        if (!fs::exists(dir / "tasks")) return false;
        for (const auto& f : fs::directory_iterator(dir / "tasks")) {
          if (f.path().string().ends_with(".running.json")) marker = f.path();
        }
        return !marker.empty();
      },
      kBoundSeconds))
      << status_text(dir);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const json running = json::parse(read_file(marker));
  const std::string label = running["point"];
  ASSERT_EQ(::kill(running["pid"].get<int>(), SIGKILL),
            0);  // the task's own process, as the OOM killer would
  const std::string array_job = running["slurm_array_job_id"];
  std::string output;
  ASSERT_TRUE(testing_util::wait_for(
      [&] {
        const std::string status = status_text(dir);
        return status.find("failed\t" + label) != std::string::npos;
      },
      30))
      << status_text(dir);
  // The other points are not needed here; scancel's status does not matter (some may have finished).
  [[maybe_unused]] const int cancelled = std::system(("scancel " + array_job + " >/dev/null 2>&1").c_str());
  EXPECT_TRUE(testing_util::complete_looking_points(dir).empty());
  EXPECT_FALSE(fs::exists(dir / label));
}

}  // namespace
}  // namespace nlpf
