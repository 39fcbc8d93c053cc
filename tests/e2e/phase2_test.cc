// Phase 2 in process on the tiny committed checkpoint and the 20 sample sentences: every file of DESIGN §3
// per sweep, lengths above the longest example giving identical predictions, the layer and precision
// refusals before any work (no directory left), errors.json with --skip-failed-precisions, the grid's
// cross product, the baseline's run.json supplying data and length, Ctrl-C, and frontier/plot on the runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/precision.h"
#include "core/error.h"
#include "core/file_util.h"
#include "experiment/frontier.h"
#include "experiment/phase1.h"
#include "experiment/phase2.h"
#include "experiment/run_files.h"
#include "test_util.h"
#include "train/interrupt.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing_util::TempDir;
const fs::path kTiny = fs::path(NLPF_TEST_DATA) / "checkpoint" / "tiny";
const fs::path kSample = fs::path(NLPF_TEST_DATA) / "text" / "sample.tsv";

struct Quiet {
  std::ostringstream out, log;
};

Phase2Settings tiny_phase2(const fs::path& runs, SweepKind sweep, Quiet& q) {
  Phase2Settings s;
  s.sweep = sweep;
  s.baseline_model_directory = kTiny.string();
  s.data.eval_file = kSample.string();
  s.device = "cpu";
  s.runs_dir = runs.string();
  s.max_sequence_length = 32;
  s.eval_batch_size = 8;
  s.protocol.trials = 2;
  s.protocol.min_trial_seconds = 0.01;
  s.protocol.idle_seconds = 0.01;
  s.protocol.warmup_min_seconds = 0.01;
  s.quiet = true;
  s.out = &q.out;
  s.log = &q.log;
  return s;
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::vector<json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) rows.push_back(json::parse(line));
  return rows;
}

template <typename F>
ErrorCode code_of(F&& f, std::string& message) {
  try {
    f();
  } catch (const Error& e) {
    message = e.what();
    return e.code();
  }
  message.clear();
  return ErrorCode::INTERNAL;  // "no error" is reported as INTERNAL, which no case below expects
}

TEST(Phase2, DefaultListsFollowTheStudyAndTheModel) {
  BertConfig config;
  config.num_hidden_layers = 12;
  config.max_position_embeddings = 512;
  EXPECT_EQ(default_num_layers(config), (std::vector<int64_t>{12, 10, 8, 6, 4, 2}));
  EXPECT_EQ(default_sequence_lengths(config), (std::vector<int64_t>{128, 96, 64, 48, 40, 32, 24, 16}));
  config.num_hidden_layers = 6;
  config.max_position_embeddings = 64;
  EXPECT_EQ(default_num_layers(config), (std::vector<int64_t>{6, 4, 2}));
  EXPECT_EQ(default_sequence_lengths(config), (std::vector<int64_t>{64, 48, 40, 32, 24, 16}));
  config.num_hidden_layers = 1;
  EXPECT_EQ(default_num_layers(config), (std::vector<int64_t>{1}));
}

TEST(Phase2, SequenceSweepWritesEveryFileAndLongLengthsAgree) {
  const TempDir temp("phase2_length");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::MAX_SEQUENCE_LENGTH, q);
  s.sequence_lengths = {32, 30, 4};  // the sample's longest sentence is shorter than 30 tokens
  const Phase2Result result = run_phase2(s);
  EXPECT_EQ(result.points_measured, 3);
  EXPECT_EQ(result.points_failed, 0);
  const fs::path run = result.run_directory;
  EXPECT_NE(run.filename().string().find("_phase_2_sequence_length_sweep"), std::string::npos) << run;
  for (const char* file : {"pareto.csv", "run.json"}) EXPECT_TRUE(fs::exists(run / file)) << file;
  EXPECT_FALSE(fs::exists(run / "errors.json"));
  for (const char* point : {"max_sequence_length_32", "max_sequence_length_30", "max_sequence_length_4"}) {
    for (const char* file : {"metrics.json", "power_trace.csv", "predictions.jsonl"}) {
      EXPECT_TRUE(fs::exists(run / point / file)) << point << "/" << file;
    }
  }
  const auto p32 = read_jsonl(run / "max_sequence_length_32" / "predictions.jsonl");
  const auto p30 = read_jsonl(run / "max_sequence_length_30" / "predictions.jsonl");
  ASSERT_EQ(p32.size(), 20u);
  EXPECT_EQ(p32, p30);  // nothing is truncated at 30 or 32, so the model sees the same inputs

  const json m4 = json::parse(read_file(run / "max_sequence_length_4" / "metrics.json"));
  EXPECT_EQ(m4["point"]["max_sequence_length"], 4);
  EXPECT_EQ(m4["point"]["truncated_examples"], 20);  // every sentence has more than 2 word pieces
  EXPECT_TRUE(m4["inference_benchmark_metrics"]["accuracy"].is_number());

  const ParetoFile pareto = read_pareto_csv(run / "pareto.csv");
  EXPECT_EQ(pareto.parameter_columns, std::vector<std::string>{"max_sequence_length"});
  ASSERT_EQ(pareto.rows.size(), 3u);
  EXPECT_EQ(pareto.rows[2].label, "max_sequence_length_4");
  EXPECT_EQ(pareto.rows[2].parameters[0].second, 4);
  int on_frontier = 0;
  for (const auto& flag : pareto.on_frontier) on_frontier += flag.value_or(false);
  EXPECT_GE(on_frontier, 1);

  const json run_json = json::parse(read_file(run / "run.json"));
  EXPECT_EQ(run_json["command"], "phase2");
  EXPECT_EQ(run_json["config"]["sweep"], "max_sequence_length");
  EXPECT_EQ(run_json["points"].size(), 3u);
  EXPECT_TRUE(run_json["environment"].contains("nlpf_commit"));
}

TEST(Phase2, LayersSweepKeepsTheFirstLayersAndAllLayersIsTheBaseline) {
  const TempDir temp("phase2_layers");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::LAYERS, q);
  s.num_layers = {2, 1};
  const Phase2Result result = run_phase2(s);
  ASSERT_EQ(result.points_measured, 2);
  const json m2 = json::parse(read_file(result.run_directory / "num_layers_2" / "metrics.json"));
  const json m1 = json::parse(read_file(result.run_directory / "num_layers_1" / "metrics.json"));
  EXPECT_EQ(m2["point"]["num_layers"], 2);
  EXPECT_EQ(m1["point"]["num_layers"], 1);
  EXPECT_EQ(m1["point"]["refit_epochs"], 0);
  // Fewer layers hold fewer parameters: the host allocator's peak must shrink.
  EXPECT_LT(m1["inference_benchmark_metrics"]["peak_memory_mb"].get<double>(),
            m2["inference_benchmark_metrics"]["peak_memory_mb"].get<double>());
}

TEST(Phase2, RefitRetrainsOnlyTruncatedModels) {
  const TempDir temp("phase2_refit");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::LAYERS, q);
  s.data.train_file = kSample.string();
  s.num_layers = {2, 1};
  s.refit_epochs = 1;
  const Phase2Result result = run_phase2(s);
  ASSERT_EQ(result.points_measured, 2);
  const json m2 = json::parse(read_file(result.run_directory / "num_layers_2" / "metrics.json"));
  const json m1 = json::parse(read_file(result.run_directory / "num_layers_1" / "metrics.json"));
  EXPECT_EQ(m2["point"]["refit_epochs"], 0);  // all layers kept: the baseline itself
  EXPECT_EQ(m1["point"]["refit_epochs"], 1);
  const json run_json = json::parse(read_file(result.run_directory / "run.json"));
  EXPECT_EQ(run_json["config"]["refit_recipe"]["learning_rate"], 3e-5);
  EXPECT_EQ(run_json["data"]["train"]["examples_used"], 20);

  // Without training data a refit cannot run: refused before any work.
  const TempDir temp2("phase2_refit_no_train");
  Phase2Settings bad = tiny_phase2(temp2.path(), SweepKind::LAYERS, q);
  bad.num_layers = {1};
  bad.refit_epochs = 1;
  std::string message;
  EXPECT_EQ(code_of([&] { run_phase2(bad); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("--train-file"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(temp2.path()));
}

TEST(Phase2, MoreLayersThanTheModelIsRefusedBeforeAnyWork) {
  const TempDir temp("phase2_too_many");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::LAYERS, q);
  s.num_layers = {3, 1};
  std::string message;
  EXPECT_EQ(code_of([&] { run_phase2(s); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("--num-layers 3"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(temp.path()));
}

TEST(Phase2, LengthAboveThePositionTableIsRefused) {
  const TempDir temp("phase2_too_long");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::MAX_SEQUENCE_LENGTH, q);
  s.sequence_lengths = {64};
  std::string message;
  EXPECT_EQ(code_of([&] { run_phase2(s); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("--sequence-lengths 64"), std::string::npos) << message;
  EXPECT_NE(message.find("max_position_embeddings"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(temp.path()));
}

TEST(Phase2, UnsupportedPrecisionRefusedBeforeAnyWorkUnlessSkipped) {
  const TempDir temp("phase2_precision");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::PRECISION, q);
  s.precisions = {"fp32", "fp16", "fp8"};
  std::string message;
  EXPECT_EQ(code_of([&] { run_phase2(s); }, message), ErrorCode::UNSUPPORTED);
  EXPECT_NE(message.find("--precisions fp16"), std::string::npos) << message;
  EXPECT_NE(message.find("--skip-failed-precisions"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(temp.path()));

  s.skip_failed_precisions = true;
  const Phase2Result result = run_phase2(s);
  EXPECT_EQ(result.points_measured, 1);
  EXPECT_EQ(result.points_failed, 2);
  const json errors = json::parse(read_file(result.run_directory / "errors.json"));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0]["point"], "precision_fp16");
  EXPECT_EQ(errors[0]["stage"], "refused");
  EXPECT_NE(errors[1]["error"].get<std::string>().find("fp8"), std::string::npos) << errors.dump();
  EXPECT_TRUE(fs::exists(result.run_directory / "precision_fp32" / "metrics.json"));
  EXPECT_FALSE(fs::exists(result.run_directory / "precision_fp16"));
}

TEST(Phase2, Bf16RunsWhereTheCpuHasItAndStaysCloseToFp32) {
  if (const auto reason = precision_unsupported_reason(cpu_description(), Precision::BF16)) {
    GTEST_SKIP() << "bf16 not available here: " << *reason;
  }
  const TempDir temp("phase2_bf16");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::PRECISION, q);
  s.precisions = {"fp32", "bf16"};
  const Phase2Result result = run_phase2(s);
  ASSERT_EQ(result.points_measured, 2);
  const auto fp32 = read_jsonl(result.run_directory / "precision_fp32" / "predictions.jsonl");
  const auto bf16 = read_jsonl(result.run_directory / "precision_bf16" / "predictions.jsonl");
  ASSERT_EQ(fp32.size(), bf16.size());
  int differ = 0;
  for (size_t i = 0; i < fp32.size(); ++i) differ += fp32[i] != bf16[i];
  EXPECT_LE(differ, 2) << "bf16 changed " << differ << " of 20 predictions";
  const json m = json::parse(read_file(result.run_directory / "precision_bf16" / "metrics.json"));
  EXPECT_EQ(m["point"]["precision"], "bf16");
  EXPECT_TRUE(m["inference_benchmark_metrics"]["accuracy"].is_number());
}

TEST(Phase2, EveryPrecisionRefusedIsAnErrorWithNoDirectory) {
  const TempDir temp("phase2_none");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::PRECISION, q);
  s.precisions = {"fp8", "int8"};
  s.skip_failed_precisions = true;
  std::string message;
  EXPECT_EQ(code_of([&] { run_phase2(s); }, message), ErrorCode::UNSUPPORTED);
  EXPECT_NE(message.find("every point was refused"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(temp.path()));
}

TEST(Phase2, GridCrossesOnlyTheListsGiven) {
  const TempDir temp("phase2_grid");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::GRID, q);
  std::string message;
  EXPECT_EQ(code_of([&] { run_phase2(s); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("at least one of"), std::string::npos) << message;

  s.sequence_lengths = {16, 8};
  s.num_layers = {2, 1};
  s.eval_batch_sizes = {4, 20};
  const Phase2Result result = run_phase2(s);
  EXPECT_EQ(result.points_measured, 8);
  const ParetoFile pareto = read_pareto_csv(result.run_directory / "pareto.csv");
  EXPECT_EQ(pareto.parameter_columns,
            (std::vector<std::string>{"max_sequence_length", "num_layers", "eval_batch_size"}));
  EXPECT_EQ(pareto.rows[0].label, "max_sequence_length_16-num_layers_2-eval_batch_size_4");
  // The batch size changes the work's shape, never the predictions.
  EXPECT_EQ(read_jsonl(result.run_directory / "max_sequence_length_16-num_layers_1-eval_batch_size_4" /
                       "predictions.jsonl"),
            read_jsonl(result.run_directory / "max_sequence_length_16-num_layers_1-eval_batch_size_20" /
                       "predictions.jsonl"));
}

TEST(Phase2, CtrlCLeavesNoRunDirectory) {
  const TempDir temp("phase2_interrupt");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::LAYERS, q);
  s.num_layers = {2, 1};
  s.on_point = [](const std::string& label) {
    if (label == "num_layers_1") interrupt_flag().store(true);  // after the first point was written
  };
  std::string message;
  const ErrorCode code = code_of([&] { run_phase2(s); }, message);
  interrupt_flag().store(false);
  EXPECT_EQ(code, ErrorCode::INTERRUPTED) << message;
  EXPECT_TRUE(fs::is_empty(temp.path())) << "left behind: " << fs::directory_iterator(temp.path())->path();
}

TEST(Phase2, BaselineRunJsonSuppliesDataAndLengthThenFrontierAndPlotReadTheRuns) {
  const TempDir temp("phase2_from_phase1");
  Quiet q;
  Phase1Settings p1;
  p1.model = kTiny.string();
  p1.data.train_file = kSample.string();
  p1.data.eval_file = kSample.string();
  p1.max_sequence_length = 24;
  p1.batch_size = 4;
  p1.epochs = 1;
  p1.device = "cpu";
  p1.runs_dir = temp.path().string();
  p1.protocol.trials = 1;
  p1.protocol.min_trial_seconds = 0.01;
  p1.protocol.idle_seconds = 0.01;
  p1.protocol.warmup_min_seconds = 0.01;
  p1.quiet = true;
  p1.out = &q.out;
  p1.log = &q.log;
  const Phase1Result baseline = run_phase1(p1);

  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::LAYERS, q);
  s.baseline_model_directory = (baseline.run_directory / "best_model").string();
  s.data = DataSettings{};  // nothing given: run.json names the evaluation file
  s.max_sequence_length.reset();
  s.num_layers = {1};
  const Phase2Result layers = run_phase2(s);
  const json run_json = json::parse(read_file(layers.run_directory / "run.json"));
  EXPECT_EQ(run_json["config"]["max_sequence_length"], 24);
  EXPECT_EQ(run_json["data"]["eval"]["path"], fs::absolute(kSample).string());
  EXPECT_TRUE(run_json["config"]["baseline_run_json"].is_string());

  FrontierSettings f;
  f.run_directories = {baseline.run_directory, layers.run_directory};
  f.runs_dir = (temp.path() / "merged").string();
  f.out = &q.out;
  const fs::path merged = merge_frontier(f);
  const ParetoFile pareto = read_pareto_csv(merged / "pareto.csv");
  ASSERT_EQ(pareto.rows.size(), 2u);  // one epoch + one layer point
  EXPECT_EQ(pareto.rows[0].label, "phase1/epoch_1");
  EXPECT_EQ(pareto.rows[1].label, "layers/num_layers_1");
  EXPECT_EQ(pareto.parameter_columns[0], "source_run");

  const std::vector<std::string> lines = redraw_plots(layers.run_directory);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("energy_accuracy_layers.png"), std::string::npos) << lines[0];
}

TEST(Frontier, RefusesRunsOfDifferentTasksOrUnfinishedDirectories) {
  const TempDir temp("frontier_refuse");
  fs::create_directories(temp.path() / "a");
  fs::create_directories(temp.path() / "b");
  const json a = {{"command", "phase2"},
                  {"config", {{"sweep", "layers"}, {"task", "sst2"}, {"baseline_model_directory", "/m"}}},
                  {"environment", {{"device", "cpu"}, {"device_name", "x"}}}};
  json b = a;
  b["config"]["task"] = "mnli";
  write_file_atomic(temp.path() / "a" / "run.json", a.dump());
  write_file_atomic(temp.path() / "b" / "run.json", b.dump());
  const std::string csv =
      "label,num_layers,accuracy,average_latency_per_example_ms,energy_per_example_j,energy_per_correct_j,"
      "peak_gpu_memory_mb,on_frontier,frontier_cost\nnum_layers_1,1,0.5,2,,,,1,average_latency_per_example_"
      "ms\n";
  write_file_atomic(temp.path() / "a" / "pareto.csv", csv);
  write_file_atomic(temp.path() / "b" / "pareto.csv", csv);
  FrontierSettings f;
  f.run_directories = {temp.path() / "a", temp.path() / "b"};
  f.runs_dir = (temp.path() / "out").string();
  std::ostringstream out;
  f.out = &out;
  std::string message;
  EXPECT_EQ(code_of([&] { merge_frontier(f); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("task 'mnli'"), std::string::npos) << message;
  f.run_directories = {temp.path() / "a", temp.path()};
  EXPECT_EQ(code_of([&] { merge_frontier(f); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("no run.json"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(temp.path() / "out") && !fs::is_empty(temp.path() / "out"));
}

}  // namespace
}  // namespace nlpf
