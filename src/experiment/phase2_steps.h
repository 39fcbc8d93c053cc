// The steps of `nlpf phase2`, shared by the local sweep (phase2.cc) and the scaled-out one
// (phase2_scale_out.cc: Slurm job arrays, one process per device): plan the points (no device needed), refuse
// what a device cannot run, load the data, measure one point into its own folder (staged, metrics.json
// written last, renamed into place: a folder named after a point is complete), and finish a run directory
// from its measured points (pareto.csv, plots, errors.json, run.json last).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/context.h"
#include "backend/device.h"
#include "experiment/data_settings.h"
#include "experiment/phase2.h"
#include "experiment/run_files.h"
#include "measure/energy_meter.h"
#include "measure/power_sampler.h"
#include "model/bert_config.h"
#include "model/bert_model.h"
#include "model/fp8_calibration.h"
#include "text/batching.h"
#include "text/dataset.h"
#include "text/tokenizer.h"
#include "train/trainer.h"

namespace nlpf {

// One configuration to measure.
struct Phase2Point {
  int64_t max_sequence_length = 0;
  int64_t num_layers = 0;
  std::string precision;
  std::string padding;  // padding_name spelling
  int64_t eval_batch_size = 0;
  std::string label;                                               // also the point's folder name
  std::vector<std::pair<std::string, nlohmann::json>> parameters;  // pareto.csv's parameter columns
};

// What a sweep will measure, decided without touching a device (a Slurm login node may have none).
struct Phase2Plan {
  Phase2Settings settings;
  std::filesystem::path model_dir;
  BertConfig config;
  nlohmann::json baseline_run;  // the baseline's Phase 1 run.json, or null
  std::filesystem::path baseline_run_path;
  int64_t fixed_length = 128;
  bool refit = false;
  std::vector<Phase2Point> points;  // every point, in the sweep's order
};

// Every check that needs no device (options, lists, the baseline's config), then the points. Errors as
// run_phase2's INVALID_ARGUMENT and IO.
Phase2Plan plan_phase2(const Phase2Settings& settings);

// The points `description` can run; the others go to `errors` (stage "refused") when
// settings.skip_failed_precisions, else UNSUPPORTED naming the precision. Notices go to `log` unless quiet.
std::vector<Phase2Point> refuse_unsupported_points(const Phase2Plan& plan,
                                                   const DeviceDescription& description,
                                                   nlohmann::json& errors, std::ostream& log);

// The data every point reads: the evaluation set (tokenized once per length of `points`) and, for a refit,
// the training set and the baseline's recipe.
struct Phase2Inputs {
  DataSettings data;
  DataFiles files;
  TrainerOptions recipe;
  std::optional<WordPieceTokenizer> tokenizer;
  Dataset eval_set;
  Dataset train_set;
  std::map<int64_t, TokenizedDataset> eval_by_length;
  // The training set tokenised per length of an fp8 point: fp8's calibration data (needs a training split).
  std::map<int64_t, TokenizedDataset> train_by_length;
};
Phase2Inputs load_phase2_inputs(const Phase2Plan& plan, const std::vector<Phase2Point>& points);

// The device side of a sweep, shared by consecutive points: meter, sampler (started), and on a GPU one
// execution context (each point's engine is freed before the next).
struct PointMeasurer {
  Device device;
  DeviceDescription description;
  std::unique_ptr<EnergyMeter> meter;
  std::unique_ptr<ExecutionContext> gpu;
  std::unique_ptr<PowerSampler> sampler;
};
PointMeasurer make_point_measurer(Device device);

// metrics.json's "device" block: host, device, its name, and the GPU's name and UUID (null with the reason
// on the CPU). Points whose device names differ never share a frontier.
nlohmann::json point_device_json(const PointMeasurer& measurer);

struct MeasuredPoint {
  ParetoRow row;
  nlohmann::json info;  // metrics.json's "point" block (run.json's "points" entries)
};
// Measures `point` and writes folder `directory` (metrics.json, power_trace.csv, predictions.jsonl) under a
// staged name, metrics.json last, then renames it into place. Throws on failure (nothing is left under
// `directory`'s name). `before_commit` (may be empty) runs just before the rename (a fault-injection hook).
MeasuredPoint measure_point(const Phase2Plan& plan, const Phase2Inputs& inputs, PointMeasurer& measurer,
                            const Phase2Point& point, const std::filesystem::path& directory,
                            std::ostream& log, const std::function<void()>& before_commit = {});

// FP8's activation scales for `point` (model: its CPU fp32 model, truncated and refit as measured): read from
// fp8_calibration_file_name(point) in run_directory when a point before it (or another process of a
// scaled-out sweep) wrote it, else calibrated (calibrate_fp8: settings.calibration_batches x eval_batch_size
// training examples, the recipe's seed, deterministic) and written there atomically. Every process of a sweep
// computes the same scales, so none waits for another.
Fp8Calibration fp8_calibration_for_point(const Phase2Plan& plan, const Phase2Inputs& inputs,
                                         BertForSequenceClassification& model, const Phase2Point& point,
                                         const std::filesystem::path& run_directory);
// "fp8_calibration-length_<L>-layers_<k>[-refit_<n>].json": one per model the sweep measures in fp8.
std::string fp8_calibration_file_name(const Phase2Plan& plan, const Phase2Point& point);

// One line per measured point on `log`: "[i/n] label: accuracy ..., ms/example, J/example".
void log_measured_point(std::ostream& log, size_t index, size_t count, const MeasuredPoint& measured);

// What finish_phase2 wrote.
struct Phase2Finish {
  ParetoTable pareto;
  std::vector<std::string> plot_notices;  // plots skipped, with the reason
};
// Writes pareto.csv, the plots, errors.json (removed when `errors` is empty) and run.json (last) into
// `directory`. `environment` is run.json's environment block; `device_name` titles the plots; `gpu` says
// whether the points ran on a GPU (padding_length_multiple).
Phase2Finish finish_phase2(const Phase2Plan& plan, const Phase2Inputs& inputs,
                           const std::filesystem::path& directory, const std::vector<ParetoRow>& rows,
                           const nlohmann::json& point_entries, const nlohmann::json& errors,
                           const nlohmann::json& environment, const std::string& device_name, bool gpu,
                           std::chrono::system_clock::time_point start_time,
                           std::chrono::system_clock::time_point end_time);

// The summary printed after a sweep: points measured, refused or failed, the frontier, the run directory.
void print_phase2_summary(std::ostream& out, const Phase2Plan& plan, const std::vector<ParetoRow>& rows,
                          size_t error_count, const Phase2Finish& finish,
                          const std::filesystem::path& directory);

}  // namespace nlpf
