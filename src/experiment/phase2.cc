// run_phase2: expand the sweep into points, refuse what the device cannot run (before any work), then per
// point load the baseline, truncate/refit/convert it, measure it with the protocol and write its folder;
// finally pareto.csv, the plots, errors.json and run.json, and rename the staged directory into place.
// Each point loads the checkpoint afresh so that its peak memory is that of its own model alone.
#include "experiment/phase2.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/context.h"
#include "backend/device.h"
#include "backend/precision.h"
#include "core/allocator.h"
#include "core/error.h"
#include "core/file_util.h"
#include "experiment/run_files.h"
#include "experiment/run_plots.h"
#include "measure/energy_meter.h"
#include "measure/metrics_json.h"
#include "measure/nvml_meter.h"
#include "measure/power_sampler.h"
#include "model/bert_inference.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "model/inference_runner.h"
#include "text/batching.h"
#include "text/tokenizer.h"
#include "train/interrupt.h"
#include "train/trainer.h"

namespace nlpf {

using json = nlohmann::json;

namespace {

// One configuration to measure.
struct Point {
  int64_t max_sequence_length = 0;
  int64_t num_layers = 0;
  std::string precision;
  std::string padding;  // padding_name spelling
  int64_t eval_batch_size = 0;
  std::string label;                                     // also the point's folder name
  std::vector<std::pair<std::string, json>> parameters;  // pareto.csv's parameter columns
};

template <typename T>
void check_list(const std::vector<T>& values, const char* option) {
  NLPF_CHECK(!values.empty(), ErrorCode::INVALID_ARGUMENT, option, ": give at least one value");
  std::set<T> seen;
  for (const T& v : values) {
    NLPF_CHECK(seen.insert(v).second, ErrorCode::INVALID_ARGUMENT, option, " lists ", v, " twice");
  }
}

// One point on the GPU: the model's weights go to the device in the point's compute precision (the host model
// is freed), the evaluation set is uploaded once, and each protocol pass replays CUDA graphs with per-batch
// CUDA-event latencies. Peak GPU memory is the context allocator's high-water mark over weights, workspaces
// and the uploaded set; NVML's per-process figure is read while they are alive.
ProtocolResult measure_on_gpu(ExecutionContext& gpu, EnergyMeter& meter, PowerSampler& sampler,
                              std::unique_ptr<BertForSequenceClassification> model, Precision precision,
                              const TokenizedDataset& eval_data, int64_t batch_size, PaddingMode padding,
                              const ProtocolOptions& protocol, InferenceMetricsInputs& inputs) {
  Allocator& allocator = gpu.allocator();
  allocator.reset_peak();
  const InferenceRunnerOptions options{.batch_size = batch_size, .padding = padding};
  const int64_t length = planned_sequence_length(eval_data, options);
  std::optional<BertInference> engine;
  try {
    engine.emplace(gpu, model->config(), model->parameters(), precision, batch_size, length);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::OUT_OF_MEMORY) throw;
    NLPF_THROW(ErrorCode::OUT_OF_MEMORY, "batch size ", batch_size, " at length ", length, " (",
               precision_name(precision), "): ", e.what(), "; try a smaller evaluation batch size");
  }
  model.reset();
  InferenceRunner runner(*engine, eval_data, options);
  const std::unique_ptr<BatchTimer> timer = make_batch_timer(gpu.device(), gpu.native_stream());
  const Workload workload = evaluation_workload([&] { return runner.run_pass(timer.get()); }, eval_data.size());
  ProtocolResult measured = run_protocol(protocol, meter, meter.available() ? &sampler : nullptr, workload);
  inputs.peak_gpu_memory_mb = static_cast<double>(allocator.peak_bytes()) / (1024.0 * 1024.0);
  if (const auto* nvml = dynamic_cast<const NvmlMeter*>(&meter)) {
    const NvmlProcessMemory process = nvml->process_memory(static_cast<unsigned int>(::getpid()));
    if (process.used_bytes) {
      inputs.gpu_process_memory_mb = static_cast<double>(*process.used_bytes) / (1024.0 * 1024.0);
    } else {
      inputs.gpu_process_memory_null_reason = process.reason;
    }
  } else {
    inputs.gpu_process_memory_null_reason = "no NVML meter on this run";
  }
  return measured;
}

}  // namespace

std::vector<int64_t> default_sequence_lengths(const BertConfig& config) {
  std::vector<int64_t> lengths;
  for (int64_t L : {128, 96, 64, 48, 40, 32, 24, 16}) {
    if (L <= config.max_position_embeddings) lengths.push_back(L);
  }
  return lengths;
}

std::vector<int64_t> default_num_layers(const BertConfig& config) {
  std::vector<int64_t> layers;
  for (int64_t k = config.num_hidden_layers; k >= 2; k -= 2) layers.push_back(k);
  if (layers.empty()) layers.push_back(config.num_hidden_layers);
  return layers;
}

std::vector<int64_t> default_batch_sizes() {
  return {1, 8, 32, 64, 256};
}

namespace {

std::vector<Point> make_points(const Phase2Settings& s, const BertConfig& config, int64_t fixed_length) {
  const bool grid = s.sweep == SweepKind::GRID;
  NLPF_CHECK(!grid || !s.sequence_lengths.empty() || !s.num_layers.empty() || !s.precisions.empty() ||
                 !s.paddings.empty() || !s.batch_sizes.empty(),
             ErrorCode::INVALID_ARGUMENT,
             "phase2 grid: give at least one of --sequence-lengths, --num-layers, --precisions, --paddings, "
             "--batch-sizes");
  std::vector<int64_t> lengths = {fixed_length};
  std::vector<int64_t> layers = {config.num_hidden_layers};
  std::vector<std::string> precisions = {"fp32"};
  std::vector<std::string> paddings = {s.padding};
  std::vector<int64_t> batch_sizes = {s.eval_batch_size};
  const char* padding_option = "--padding";
  const char* batch_size_option = "--eval-batch-size";
  if (s.sweep == SweepKind::MAX_SEQUENCE_LENGTH) {
    lengths = s.sequence_lengths.empty() ? default_sequence_lengths(config) : s.sequence_lengths;
    check_list(lengths, "--sequence-lengths");
  } else if (grid && !s.sequence_lengths.empty()) {
    check_list(s.sequence_lengths, "--sequence-lengths");
    lengths = s.sequence_lengths;
  }
  if (s.sweep == SweepKind::LAYERS) {
    layers = s.num_layers.empty() ? default_num_layers(config) : s.num_layers;
    check_list(layers, "--num-layers");
  } else if (grid && !s.num_layers.empty()) {
    check_list(s.num_layers, "--num-layers");
    layers = s.num_layers;
  }
  if (s.sweep == SweepKind::PRECISION) {
    precisions = s.precisions.empty() ? std::vector<std::string>{"fp32", "fp16", "fp8"} : s.precisions;
    check_list(precisions, "--precisions");
  } else if (grid && !s.precisions.empty()) {
    check_list(s.precisions, "--precisions");
    precisions = s.precisions;
  }
  if (s.sweep == SweepKind::PADDING) {
    paddings = s.paddings.empty() ? padding_names() : s.paddings;
    check_list(paddings, "--paddings");
  } else if (grid && !s.paddings.empty()) {
    check_list(s.paddings, "--paddings");
    paddings = s.paddings;
  }
  if (s.sweep == SweepKind::PADDING || (grid && !s.paddings.empty())) padding_option = "--paddings";
  if (s.sweep == SweepKind::BATCH_SIZE) {
    batch_sizes = s.batch_sizes.empty() ? default_batch_sizes() : s.batch_sizes;
    check_list(batch_sizes, "--batch-sizes");
  } else if (grid && !s.batch_sizes.empty()) {
    check_list(s.batch_sizes, "--batch-sizes");
    batch_sizes = s.batch_sizes;
  }
  if (s.sweep == SweepKind::BATCH_SIZE || (grid && !s.batch_sizes.empty()))
    batch_size_option = "--batch-sizes";
  for (int64_t L : lengths) {
    NLPF_CHECK(
        L >= 2 && L <= config.max_position_embeddings, ErrorCode::INVALID_ARGUMENT,
        s.sweep == SweepKind::MAX_SEQUENCE_LENGTH || grid ? "--sequence-lengths " : "--max-sequence-length ",
        L, ": must be in [2, ", config.max_position_embeddings, "] (max_position_embeddings of the model)");
  }
  for (int64_t k : layers) {
    NLPF_CHECK(k >= 1 && k <= config.num_hidden_layers, ErrorCode::INVALID_ARGUMENT, "--num-layers ", k,
               ": the model has ", config.num_hidden_layers, " encoder layers (keep 1 to ",
               config.num_hidden_layers, ")");
  }
  for (const std::string& p : precisions) parse_precision(p);
  parse_padding(s.padding);  // the fixed value is checked even where a list replaces it
  for (const std::string& p : paddings) parse_padding(p, padding_option);
  for (int64_t b : batch_sizes) {
    NLPF_CHECK(b >= 1, ErrorCode::INVALID_ARGUMENT, batch_size_option, " ", b,
               ": a batch holds at least 1 example");
  }

  std::vector<Point> points;
  for (int64_t L : lengths) {
    for (int64_t k : layers) {
      for (const std::string& p : precisions) {
        for (const std::string& padding : paddings) {
          for (int64_t b : batch_sizes) {
            Point point{L, k, p, padding, b, "", {}};
            std::vector<std::string> parts;
            const auto add = [&](bool swept, const std::string& name, const json& value) {
              if (!swept) return;
              point.parameters.emplace_back(name, value);
              parts.push_back(name + "_" + csv_cell(value));
            };
            add(s.sweep == SweepKind::MAX_SEQUENCE_LENGTH || (grid && !s.sequence_lengths.empty()),
                "max_sequence_length", L);
            add(s.sweep == SweepKind::LAYERS || (grid && !s.num_layers.empty()), "num_layers", k);
            add(s.sweep == SweepKind::PRECISION || (grid && !s.precisions.empty()), "precision", p);
            add(s.sweep == SweepKind::PADDING || (grid && !s.paddings.empty()), "padding", padding);
            add(s.sweep == SweepKind::BATCH_SIZE || (grid && !s.batch_sizes.empty()), "batch_size", b);
            for (const std::string& part : parts) point.label += (point.label.empty() ? "" : "-") + part;
            points.push_back(std::move(point));
          }
        }
      }
    }
  }
  return points;
}

// best_model/../run.json of a Phase 1 run, or null when the baseline is not inside one.
json read_baseline_run_json(const std::filesystem::path& model_dir, std::filesystem::path& where) {
  where = std::filesystem::absolute(model_dir).lexically_normal();
  if (where.filename().empty()) where = where.parent_path();
  where = where.parent_path() / "run.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(where, ec)) return nullptr;
  try {
    json run = json::parse(read_file(where));
    if (run.is_object() && run.value("command", "") == "phase1") return run;
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, where.string(), ": not valid JSON (", e.what(),
               "); pass --data-dir or --eval-file to skip reading it");
  }
  return nullptr;
}

// Data files and recipe from the baseline's run.json where the command line left them open.
DataSettings resolve_data(const Phase2Settings& s, const json& baseline_run,
                          const std::filesystem::path& run_path, TrainerOptions& recipe) {
  DataSettings data = s.data;
  const bool given = !data.data_dir.empty() || !data.train_file.empty() || !data.eval_file.empty();
  if (baseline_run.is_null()) return data;
  const auto text = [&](const json& object, const char* key) -> std::string {
    const json v = value_or_null(object, key);
    return v.is_string() ? v.get<std::string>() : std::string();
  };
  try {
    const json& config = baseline_run.at("config");
    recipe.batch_size = config.value("batch_size", recipe.batch_size);
    recipe.optimizer.learning_rate = config.value("learning_rate", recipe.optimizer.learning_rate);
    recipe.optimizer.weight_decay = config.value("weight_decay", recipe.optimizer.weight_decay);
    recipe.warmup_ratio = config.value("warmup_ratio", recipe.warmup_ratio);
    recipe.seed = config.value("seed", recipe.seed);
    if (!given) {
      data.task = config.value("task", data.task);
      const json& files = baseline_run.at("data");
      data.eval_file = text(value_or_null(files, "eval"), "path");
      data.train_file = text(value_or_null(files, "train"), "path");
      NLPF_CHECK(!data.eval_file.empty(), ErrorCode::INVALID_ARGUMENT, run_path.string(),
                 ": data.eval.path is missing; pass --data-dir or --eval-file");
      NLPF_CHECK(std::filesystem::exists(data.eval_file), ErrorCode::IO, run_path.string(),
                 " names the evaluation file ", data.eval_file,
                 ", which no longer exists; pass --data-dir or --eval-file");
    }
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, run_path.string(), ": unexpected layout (", e.what(),
               "); pass --data-dir or --eval-file");
  }
  return data;
}

json data_file_json(const std::filesystem::path& path, const Dataset& data) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  return {{"path", std::filesystem::absolute(path).string()},
          {"bytes", ec ? json(nullptr) : json(bytes)},
          {"examples_used", data.size()}};
}

}  // namespace

std::string sweep_file_tag(SweepKind sweep) {
  switch (sweep) {
    case SweepKind::MAX_SEQUENCE_LENGTH:
      return "max_sequence_length";
    case SweepKind::LAYERS:
      return "layers";
    case SweepKind::PRECISION:
      return "precision";
    case SweepKind::PADDING:
      return "padding";
    case SweepKind::BATCH_SIZE:
      return "batch_size";
    case SweepKind::GRID:
      return "grid";
  }
  return "grid";
}

std::string phase2_run_name(SweepKind sweep, std::time_t time) {
  const std::string stamp = run_timestamp(time);
  switch (sweep) {
    case SweepKind::MAX_SEQUENCE_LENGTH:
      return stamp + "_phase_2_sequence_length_sweep";
    case SweepKind::LAYERS:
      return stamp + "_phase_2_layers_sweep";
    case SweepKind::PRECISION:
      return stamp + "_phase_2_precision_sweep";
    case SweepKind::PADDING:
      return stamp + "_phase_2_padding_sweep";
    case SweepKind::BATCH_SIZE:
      return stamp + "_phase_2_batch_size_sweep";
    case SweepKind::GRID:
      return stamp + "_phase_2_grid";
  }
  return stamp + "_phase_2_grid";
}

Phase2Result run_phase2(const Phase2Settings& s) {
  std::ostream& out = s.out ? *s.out : std::cout;
  std::ostream& log = s.log ? *s.log : std::cerr;
  const auto start_time = std::chrono::system_clock::now();

  // ---- everything that can be refused is refused here, before any measurement ----
  const Device device = choose_inference_device(s.device, s.quiet, log);
  NLPF_CHECK(!s.baseline_model_directory.empty(), ErrorCode::INVALID_ARGUMENT,
             "--baseline-model-directory is required");
  const std::filesystem::path model_dir = s.baseline_model_directory;
  NLPF_CHECK(std::filesystem::is_directory(model_dir), ErrorCode::IO, "--baseline-model-directory ",
             model_dir.string(), ": no such directory");
  NLPF_CHECK(s.refit_epochs >= 0, ErrorCode::INVALID_ARGUMENT, "--refit-epochs must be >= 0");
  const bool refit = s.refit_epochs > 0 && (s.sweep == SweepKind::LAYERS || s.sweep == SweepKind::GRID);
  check_data_settings(s.data, /*need_train=*/false);
  const BertConfig config = BertConfig::load(model_dir / "config.json");
  std::filesystem::path baseline_run_path;
  const json baseline_run = read_baseline_run_json(model_dir, baseline_run_path);
  int64_t fixed_length = 128;
  if (s.max_sequence_length) {
    fixed_length = *s.max_sequence_length;
  } else if (!baseline_run.is_null()) {
    const json length = value_or_null(value_or_null(baseline_run, "config"), "max_sequence_length");
    if (length.is_number_integer()) fixed_length = length.get<int64_t>();
  }
  std::vector<Point> points = make_points(s, config, fixed_length);

  const DeviceDescription description = describe_device(device);
  json errors = json::array();
  {
    std::map<std::string, std::optional<std::string>> refusals;
    for (const Point& p : points) {
      if (!refusals.count(p.precision)) {
        refusals[p.precision] = precision_unsupported_reason(description, parse_precision(p.precision));
      }
    }
    for (const auto& [precision, reason] : refusals) {
      if (!reason) continue;
      NLPF_CHECK(s.skip_failed_precisions, ErrorCode::UNSUPPORTED, "--precisions ", precision, ": ", *reason,
                 " (nothing was run; --skip-failed-precisions records it in errors.json and goes on)");
      if (!s.quiet) log << "precision " << precision << " refused: " << *reason << "\n";
    }
    std::vector<Point> runnable;
    for (Point& p : points) {
      const std::optional<std::string>& reason = refusals[p.precision];
      if (reason) {
        errors.push_back({{"point", p.label},
                          {"precision", p.precision},
                          {"stage", "refused"},
                          {"error", *reason},
                          {"code", error_code_name(ErrorCode::UNSUPPORTED)}});
      } else {
        runnable.push_back(std::move(p));
      }
    }
    points = std::move(runnable);
  }
  NLPF_CHECK(!points.empty(), ErrorCode::UNSUPPORTED, "phase2: every point was refused on ",
             device_string(device), " (", errors.size(), " refusals, e.g. ",
             errors[0]["error"].get<std::string>(), "); nothing was run");

  // ---- baseline, data ----
  {
    CheckpointLoadOptions load_options;
    load_options.quiet = s.quiet;
    load_options.notices = &log;
    load_checkpoint(model_dir, load_options);  // every file checked once, notices (missing head) shown once
  }
  TrainerOptions recipe;  // a refit's: the baseline's recipe (run.json) where known, else the reference one
  const DataSettings data = resolve_data(s, baseline_run, baseline_run_path, recipe);
  check_data_settings(data, /*need_train=*/refit);
  const DataFiles files = locate_data(data, /*need_train=*/refit);
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(model_dir);
  const Dataset eval_set = read_split(files.eval, data, config.num_labels(), data.max_eval_examples);
  for (const Example& e : eval_set.examples) {
    NLPF_CHECK(e.label != kNoLabel, ErrorCode::INVALID_ARGUMENT, files.eval.string(), ":", e.line,
               ": the evaluation split needs labels (accuracy is one axis of the frontier)");
  }
  Dataset train_set;
  if (refit) train_set = read_split(files.train, data, config.num_labels(), data.max_train_examples);
  std::map<int64_t, TokenizedDataset> eval_by_length;
  for (const Point& p : points) {
    if (!eval_by_length.count(p.max_sequence_length)) {
      eval_by_length.emplace(
          p.max_sequence_length,
          tokenize_dataset(eval_set, tokenizer, p.max_sequence_length, /*show_progress=*/false));
    }
  }

  // ---- run directory, meter ----
  SigintGuard sigint_guard;
  std::filesystem::create_directories(s.runs_dir);
  StagedDirectory run(std::filesystem::path(s.runs_dir) /
                      phase2_run_name(s.sweep, std::chrono::system_clock::to_time_t(start_time)));
  std::unique_ptr<EnergyMeter> meter = choose_meter(description);
  // One CUDA context for the sweep (stream, cuBLASLt, allocator); each point's engine is freed before the
  // next.
  std::unique_ptr<ExecutionContext> gpu =
      device.type == DeviceType::CUDA ? make_execution_context(device) : nullptr;
  PowerSampler sampler(*meter);
  sampler.start();

  std::vector<ParetoRow> rows;
  json point_entries = json::array();
  for (size_t index = 0; index < points.size(); ++index) {
    const Point& point = points[index];
    const TokenizedDataset& eval_data = eval_by_length.at(point.max_sequence_length);
    const double trace_start = sampler.elapsed_s();
    json metrics;
    std::vector<int32_t> predictions;
    if (s.on_point) s.on_point(point.label);
    try {
      CheckpointLoadOptions load_options;
      load_options.quiet = true;
      std::unique_ptr<BertForSequenceClassification> model;
      {
        const Checkpoint checkpoint = load_checkpoint(model_dir, load_options);
        model = std::make_unique<BertForSequenceClassification>(checkpoint);
      }
      if (point.num_layers < model->config().num_hidden_layers) model->truncate_layers(point.num_layers);
      if (refit && point.num_layers < config.num_hidden_layers) {
        if (!s.quiet) log << point.label << ": re-fine-tuning " << s.refit_epochs << " epoch(s)\n";
        const TokenizedDataset train_data =
            tokenize_dataset(train_set, tokenizer, point.max_sequence_length, /*show_progress=*/!s.quiet);
        model->set_dropout(DropoutSettings::from_config(model->config(), recipe.seed));
        TrainerOptions trainer = recipe;
        trainer.epochs = s.refit_epochs;
        trainer.max_length = point.max_sequence_length;
        trainer.eval_batch_size = point.eval_batch_size;
        trainer.eval_padding = parse_padding(point.padding);
        trainer.show_progress = !s.quiet;
        train_classifier(*model, train_data, eval_data, trainer);  // the optimizer's state dies with it
      }
      model->drop_gradients();
      const Precision precision = parse_precision(point.precision);
      const PaddingMode padding = parse_padding(point.padding);
      InferenceMetricsInputs inputs;
      ProtocolResult measured;
      if (gpu) {
        measured = measure_on_gpu(*gpu, *meter, sampler, std::move(model), precision, eval_data,
                                  point.eval_batch_size, padding, s.protocol, inputs);
      } else {
        model->set_inference_precision(precision);
        Allocator& allocator = host_allocator();
        allocator.reset_peak();
        const Workload workload = evaluation_workload(
            [&] {
              return evaluate_classifier(*model, eval_data, point.eval_batch_size, point.max_sequence_length,
                                         padding);
            },
            eval_data.size());
        measured = run_protocol(s.protocol, *meter, meter->available() ? &sampler : nullptr, workload);
        inputs.peak_gpu_memory_null_reason = "CPU run: no GPU memory; see peak_memory_mb (host allocator)";
        inputs.peak_memory_mb = static_cast<double>(allocator.peak_bytes()) / (1024.0 * 1024.0);
      }
      int64_t correct = 0;
      for (size_t i = 0; i < measured.predictions.size(); ++i)
        correct += measured.predictions[i] == eval_data.labels[i];
      inputs.accuracy = static_cast<double>(correct) / static_cast<double>(eval_data.size());
      metrics = inference_metrics_json(measured, inputs);
      predictions = measured.predictions;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::INTERRUPTED || !s.skip_failed_precisions || point.precision == "fp32") throw;
      if (!s.quiet) log << point.label << " failed: " << e.what() << " (recorded in errors.json)\n";
      errors.push_back({{"point", point.label},
                        {"precision", point.precision},
                        {"stage", "failed"},
                        {"error", e.what()},
                        {"code", error_code_name(e.code())}});
      continue;
    }
    json point_info = {
        {"label", point.label},
        {"max_sequence_length", point.max_sequence_length},
        {"num_layers", point.num_layers},
        {"precision", point.precision},
        {"padding", point.padding},
        {"eval_batch_size", point.eval_batch_size},
        {"refit_epochs", refit && point.num_layers < config.num_hidden_layers ? s.refit_epochs : 0},
        {"truncated_examples", eval_data.num_truncated},
        {"eval_examples", eval_data.size()}};
    const std::filesystem::path point_dir = run.path() / point.label;
    std::filesystem::create_directories(point_dir);
    write_file_atomic(point_dir / "metrics.json",
                      json{{"point", point_info}, {"inference_benchmark_metrics", metrics}}.dump(2) + "\n");
    std::ostringstream lines;
    for (size_t i = 0; i < predictions.size(); ++i) {
      lines << json{{"prediction", predictions[i]}, {"label", eval_data.labels[i]}}.dump() << '\n';
    }
    write_file_atomic(point_dir / "predictions.jsonl", lines.str());
    std::vector<PowerTraceRow> trace;
    const double trace_end = sampler.elapsed_s();
    for (const PowerTraceRow& row : sampler.rows()) {
      if (row.timestamp_s >= trace_start && row.timestamp_s <= trace_end) trace.push_back(row);
    }
    write_power_trace_csv(point_dir / "power_trace.csv", trace);
    rows.push_back({point.label, point.parameters, metrics});
    point_entries.push_back(point_info);
    if (!s.quiet) {
      log << "[" << index + 1 << "/" << points.size() << "] " << point.label << ": accuracy "
          << csv_cell(metrics.at("accuracy")) << ", "
          << csv_cell(metrics.at("average_latency_per_example_ms")) << " ms/example, J/example "
          << (metrics.at("energy_per_example_j").is_null() ? std::string("null")
                                                           : csv_cell(metrics.at("energy_per_example_j")))
          << "\n";
    }
  }
  sampler.stop();
  const auto end_time = std::chrono::system_clock::now();
  NLPF_CHECK(!rows.empty(), ErrorCode::UNSUPPORTED, "phase2: every point failed (", errors.size(),
             " in all, e.g. ", errors[0]["error"].get<std::string>(), "); no run directory was completed");

  // ---- pareto.csv, plots, errors.json, run.json ----
  const ParetoTable pareto = make_pareto_table(rows);
  write_file_atomic(run.path() / "pareto.csv", pareto.csv);
  const std::string tag = sweep_file_tag(s.sweep);
  // The model is named as its Phase 1 run named it (a best_model/ folder says nothing by itself).
  std::string model_name = std::filesystem::absolute(model_dir).lexically_normal().filename().string();
  const json baseline_title = value_or_null(value_or_null(baseline_run, "plot_title"), "model");
  if (baseline_title.is_string()) model_name = baseline_title.get<std::string>() + " (fine-tuned)";
  const RunPlotTitle title{model_name, data.task, description.name};
  json plots = json::object();
  const std::string accuracy_png = "energy_accuracy_" + tag + ".png";
  const std::string latency_png = "energy_latency_" + tag + ".png";
  const std::optional<std::string> accuracy_skipped =
      draw_accuracy_plot(run.path() / accuracy_png, rows, pareto.on_frontier, pareto.frontier_cost, title);
  const std::optional<std::string> latency_skipped =
      draw_energy_latency_plot(run.path() / latency_png, rows, title);
  plots[accuracy_png] = accuracy_skipped ? json(*accuracy_skipped) : json("written");
  plots[latency_png] = latency_skipped ? json(*latency_skipped) : json("written");
  if (!errors.empty()) write_file_atomic(run.path() / "errors.json", errors.dump(2) + "\n");

  const bool padding_swept =
      s.sweep == SweepKind::PADDING || (s.sweep == SweepKind::GRID && !s.paddings.empty());
  const bool batch_size_swept =
      s.sweep == SweepKind::BATCH_SIZE || (s.sweep == SweepKind::GRID && !s.batch_sizes.empty());
  json config_json = {
      {"sweep", tag},
      {"baseline_model_directory", std::filesystem::absolute(model_dir).string()},
      {"baseline_run_json", baseline_run.is_null() ? json(nullptr) : json(baseline_run_path.string())},
      {"task", data.task},
      {"sequence_lengths", s.sequence_lengths},
      {"num_layers", s.num_layers},
      {"precisions", s.precisions},
      {"paddings", s.paddings},
      {"batch_sizes", s.batch_sizes},
      {"max_sequence_length", fixed_length},
      // The fixed values, null where a list replaced them (each point's own are in "points").
      {"eval_batch_size", batch_size_swept ? json(nullptr) : json(s.eval_batch_size)},
      {"padding", padding_swept ? json(nullptr) : json(s.padding)},
      {"refit_epochs", s.refit_epochs},
      {"skip_failed_precisions", s.skip_failed_precisions},
      {"device", s.device},
      {"runs_dir", s.runs_dir},
      // GPU: a longest or bucketed batch is padded up to a multiple of 8 tokens (CUDA graphs per shape).
      {"padding_length_multiple", gpu ? json(InferenceRunnerOptions{}.length_multiple) : json(1)},
      {"max_eval_examples", data.max_eval_examples ? json(*data.max_eval_examples) : json(nullptr)},
      {"trials", s.protocol.trials},
      {"min_trial_seconds", s.protocol.min_trial_seconds},
      {"idle_seconds", s.protocol.idle_seconds},
      {"warmup_seconds", s.protocol.warmup_min_seconds},
      {"cooldown_seconds", s.protocol.cooldown_seconds}};
  if (refit) {
    config_json["refit_recipe"] = {{"batch_size", recipe.batch_size},
                                   {"learning_rate", recipe.optimizer.learning_rate},
                                   {"weight_decay", recipe.optimizer.weight_decay},
                                   {"warmup_ratio", recipe.warmup_ratio},
                                   {"seed", recipe.seed},
                                   {"weights_kept", "last refit epoch"}};
  }
  json data_json = {{"eval", data_file_json(files.eval, eval_set)}};
  if (refit) data_json["train"] = data_file_json(files.train, train_set);
  const json run_json = {
      {"command", "phase2"},
      {"config", config_json},
      {"data", data_json},
      {"points", point_entries},
      {"frontier_cost", pareto.frontier_cost},
      {"plots", plots},
      {"errors", errors.size()},
      {"environment", environment_json(device, description, *meter)},
      {"plot_title", {{"model", title.model}, {"task", title.task}, {"device", title.device}}},
      {"start_time", iso_time(start_time)},
      {"end_time", iso_time(end_time)}};
  write_file_atomic(run.path() / "run.json", run_json.dump(2) + "\n");
  NLPF_CHECK(!interrupt_flag().load(), ErrorCode::INTERRUPTED,
             "interrupted by Ctrl-C while writing the run; no run directory was completed");
  run.commit();

  // ---- summary ----
  out << "phase2 " << tag << ": " << rows.size() << " point(s) measured";
  if (!errors.empty()) out << ", " << errors.size() << " refused or failed (errors.json)";
  out << "; frontier by " << pareto.frontier_cost << ":";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (pareto.on_frontier[i].value_or(false)) out << " " << rows[i].label;
  }
  out << "\n";
  for (const std::optional<std::string>& skipped : {accuracy_skipped, latency_skipped}) {
    if (skipped) out << *skipped << "\n";
  }
  out << "run directory: " << run.final_path().string() << "\n";
  return Phase2Result{run.final_path(), static_cast<int>(rows.size()), static_cast<int>(errors.size())};
}

}  // namespace nlpf
