// Phase 2 in process on the tiny committed checkpoint and the 20 sample sentences: every file of DESIGN §3
// per sweep, lengths above the longest example giving identical predictions, the layer and precision
// refusals before any work (no directory left), errors.json with --skip-failed-precisions, the grid's
// cross product, the baseline's run.json supplying data and length, Ctrl-C, and frontier/plot on the runs.
// The padding and batch-size sweeps: identical predictions in file order, their files, p99 columns and plot,
// frontier flags, refusals of bad values before any work; a merged frontier's padding column.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/precision.h"
#include "core/error.h"
#include "core/file_util.h"
#include "experiment/frontier.h"
#include "experiment/phase1.h"
#include "experiment/phase2.h"
#include "experiment/phase2_steps.h"
#include "experiment/plot.h"
#include "experiment/run_files.h"
#include "experiment/run_plots.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "model/fp8_calibration.h"
#include "test_util.h"
#include "text/batching.h"
#include "text/dataset.h"
#include "text/tokenizer.h"
#include "train/interrupt.h"
#include "train/trainer.h"

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

// A one-epoch Phase 1 of the tiny checkpoint on the sample file, quiet, fast protocol.
Phase1Settings tiny_phase1(const fs::path& runs, Quiet& q) {
  Phase1Settings p1;
  p1.model = kTiny.string();
  p1.data.train_file = kSample.string();
  p1.data.eval_file = kSample.string();
  p1.max_sequence_length = 24;
  p1.batch_size = 4;
  p1.epochs = 1;
  p1.device = "cpu";
  p1.runs_dir = runs.string();
  p1.protocol.trials = 1;
  p1.protocol.min_trial_seconds = 0.01;
  p1.protocol.idle_seconds = 0.01;
  p1.protocol.warmup_min_seconds = 0.01;
  p1.quiet = true;
  p1.out = &q.out;
  p1.log = &q.log;
  return p1;
}

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

// sample.tsv's labels in file order (they alternate 1, 0, 1, ...).
std::vector<int> sample_labels() {
  std::vector<int> labels;
  for (const Example& e : read_dataset(kSample).examples) labels.push_back(e.label);
  return labels;
}

// A baseline whose predictions on the sample mix both classes in no simple pattern (the tiny checkpoint
// predicts 0 throughout, so a prediction written at another example's place would not show): the tiny
// config with a wider initialisation, seed 17, saved under `parent`. `alone` holds the prediction of every
// example evaluated by itself (batch of 1, no padding), in file order.
struct MixedBaseline {
  fs::path directory;
  std::vector<int32_t> alone;
};

MixedBaseline mixed_baseline(const fs::path& parent) {
  BertConfig config = BertConfig::load(kTiny / "config.json");
  config.initializer_range = 0.5;
  BertForSequenceClassification model(config, 17);
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(kTiny);
  const TokenizedDataset tokens = tokenize_dataset(read_dataset(kSample), tokenizer, 32, false);
  MixedBaseline baseline{parent / "mixed_baseline",
                         evaluate_classifier(model, tokens, 1, 32, PaddingMode::LONGEST).predictions};
  save_checkpoint(baseline.directory, config, model.to_checkpoint_tensors(), tokenizer.vocab(),
                  tokenizer.options().do_lower_case);
  const auto ones = std::count(baseline.alone.begin(), baseline.alone.end(), 1);
  EXPECT_TRUE(ones >= 5 && ones <= 15) << ones << " of 20 predicted positive";
  return baseline;
}

// predictions.jsonl holds one line per example in file order: the file's label and that example's own
// prediction (`alone`; empty: not checked).
void expect_file_order(const std::vector<json>& predictions, const std::string& where,
                       const std::vector<int32_t>& alone = {}) {
  const std::vector<int> labels = sample_labels();
  ASSERT_EQ(predictions.size(), labels.size()) << where;
  for (size_t i = 0; i < labels.size(); ++i) {
    EXPECT_EQ(predictions[i]["label"], labels[i]) << where << " line " << i + 1;
    if (!alone.empty()) {
      EXPECT_EQ(predictions[i]["prediction"], alone[i]) << where << " line " << i + 1;
    }
  }
}

// Where every row has the same accuracy, the frontier is the cheapest row alone (by the run's cost axis).
void expect_frontier_is_the_cheapest(const ParetoFile& pareto) {
  ASSERT_FALSE(pareto.rows.empty());
  double cheapest = 1e300;
  for (const ParetoRow& row : pareto.rows) {
    ASSERT_EQ(row.metrics["accuracy"], pareto.rows[0].metrics["accuracy"]) << row.label;
    cheapest = std::min(cheapest, row.metrics[pareto.frontier_cost].get<double>());
  }
  for (size_t i = 0; i < pareto.rows.size(); ++i) {
    ASSERT_TRUE(pareto.on_frontier[i].has_value()) << pareto.rows[i].label;
    EXPECT_EQ(*pareto.on_frontier[i], pareto.rows[i].metrics[pareto.frontier_cost].get<double>() == cheapest)
        << pareto.rows[i].label;
  }
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
  // The GPU engine's choices are null on the CPU, which pads to the batch's longest example itself.
  EXPECT_EQ(run_json["config"]["padding_length_multiple"], 1);
  EXPECT_TRUE(run_json["config"]["gpu_last_layer"].is_null());
  EXPECT_TRUE(run_json["config"]["gpu_f32_residual"].is_null());
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
  // fp8 on the CPU: refused with the reason (no fp8 tensor cores) before any work: no calibration either
  // (the run has no training split, which an fp8 point that ran would need).
  EXPECT_EQ(errors[1]["point"], "precision_fp8");
  EXPECT_EQ(errors[1]["stage"], "refused");
  EXPECT_NE(errors[1]["error"].get<std::string>().find("CPU"), std::string::npos) << errors.dump();
  EXPECT_TRUE(fs::exists(result.run_directory / "precision_fp32" / "metrics.json"));
  EXPECT_FALSE(fs::exists(result.run_directory / "precision_fp16"));
  for (const auto& entry : fs::directory_iterator(result.run_directory)) {
    EXPECT_EQ(entry.path().filename().string().find("fp8_calibration"), std::string::npos) << entry.path();
  }
  EXPECT_EQ(json::parse(read_file(result.run_directory / "run.json"))["config"]["calibration_batches"], 8);
  EXPECT_EQ(json::parse(read_file(result.run_directory / "run.json"))["config"]["fp8_weight_scales"],
            "tensor");
}

// --fp8-weight-scales: validated when the sweep is planned (one clear error naming the option), and stored
// with the run (run.json's config; each fp8 point's metrics.json names it too, on a GPU).
TEST(Phase2, Fp8WeightScalesAreValidatedAndStoredWithTheRun) {
  const TempDir temp("phase2_fp8_weight_scales");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::PRECISION, q);
  s.precisions = {"fp32", "fp8"};
  s.skip_failed_precisions = true;
  s.fp8_weight_scales = "row";
  std::string message;
  EXPECT_EQ(code_of([&] { plan_phase2(s); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("--fp8-weight-scales row"), std::string::npos) << message;
  s.fp8_weight_scales = "channel";
  const Phase2Result result = run_phase2(s);
  EXPECT_EQ(result.points_measured, 1);  // fp8 refused on the CPU, as per tensor
  EXPECT_EQ(json::parse(read_file(result.run_directory / "run.json"))["config"]["fp8_weight_scales"],
            "channel");
}

// fp8's activation scales in a sweep (phase2_steps.h): calibrated once per (length, layers) on the training
// split, written into the run directory, read back by every later fp8 point (and by the other processes of a
// scaled-out sweep), and the same when computed again (seeded).
TEST(Phase2, Fp8CalibrationIsStoredWithTheRunAndReused) {
  const TempDir temp("phase2_fp8_calibration");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::GRID, q);
  s.precisions = {"fp8"};
  s.num_layers = {1};
  s.data.train_file = kSample.string();
  s.calibration_batches = 2;
  const Phase2Plan plan = plan_phase2(s);
  ASSERT_EQ(plan.points.size(), 1u);
  const Phase2Point& point = plan.points[0];
  const Phase2Inputs in = load_phase2_inputs(plan, plan.points);
  ASSERT_TRUE(in.train_by_length.count(32));
  BertForSequenceClassification model(load_checkpoint(kTiny, {.quiet = true}));
  model.truncate_layers(1);
  const fs::path dir = temp.path();
  EXPECT_EQ(fp8_calibration_file_name(plan, point), "fp8_calibration-length_32-layers_1.json");
  const Fp8Calibration first = fp8_calibration_for_point(plan, in, model, point, dir);
  const fs::path file = dir / fp8_calibration_file_name(plan, point);
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(first.examples, std::min<int64_t>(2 * 8, in.train_by_length.at(32).size()));
  EXPECT_EQ(first.seed, in.recipe.seed);
  EXPECT_TRUE(first.amax.count("layer.0.qkv"));
  EXPECT_FALSE(first.amax.count("layer.1.qkv"));  // the truncated model's sites only
  // Reused, not recomputed: a value changed in the file comes back.
  json stored = json::parse(read_file(file));
  stored["amax"]["layer.0.qkv"] = 123.0;
  write_file_atomic(file, stored.dump());
  EXPECT_FLOAT_EQ(fp8_calibration_for_point(plan, in, model, point, dir).amax.at("layer.0.qkv"), 123.0f);
  // A file calibrated with other settings (another run's) is refused, not used.
  stored["seed"] = in.recipe.seed + 1;
  write_file_atomic(file, stored.dump());
  std::string other;
  EXPECT_EQ(code_of([&] { fp8_calibration_for_point(plan, in, model, point, dir); }, other),
            ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(other.find("another run"), std::string::npos) << other;
  // Deterministic: computed again from scratch, the same scales.
  fs::remove(file);
  EXPECT_EQ(fp8_calibration_for_point(plan, in, model, point, dir).amax, first.amax);
  // A calibration needs the training split.
  Phase2Settings no_train = s;
  no_train.data.train_file.clear();
  const Phase2Plan plan_without = plan_phase2(no_train);
  std::string message;
  EXPECT_EQ(code_of([&] { load_phase2_inputs(plan_without, plan_without.points); }, message),
            ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("--train-file"), std::string::npos) << message;
  EXPECT_NE(message.find("fp8"), std::string::npos) << message;
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
  s.batch_sizes = {4, 20};
  const Phase2Result result = run_phase2(s);
  EXPECT_EQ(result.points_measured, 8);
  const ParetoFile pareto = read_pareto_csv(result.run_directory / "pareto.csv");
  EXPECT_EQ(pareto.parameter_columns,
            (std::vector<std::string>{"max_sequence_length", "num_layers", "batch_size"}));
  EXPECT_EQ(pareto.rows[0].label, "max_sequence_length_16-num_layers_2-batch_size_4");
  // The batch size changes the work's shape, never the predictions.
  EXPECT_EQ(read_jsonl(result.run_directory / "max_sequence_length_16-num_layers_1-batch_size_4" /
                       "predictions.jsonl"),
            read_jsonl(result.run_directory / "max_sequence_length_16-num_layers_1-batch_size_20" /
                       "predictions.jsonl"));
}

TEST(Phase2, GridCrossesPaddingsAndBatchSizes) {
  const TempDir temp("phase2_grid_padding");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::GRID, q);
  const MixedBaseline baseline = mixed_baseline(temp.path());
  s.baseline_model_directory = baseline.directory.string();
  s.paddings = {"max-length", "bucketed"};
  s.batch_sizes = {4, 20};
  const Phase2Result result = run_phase2(s);
  ASSERT_EQ(result.points_measured, 4);
  const ParetoFile pareto = read_pareto_csv(result.run_directory / "pareto.csv");
  EXPECT_EQ(pareto.parameter_columns, (std::vector<std::string>{"padding", "batch_size"}));
  std::vector<std::string> labels;
  for (const ParetoRow& row : pareto.rows) labels.push_back(row.label);
  EXPECT_EQ(labels,
            (std::vector<std::string>{"padding_max-length-batch_size_4", "padding_max-length-batch_size_20",
                                      "padding_bucketed-batch_size_4", "padding_bucketed-batch_size_20"}));
  for (const std::string& label : labels) {
    expect_file_order(read_jsonl(result.run_directory / label / "predictions.jsonl"), label, baseline.alone);
  }
  expect_frontier_is_the_cheapest(pareto);
  const json run_json = json::parse(read_file(result.run_directory / "run.json"));
  EXPECT_EQ(run_json["config"]["paddings"], json::array({"max-length", "bucketed"}));
  EXPECT_EQ(run_json["config"]["batch_sizes"], json::array({4, 20}));
  EXPECT_TRUE(run_json["config"]["padding"].is_null());  // no fixed value where the lists replace them
  EXPECT_TRUE(run_json["config"]["eval_batch_size"].is_null());
  EXPECT_EQ(run_json["points"][1]["padding"], "max-length");
  EXPECT_EQ(run_json["points"][1]["eval_batch_size"], 20);
}

TEST(Phase2, PaddingSweepPredictsAlikeInFileOrder) {
  const TempDir temp("phase2_padding");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::PADDING, q);
  const MixedBaseline baseline = mixed_baseline(temp.path());
  s.baseline_model_directory = baseline.directory.string();
  s.eval_batch_size = 4;  // 5 batches: the bucketed ones hold other examples than the file's consecutive ones
  {
    const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(kTiny);
    const TokenizedDataset tokens = tokenize_dataset(read_dataset(kSample), tokenizer, 32, false);
    ASSERT_NE(evaluation_order(tokens, 4, PaddingMode::BUCKETED), sequential_order(tokens.size()));
  }
  const Phase2Result result = run_phase2(s);  // no list given: max-length longest bucketed
  ASSERT_EQ(result.points_measured, 3);
  const fs::path run = result.run_directory;
  EXPECT_NE(run.filename().string().find("_phase_2_padding_sweep"), std::string::npos) << run;
  for (const char* file : {"pareto.csv", "run.json"}) EXPECT_TRUE(fs::exists(run / file)) << file;
  const std::vector<std::string> points = {"padding_max-length", "padding_longest", "padding_bucketed"};
  for (const std::string& point : points) {
    for (const char* file : {"metrics.json", "power_trace.csv", "predictions.jsonl"}) {
      EXPECT_TRUE(fs::exists(run / point / file)) << point << "/" << file;
    }
  }
  // fp32 on the CPU: the padding is masked, so the three predict alike, each line at its example's place
  // (bucketed batches ran longest first).
  for (const std::string& point : points) {
    expect_file_order(read_jsonl(run / point / "predictions.jsonl"), point, baseline.alone);
  }

  const json metrics = json::parse(read_file(run / "padding_bucketed" / "metrics.json"));
  EXPECT_EQ(metrics["point"]["padding"], "bucketed");
  const ParetoFile pareto = read_pareto_csv(run / "pareto.csv");
  EXPECT_EQ(pareto.parameter_columns, std::vector<std::string>{"padding"});
  ASSERT_EQ(pareto.rows.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(pareto.rows[i].label, points[i]);
    EXPECT_EQ(pareto.rows[i].parameters[0].second, points[i].substr(std::string("padding_").size()));
  }
  expect_frontier_is_the_cheapest(pareto);
  const json run_json = json::parse(read_file(run / "run.json"));
  EXPECT_EQ(run_json["config"]["sweep"], "padding");
  EXPECT_TRUE(run_json["plots"].contains("energy_accuracy_padding.png")) << run_json["plots"].dump();
}

TEST(Phase2, BatchSizeSweepHasP99ColumnsPlotAndFrontier) {
  const TempDir temp("phase2_batch_size");
  Quiet q;
  Phase2Settings s = tiny_phase2(temp.path(), SweepKind::BATCH_SIZE, q);
  const MixedBaseline baseline = mixed_baseline(temp.path());
  s.baseline_model_directory = baseline.directory.string();
  s.batch_sizes = {1, 8, 32};  // 32 > 20 examples: one batch of 20
  const Phase2Result result = run_phase2(s);
  ASSERT_EQ(result.points_measured, 3);
  const fs::path run = result.run_directory;
  EXPECT_NE(run.filename().string().find("_phase_2_batch_size_sweep"), std::string::npos) << run;
  for (const char* point : {"batch_size_1", "batch_size_8", "batch_size_32"}) {
    expect_file_order(read_jsonl(run / point / "predictions.jsonl"), point, baseline.alone);
  }
  const json metrics = json::parse(read_file(run / "batch_size_8" / "metrics.json"));
  EXPECT_EQ(metrics["point"]["eval_batch_size"], 8);
  EXPECT_EQ(metrics["point"]["padding"], "bucketed");

  const std::string csv = read_file(run / "pareto.csv");
  EXPECT_EQ(csv.rfind("label,batch_size,accuracy,", 0), 0u) << csv;
  const ParetoFile pareto = read_pareto_csv(run / "pareto.csv");
  EXPECT_EQ(pareto.parameter_columns, std::vector<std::string>{"batch_size"});
  for (const ParetoRow& row : pareto.rows) {
    for (const char* key : {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms"}) {
      ASSERT_TRUE(row.metrics[key].is_number()) << row.label << " " << key;
    }
    EXPECT_LE(row.metrics["latency_p50_ms"].get<double>(), row.metrics["latency_p99_ms"].get<double>());
  }
  expect_frontier_is_the_cheapest(pareto);
  // The latency plot of this sweep shows p99 batch latency, and is drawn even without an energy reading.
  EXPECT_EQ(latency_axis(pareto.rows), "latency_p99_ms");
  const json run_json = json::parse(read_file(run / "run.json"));
  EXPECT_EQ(run_json["config"]["sweep"], "batch_size");
  const json plot = run_json["plots"]["energy_latency_batch_size.png"];
  if (plots_available()) {
    EXPECT_EQ(plot, "written");
    EXPECT_GT(fs::file_size(run / "energy_latency_batch_size.png"), 1000u);
  } else {
    EXPECT_NE(plot.get<std::string>().find("PLplot"), std::string::npos) << plot;
  }
}

TEST(Phase2, BadPaddingOrBatchSizeRefusedBeforeAnyWork) {
  struct Case {
    SweepKind sweep;
    std::function<void(Phase2Settings&)> set;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {SweepKind::BATCH_SIZE,
       [](Phase2Settings& s) {
         s.batch_sizes = {8, 0};
       },
       "--batch-sizes 0"},
      {SweepKind::GRID, [](Phase2Settings& s) { s.batch_sizes = {0}; }, "--batch-sizes 0"},
      {SweepKind::LAYERS, [](Phase2Settings& s) { s.eval_batch_size = 0; }, "--eval-batch-size 0"},
      {SweepKind::PADDING,
       [](Phase2Settings& s) {
         s.paddings = {"bucketed", "fast"};
       },
       "--paddings fast"},
      {SweepKind::GRID, [](Phase2Settings& s) { s.paddings = {"max_length"}; }, "--paddings max_length"},
      {SweepKind::MAX_SEQUENCE_LENGTH, [](Phase2Settings& s) { s.padding = "fast"; }, "--padding fast"},
      {SweepKind::PADDING,
       [](Phase2Settings& s) {
         s.paddings = {"longest", "longest"};
       },
       "lists longest twice"},
  };
  for (const Case& c : cases) {
    const TempDir temp("phase2_bad_value");
    Quiet q;
    Phase2Settings s = tiny_phase2(temp.path(), c.sweep, q);
    c.set(s);
    std::string message;
    EXPECT_EQ(code_of([&] { run_phase2(s); }, message), ErrorCode::INVALID_ARGUMENT) << c.expected;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    EXPECT_TRUE(fs::is_empty(temp.path())) << c.expected;
  }
}

TEST(Phase1, PaddingIsRecordedAndAnUnknownOneRefusedBeforeAnyWork) {
  const TempDir temp("phase1_padding");
  Quiet q;
  Phase1Settings p1 = tiny_phase1(temp.path(), q);
  p1.padding = "fast";
  std::string message;
  EXPECT_EQ(code_of([&] { run_phase1(p1); }, message), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(message.find("--padding fast"), std::string::npos) << message;
  EXPECT_TRUE(fs::is_empty(temp.path()));

  p1.padding = "max-length";
  const Phase1Result result = run_phase1(p1);
  const json run_json = json::parse(read_file(result.run_directory / "run.json"));
  EXPECT_EQ(run_json["config"]["padding"], "max-length");
  expect_file_order(read_jsonl(result.run_directory / "predictions.jsonl"), "phase1");
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
  Phase1Settings p1 = tiny_phase1(temp.path(), q);
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

TEST(Frontier, MergedRunsOfDifferentPaddingsGetAPaddingColumn) {
  const TempDir temp("frontier_padding");
  Quiet q;
  std::vector<fs::path> runs;
  for (const char* padding : {"max-length", "bucketed", "bucketed"}) {
    // One runs folder per run: two runs started in the same second would want the same name.
    Phase2Settings s = tiny_phase2(temp.path() / std::to_string(runs.size()), SweepKind::LAYERS, q);
    s.num_layers = {1};
    s.padding = padding;
    runs.push_back(run_phase2(s).run_directory);
    const json run_json = json::parse(read_file(runs.back() / "run.json"));
    EXPECT_EQ(run_json["config"]["padding"], padding);
  }
  FrontierSettings f;
  f.runs_dir = (temp.path() / "merged").string();
  f.out = &q.out;
  f.quiet = true;
  f.run_directories = {runs[0], runs[1]};
  const ParetoFile mixed = read_pareto_csv(merge_frontier(f) / "pareto.csv");
  EXPECT_EQ(mixed.parameter_columns, (std::vector<std::string>{"source_run", "padding", "num_layers"}));
  ASSERT_EQ(mixed.rows.size(), 2u);
  EXPECT_EQ(mixed.rows[0].parameters[1].second, "max-length");
  EXPECT_EQ(mixed.rows[1].parameters[1].second, "bucketed");
  // One padding throughout: nothing to tell apart, no column.
  f.runs_dir = (temp.path() / "merged_same").string();
  f.run_directories = {runs[1], runs[2]};
  const ParetoFile same = read_pareto_csv(merge_frontier(f) / "pareto.csv");
  EXPECT_EQ(same.parameter_columns, (std::vector<std::string>{"source_run", "num_layers"}));
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
