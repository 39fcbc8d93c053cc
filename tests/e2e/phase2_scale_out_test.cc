// The scaled-out phase 2 without Slurm (phase2_scale_out.h): --devices cpu,cpu gives the same points and
// predictions as the local grid, with plan.json, each point's device block and nlpf status; a point made to
// fail (NLPF_FAIL_POINTS) lands in errors.json and --resume completes it; the merge refuses points of two
// device models; a point process killed with SIGKILL mid-measurement leaves no complete-looking point, and
// the merge removes what it staged.
// The Slurm job array itself: slurm_slow_test.cc.
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
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

TEST(Phase2ScaleOut, SlurmArrayListsAndTaskIds) {
  EXPECT_EQ(slurm_array_list({0, 1, 2, 3}), "0-3");
  EXPECT_EQ(slurm_array_list({7, 0, 2, 3, 5}), "0,2-3,5,7");
  EXPECT_EQ(parse_slurm_array_tasks("12_4", "12"), std::vector<int64_t>{4});
  EXPECT_EQ(parse_slurm_array_tasks("12_[0-2,5%2]", "12"), (std::vector<int64_t>{0, 1, 2, 5}));
  EXPECT_TRUE(parse_slurm_array_tasks("13_4", "12").empty());
  EXPECT_TRUE(parse_slurm_array_tasks("12", "12").empty());  // the array's own line
}

TEST(Phase2ScaleOut, SettingsSurvivePlanJson) {
  std::ostringstream sink;
  Phase2Settings s = testing_util::tiny_grid_settings("runs", sink);
  s.paddings = {"longest"};
  s.data.max_eval_examples = 7;
  s.protocol.cooldown_seconds = 0.5;
  s.calibration_batches = 3;
  s.fp8_weight_scales = "channel";
  const json j = phase2_settings_json(s);
  EXPECT_EQ(j["calibration_batches"], 3);
  EXPECT_EQ(j["fp8_weight_scales"], "channel");
  EXPECT_EQ(phase2_settings_json(phase2_settings_from_json(j)), j);
  EXPECT_TRUE(fs::path(j["data"]["eval_file"].get<std::string>()).is_absolute());
}

TEST(Phase2ScaleOut, DevicesGiveTheLocalGridAndRefuseMixedDeviceModels) {
  const TempDir temp("scale_out_devices");
  std::ostringstream sink;
  const Phase2Result local = run_phase2(testing_util::tiny_grid_settings(temp / "local", sink));
  Phase2Settings s = testing_util::tiny_grid_settings(temp / "devices", sink);
  s.devices = {"cpu", "cpu"};
  const Phase2Result spread = run_phase2(s);
  EXPECT_EQ(spread.points_measured, 4);
  EXPECT_EQ(spread.points_failed, 0);
  const fs::path dir = spread.run_directory;
  EXPECT_EQ(testing_util::read_points(dir), testing_util::read_points(local.run_directory));

  const json plan = json::parse(read_file(dir / "plan.json"));
  ASSERT_EQ(plan["points"].size(), 4u);
  EXPECT_NE(plan["points"][3]["command"].get<std::string>().find("phase2 run-point"), std::string::npos);
  const std::string label = plan["points"][1]["label"];
  EXPECT_TRUE(fs::exists(dir / "tasks" / (label + ".log")));
  const json device = json::parse(read_file(dir / label / "metrics.json"))["device"];
  EXPECT_FALSE(device["host"].get<std::string>().empty());
  EXPECT_EQ(device["device"], "cpu");
  EXPECT_TRUE(device["gpu_name"].is_null());
  EXPECT_TRUE(device["gpu_uuid"].is_null());
  EXPECT_TRUE(device["gpu_null_reason"].is_string());
  EXPECT_TRUE(fs::exists(dir / "run.json"));

  const SweepStatus status = phase2_status(dir);
  EXPECT_TRUE(status.merged);
  for (const PointStatus& p : status.points) EXPECT_EQ(p.state, PointState::DONE) << p.label;

  // One point claims another device model: the merge names both and refuses.
  json metrics = json::parse(read_file(dir / label / "metrics.json"));
  const std::string cpu_name = metrics["device"]["device_name"];
  metrics["device"]["device_name"] = "Other Accelerator 9000";
  write_file_atomic(dir / label / "metrics.json", metrics.dump());
  try {
    merge_phase2(dir, true, sink, sink);
    ADD_FAILURE() << "points of two device models were merged";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    const std::string message = e.what();
    EXPECT_NE(message.find("Other Accelerator 9000"), std::string::npos) << message;
    EXPECT_NE(message.find(cpu_name), std::string::npos) << message;
    EXPECT_NE(message.find(label), std::string::npos) << message;
  }
}

TEST(Phase2ScaleOut, FailedPointLandsInErrorsAndResumeCompletesIt) {
  const TempDir temp("scale_out_resume");
  std::ostringstream sink;
  Phase2Settings s = testing_util::tiny_grid_settings(temp.path(), sink);
  s.devices = {"cpu"};
  const std::string failing = "max_sequence_length_4-num_layers_2";
  ::setenv("NLPF_FAIL_POINTS", failing.c_str(), 1);
  const Phase2Result first = run_phase2(s);
  ::unsetenv("NLPF_FAIL_POINTS");
  EXPECT_EQ(first.points_measured, 3);
  EXPECT_EQ(first.points_failed, 1);
  const fs::path dir = first.run_directory;
  const json errors = json::parse(read_file(dir / "errors.json"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["point"], failing);
  EXPECT_EQ(errors[0]["stage"], "failed");
  EXPECT_NE(errors[0]["error"].get<std::string>().find("NLPF_FAIL_POINTS"), std::string::npos) << errors;
  EXPECT_EQ(testing_util::complete_looking_points(dir).size(), 3u);
  EXPECT_FALSE(fs::exists(dir / failing));
  EXPECT_EQ(read_pareto_csv(dir / "pareto.csv").rows.size(), 3u);

  s.resume_directory = dir.string();
  const Phase2Result second = run_phase2(s);
  EXPECT_EQ(second.run_directory, dir);
  EXPECT_EQ(second.points_measured, 4);
  EXPECT_EQ(second.points_failed, 0);
  EXPECT_FALSE(fs::exists(dir / "errors.json"));
  EXPECT_EQ(read_pareto_csv(dir / "pareto.csv").rows.size(), 4u);

  // A resumption must repeat the sweep: other settings are refused, naming plan.json.
  s.protocol.trials = 3;
  try {
    run_phase2(s);
    ADD_FAILURE() << "a different command resumed the sweep";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("plan.json"), std::string::npos) << e.what();
  }
}

TEST(Phase2ScaleOut, PointKilledMidMeasurementLeavesNoCompletePoint) {
  const TempDir temp("scale_out_kill");
  // The sweep's driver in the background, each trial 20 s: there is time to kill its first point.
  const fs::path pid_file = temp / "driver.pid";
  const std::string command = std::string(NLPF_BINARY) + " " +
                              testing_util::tiny_grid_arguments(temp / "runs", 20.0) + " --devices cpu > " +
                              (temp / "driver.log").string() + " 2>&1 & echo $! > " + pid_file.string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  fs::path dir;
  fs::path marker;
  ASSERT_TRUE(testing_util::wait_for(
      [&] {
        if (!fs::exists(temp / "runs")) return false;
        for (const auto& run : fs::directory_iterator(temp / "runs")) {
          if (!fs::exists(run.path() / "tasks")) continue;
          for (const auto& f : fs::directory_iterator(run.path() / "tasks")) {
            if (f.path().string().ends_with(".running.json")) {
              dir = run.path();
              marker = f.path();
              return true;
            }
          }
        }
        return false;
      },
      60))
      << "no point started";
  std::this_thread::sleep_for(std::chrono::seconds(1));  // inside its idle baseline or first trial
  const pid_t driver = std::stoi(read_file(pid_file));
  const pid_t point = json::parse(read_file(marker))["pid"].get<int>();
  ASSERT_EQ(::kill(driver, SIGKILL), 0);
  ASSERT_EQ(::kill(point, SIGKILL), 0);
  ASSERT_TRUE(testing_util::wait_for([&] { return ::kill(point, 0) != 0; }, 10));

  EXPECT_TRUE(testing_util::complete_looking_points(dir).empty());
  EXPECT_FALSE(fs::exists(dir / "run.json"));  // pending: never merged
  const SweepStatus status = phase2_status(dir);
  ASSERT_EQ(status.points.size(), 4u);
  EXPECT_EQ(status.points[0].state, PointState::FAILED) << status.points[0].detail;
  EXPECT_NE(status.points[0].detail.find("gone"), std::string::npos) << status.points[0].detail;
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(status.points[i].state, PointState::PENDING);

  // A staged folder a killed point left behind is removed by the merge (which finds nothing to merge here).
  const fs::path leftover = dir / ("." + status.points[0].label + ".partial-999999");
  fs::create_directories(leftover);
  std::ostringstream sink;
  EXPECT_THROW(merge_phase2(dir, true, sink, sink), Error);
  EXPECT_FALSE(fs::exists(leftover));
}

}  // namespace
}  // namespace nlpf
