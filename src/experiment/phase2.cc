// run_phase2: expand the sweep into points, refuse what the device cannot run (before any work), then per
// point load the baseline, truncate/refit/convert it, measure it with the protocol and write its folder;
// finally pareto.csv, the plots, errors.json and run.json, and rename the staged directory into place.
// Each point loads the checkpoint afresh so that its peak memory is that of its own model alone.
#include "experiment/phase2.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
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
#include "core/fp8.h"
#include "experiment/gpu_measure.h"
#include "experiment/phase2_steps.h"
#include "experiment/run_files.h"
#include "experiment/run_plots.h"
#include "measure/energy_meter.h"
#include "measure/metrics_json.h"
#include "measure/nvml_meter.h"
#include "measure/power_sampler.h"
#include "model/bert_inference.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "model/fp8_calibration.h"
#include "model/inference_runner.h"
#include "ops/linear.h"
#include "text/batching.h"
#include "text/tokenizer.h"
#include "train/interrupt.h"
#include "train/trainer.h"

namespace nlpf {

using json = nlohmann::json;

namespace {

template <typename T>
void check_list(const std::vector<T>& values, const char* option) {
  NLPF_CHECK(!values.empty(), ErrorCode::INVALID_ARGUMENT, option, ": give at least one value");
  std::set<T> seen;
  for (const T& v : values) {
    NLPF_CHECK(seen.insert(v).second, ErrorCode::INVALID_ARGUMENT, option, " lists ", v, " twice");
  }
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

std::vector<Phase2Point> make_points(const Phase2Settings& s, const BertConfig& config,
                                     int64_t fixed_length) {
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

  std::vector<Phase2Point> points;
  for (int64_t L : lengths) {
    for (int64_t k : layers) {
      for (const std::string& p : precisions) {
        for (const std::string& padding : paddings) {
          for (int64_t b : batch_sizes) {
            Phase2Point point{L, k, p, padding, b, "", {}};
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

Phase2Plan plan_phase2(const Phase2Settings& s) {
  Phase2Plan plan;
  plan.settings = s;
  NLPF_CHECK(!s.baseline_model_directory.empty(), ErrorCode::INVALID_ARGUMENT,
             "--baseline-model-directory is required");
  plan.model_dir = s.baseline_model_directory;
  NLPF_CHECK(std::filesystem::is_directory(plan.model_dir), ErrorCode::IO, "--baseline-model-directory ",
             plan.model_dir.string(), ": no such directory");
  NLPF_CHECK(s.refit_epochs >= 0, ErrorCode::INVALID_ARGUMENT, "--refit-epochs must be >= 0");
  NLPF_CHECK(s.calibration_batches >= 1, ErrorCode::INVALID_ARGUMENT,
             "--calibration-batches must be >= 1 (fp8's activation scales come from them)");
  parse_fp8_weight_scales(s.fp8_weight_scales);  // "tensor" or "channel", else the option's error
  plan.refit = s.refit_epochs > 0 && (s.sweep == SweepKind::LAYERS || s.sweep == SweepKind::GRID);
  check_data_settings(s.data, /*need_train=*/false);
  plan.config = BertConfig::load(plan.model_dir / "config.json");
  plan.baseline_run = read_baseline_run_json(plan.model_dir, plan.baseline_run_path);
  if (s.max_sequence_length) {
    plan.fixed_length = *s.max_sequence_length;
  } else if (!plan.baseline_run.is_null()) {
    const json length = value_or_null(value_or_null(plan.baseline_run, "config"), "max_sequence_length");
    if (length.is_number_integer()) plan.fixed_length = length.get<int64_t>();
  }
  plan.points = make_points(s, plan.config, plan.fixed_length);
  return plan;
}

std::vector<Phase2Point> refuse_unsupported_points(const Phase2Plan& plan,
                                                   const DeviceDescription& description, json& errors,
                                                   std::ostream& log) {
  const Phase2Settings& s = plan.settings;
  std::map<std::string, std::optional<std::string>> refusals;
  for (const Phase2Point& p : plan.points) {
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
  std::vector<Phase2Point> runnable;
  for (const Phase2Point& p : plan.points) {
    const std::optional<std::string>& reason = refusals[p.precision];
    if (reason) {
      errors.push_back({{"point", p.label},
                        {"precision", p.precision},
                        {"stage", "refused"},
                        {"error", *reason},
                        {"code", error_code_name(ErrorCode::UNSUPPORTED)}});
    } else {
      runnable.push_back(p);
    }
  }
  return runnable;
}

Phase2Inputs load_phase2_inputs(const Phase2Plan& plan, const std::vector<Phase2Point>& points) {
  Phase2Inputs in;
  // a refit's recipe: the baseline's (run.json) where known, else the reference one
  in.data = resolve_data(plan.settings, plan.baseline_run, plan.baseline_run_path, in.recipe);
  // fp8 points calibrate their activation scales on the training split (DESIGN §5).
  const bool fp8 = std::any_of(points.begin(), points.end(), [](const Phase2Point& p) {
    return parse_precision(p.precision) == Precision::FP8;
  });
  const bool need_train = plan.refit || fp8;
  NLPF_CHECK(
      !fp8 || in.data.eval_file.empty() || !in.data.train_file.empty(), ErrorCode::INVALID_ARGUMENT,
      "--precisions fp8: the activation scales are calibrated on training data; give --train-file with "
      "--eval-file (or --data-dir), or leave fp8 out");
  check_data_settings(in.data, need_train);
  in.files = locate_data(in.data, need_train);
  in.tokenizer.emplace(WordPieceTokenizer::from_model_dir(plan.model_dir));
  in.eval_set = read_split(in.files.eval, in.data, plan.config.num_labels(), in.data.max_eval_examples);
  for (const Example& e : in.eval_set.examples) {
    NLPF_CHECK(e.label != kNoLabel, ErrorCode::INVALID_ARGUMENT, in.files.eval.string(), ":", e.line,
               ": the evaluation split needs labels (accuracy is one axis of the frontier)");
  }
  if (need_train) {
    in.train_set = read_split(in.files.train, in.data, plan.config.num_labels(), in.data.max_train_examples);
  }
  for (const Phase2Point& p : points) {
    if (parse_precision(p.precision) == Precision::FP8 && !in.train_by_length.count(p.max_sequence_length)) {
      in.train_by_length.emplace(
          p.max_sequence_length,
          tokenize_dataset(in.train_set, *in.tokenizer, p.max_sequence_length, /*show_progress=*/false));
    }
    if (!in.eval_by_length.count(p.max_sequence_length)) {
      in.eval_by_length.emplace(
          p.max_sequence_length,
          tokenize_dataset(in.eval_set, *in.tokenizer, p.max_sequence_length, /*show_progress=*/false));
    }
  }
  return in;
}

std::string fp8_calibration_file_name(const Phase2Plan& plan, const Phase2Point& point) {
  const bool refit = plan.refit && point.num_layers < plan.config.num_hidden_layers;
  return "fp8_calibration-length_" + std::to_string(point.max_sequence_length) + "-layers_" +
         std::to_string(point.num_layers) +
         (refit ? "-refit_" + std::to_string(plan.settings.refit_epochs) : std::string()) + ".json";
}

Fp8Calibration fp8_calibration_for_point(const Phase2Plan& plan, const Phase2Inputs& in,
                                         BertForSequenceClassification& model, const Phase2Point& point,
                                         const std::filesystem::path& run_directory) {
  const Phase2Settings& s = plan.settings;
  const std::filesystem::path path = run_directory / fp8_calibration_file_name(plan, point);
  const auto it = in.train_by_length.find(point.max_sequence_length);
  NLPF_CHECK(it != in.train_by_length.end(), ErrorCode::INTERNAL, point.label,
             ": no training data was tokenised for fp8 calibration at length ", point.max_sequence_length);
  const int64_t examples = std::min(s.calibration_batches * s.eval_batch_size, it->second.size());
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    json stored;
    try {
      stored = json::parse(read_file(path));
    } catch (const json::exception& e) {
      NLPF_THROW(ErrorCode::INVALID_ARGUMENT, path.string(), ": not valid JSON (", e.what(), ")");
    }
    Fp8Calibration calibration = Fp8Calibration::from_json(stored, path.string());
    NLPF_CHECK(calibration.examples == examples && calibration.seed == in.recipe.seed,
               ErrorCode::INVALID_ARGUMENT, path.string(), ": calibrated on ", calibration.examples,
               " examples with seed ", calibration.seed, ", but this sweep calibrates on ", examples,
               " with seed ", in.recipe.seed, " (a file of another run?)");
    return calibration;
  }
  Fp8Calibration calibration = calibrate_fp8(model, it->second, examples, in.recipe.seed, s.eval_batch_size,
                                             point.max_sequence_length);
  write_file_atomic(path, calibration.to_json().dump(2) + "\n");
  return calibration;
}

PointMeasurer make_point_measurer(Device device) {
  PointMeasurer m;
  m.device = device;
  m.description = describe_device(device);
  m.meter = choose_meter(m.description);
  m.gpu = device.type == DeviceType::CUDA ? make_execution_context(device) : nullptr;
  m.sampler = std::make_unique<PowerSampler>(*m.meter);
  m.sampler->start();
  return m;
}

json point_device_json(const PointMeasurer& m) {
  const json environment = environment_json(m.device, m.description, *m.meter);
  const bool gpu = m.device.type == DeviceType::CUDA;
  return {{"host", environment.at("hostname")},
          {"device", device_string(m.device)},
          {"device_name", m.description.name},
          {"gpu_name", gpu ? json(m.description.name) : json(nullptr)},
          {"gpu_uuid", gpu && !m.description.uuid.empty() ? json(m.description.uuid) : json(nullptr)},
          {"gpu_null_reason", gpu ? json(nullptr) : json("CPU run: no GPU")},
          {"slurm_job_id", std::getenv("SLURM_JOB_ID") ? json(std::getenv("SLURM_JOB_ID")) : json(nullptr)},
          {"environment", environment}};
}

MeasuredPoint measure_point(const Phase2Plan& plan, const Phase2Inputs& in, PointMeasurer& measurer,
                            const Phase2Point& point, const std::filesystem::path& directory,
                            std::ostream& log, const std::function<void()>& before_commit) {
  const Phase2Settings& s = plan.settings;
  const TokenizedDataset& eval_data = in.eval_by_length.at(point.max_sequence_length);
  PowerSampler& sampler = *measurer.sampler;
  EnergyMeter& meter = *measurer.meter;
  const double trace_start = sampler.elapsed_s();
  const bool refit = plan.refit && point.num_layers < plan.config.num_hidden_layers;
  const bool precision_is_fp8 = parse_precision(point.precision) == Precision::FP8;
  json metrics;
  std::vector<int32_t> predictions;
  {
    CheckpointLoadOptions load_options;
    load_options.quiet = true;
    std::unique_ptr<BertForSequenceClassification> model;
    {
      const Checkpoint checkpoint = load_checkpoint(plan.model_dir, load_options);
      model = std::make_unique<BertForSequenceClassification>(checkpoint);
    }
    if (point.num_layers < model->config().num_hidden_layers) model->truncate_layers(point.num_layers);
    if (refit) {
      if (!s.quiet) log << point.label << ": re-fine-tuning " << s.refit_epochs << " epoch(s)\n";
      const TokenizedDataset train_data = tokenize_dataset(
          in.train_set, *in.tokenizer, point.max_sequence_length, /*show_progress=*/!s.quiet);
      model->set_dropout(DropoutSettings::from_config(model->config(), in.recipe.seed));
      TrainerOptions trainer = in.recipe;
      trainer.epochs = s.refit_epochs;
      trainer.max_length = point.max_sequence_length;
      trainer.eval_batch_size = point.eval_batch_size;
      trainer.eval_padding = parse_padding(point.padding);
      trainer.show_progress = !s.quiet;
      // On a GPU the refit trains there, as `phase1 --device cuda` does, in fp32 (IEEE: the reference
      // recipe's arithmetic) on a context of its own; the trained weights come back to the host, where the
      // fp8 calibration and the point's conversion read them.
      std::unique_ptr<ExecutionContext> train_gpu;
      if (measurer.gpu) {
        train_gpu = make_execution_context(measurer.device);
        model->to_context(*train_gpu);
      }
      train_classifier(*model, train_data, eval_data, trainer);  // the optimizer's state dies with it
      if (train_gpu) {
        Checkpoint trained;
        trained.config = model->config();
        trained.directory = plan.model_dir;
        trained.tensors = model->to_checkpoint_tensors();
        model = std::make_unique<BertForSequenceClassification>(trained);  // the GPU copy goes before its context
      }
    }
    model->drop_gradients();
    const Precision precision = parse_precision(point.precision);
    const PaddingMode padding = parse_padding(point.padding);
    InferenceMetricsInputs inputs;
    ProtocolResult measured;
    if (measurer.gpu) {
      // fp8: the activation scales of this model, calibrated on the CPU fp32 model before it is converted.
      std::optional<Fp8Calibration> calibration;
      if (precision == Precision::FP8) {
        calibration = fp8_calibration_for_point(plan, in, *model, point, directory.parent_path());
      }
      const GpuEvaluationOptions options{.precision = precision,
                                         .batch_size = point.eval_batch_size,
                                         .padding = padding,
                                         .fp8_calibration = calibration ? &*calibration : nullptr,
                                         .fp8_weight_scales = parse_fp8_weight_scales(s.fp8_weight_scales)};
      measured = measure_on_gpu(*measurer.gpu, meter, sampler, model->config(), model->parameters(),
                                eval_data, options, s.protocol, inputs);
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
      measured = run_protocol(s.protocol, meter, meter.available() ? &sampler : nullptr, workload);
      inputs.peak_gpu_memory_null_reason = "CPU run: no GPU memory; see peak_memory_mb (host allocator)";
      inputs.peak_memory_mb = static_cast<double>(allocator.peak_bytes()) / (1024.0 * 1024.0);
    }
    int64_t correct = 0;
    for (size_t i = 0; i < measured.predictions.size(); ++i)
      correct += measured.predictions[i] == eval_data.labels[i];
    inputs.accuracy = static_cast<double>(correct) / static_cast<double>(eval_data.size());
    metrics = inference_metrics_json(measured, inputs);
    predictions = measured.predictions;
  }
  json point_info = {{"label", point.label},
                     {"max_sequence_length", point.max_sequence_length},
                     {"num_layers", point.num_layers},
                     {"precision", point.precision},
                     {"padding", point.padding},
                     {"eval_batch_size", point.eval_batch_size},
                     {"refit_epochs", refit ? s.refit_epochs : 0},
                     {"truncated_examples", eval_data.num_truncated},
                     {"eval_examples", eval_data.size()}};
  if (precision_is_fp8) {
    point_info["fp8_calibration"] = fp8_calibration_file_name(plan, point);  // its activation scales
    point_info["fp8_weight_scales"] = s.fp8_weight_scales;                   // per tensor or per channel
    if (measurer.gpu && s.fp8_weight_scales == "channel") {  // which GEMM form ran them (backend/cuda/gemm.h)
      point_info["fp8_channel_gemm_form"] = ops::fp8_channel_gemm_form(*measurer.gpu);
    }
  }
  StagedDirectory point_dir(directory);
  std::ostringstream lines;
  for (size_t i = 0; i < predictions.size(); ++i) {
    lines << json{{"prediction", predictions[i]}, {"label", eval_data.labels[i]}}.dump() << '\n';
  }
  write_file_atomic(point_dir.path() / "predictions.jsonl", lines.str());
  std::vector<PowerTraceRow> trace;
  const double trace_end = sampler.elapsed_s();
  for (const PowerTraceRow& row : sampler.rows()) {
    if (row.timestamp_s >= trace_start && row.timestamp_s <= trace_end) trace.push_back(row);
  }
  write_power_trace_csv(point_dir.path() / "power_trace.csv", trace);
  // metrics.json last: a point folder holding it is complete.
  write_file_atomic(point_dir.path() / "metrics.json", json{{"point", point_info},
                                                            {"device", point_device_json(measurer)},
                                                            {"inference_benchmark_metrics", metrics}}
                                                               .dump(2) +
                                                           "\n");
  if (before_commit) before_commit();
  point_dir.commit();
  return MeasuredPoint{ParetoRow{point.label, point.parameters, metrics}, point_info};
}

void log_measured_point(std::ostream& log, size_t index, size_t count, const MeasuredPoint& measured) {
  const json& metrics = measured.row.metrics;
  log << "[" << index + 1 << "/" << count << "] " << measured.row.label << ": accuracy "
      << csv_cell(metrics.at("accuracy")) << ", " << csv_cell(metrics.at("average_latency_per_example_ms"))
      << " ms/example, J/example "
      << (metrics.at("energy_per_example_j").is_null() ? std::string("null")
                                                       : csv_cell(metrics.at("energy_per_example_j")))
      << "\n";
}

Phase2Finish finish_phase2(const Phase2Plan& plan, const Phase2Inputs& in,
                           const std::filesystem::path& directory, const std::vector<ParetoRow>& rows,
                           const json& point_entries, const json& errors, const json& environment,
                           const std::string& device_name, bool gpu,
                           std::chrono::system_clock::time_point start_time,
                           std::chrono::system_clock::time_point end_time) {
  const Phase2Settings& s = plan.settings;
  Phase2Finish finish;
  finish.pareto = make_pareto_table(rows);
  write_file_atomic(directory / "pareto.csv", finish.pareto.csv);
  const std::string tag = sweep_file_tag(s.sweep);
  // The model is named as its Phase 1 run named it (a best_model/ folder says nothing by itself).
  std::string model_name = std::filesystem::absolute(plan.model_dir).lexically_normal().filename().string();
  const json baseline_title = value_or_null(value_or_null(plan.baseline_run, "plot_title"), "model");
  if (baseline_title.is_string()) model_name = baseline_title.get<std::string>() + " (fine-tuned)";
  const RunPlotTitle title{model_name, in.data.task, device_name};
  json plots = json::object();
  const std::string accuracy_png = "energy_accuracy_" + tag + ".png";
  const std::string latency_png = "energy_latency_" + tag + ".png";
  const std::optional<std::string> accuracy_skipped = draw_accuracy_plot(
      directory / accuracy_png, rows, finish.pareto.on_frontier, finish.pareto.frontier_cost, title);
  const std::optional<std::string> latency_skipped =
      draw_energy_latency_plot(directory / latency_png, rows, title);
  plots[accuracy_png] = accuracy_skipped ? json(*accuracy_skipped) : json("written");
  plots[latency_png] = latency_skipped ? json(*latency_skipped) : json("written");
  for (const std::optional<std::string>& skipped : {accuracy_skipped, latency_skipped}) {
    if (skipped) finish.plot_notices.push_back(*skipped);
  }
  if (!errors.empty()) {
    write_file_atomic(directory / "errors.json", errors.dump(2) + "\n");
  } else {
    std::error_code ec;
    std::filesystem::remove(directory / "errors.json", ec);  // a merge again after a resubmission
  }

  const bool padding_swept =
      s.sweep == SweepKind::PADDING || (s.sweep == SweepKind::GRID && !s.paddings.empty());
  const bool batch_size_swept =
      s.sweep == SweepKind::BATCH_SIZE || (s.sweep == SweepKind::GRID && !s.batch_sizes.empty());
  json config_json = {
      {"sweep", tag},
      {"baseline_model_directory", std::filesystem::absolute(plan.model_dir).string()},
      {"baseline_run_json",
       plan.baseline_run.is_null() ? json(nullptr) : json(plan.baseline_run_path.string())},
      {"task", in.data.task},
      {"sequence_lengths", s.sequence_lengths},
      {"num_layers", s.num_layers},
      {"precisions", s.precisions},
      {"paddings", s.paddings},
      {"batch_sizes", s.batch_sizes},
      {"max_sequence_length", plan.fixed_length},
      // The fixed values, null where a list replaced them (each point's own are in "points").
      {"eval_batch_size", batch_size_swept ? json(nullptr) : json(s.eval_batch_size)},
      {"padding", padding_swept ? json(nullptr) : json(s.padding)},
      {"refit_epochs", s.refit_epochs},
      {"skip_failed_precisions", s.skip_failed_precisions},
      // fp8's activation calibration: batches of the fixed eval_batch_size training examples (ENGINE.md)
      {"calibration_batches", s.calibration_batches},
      // fp8's weight scales: one per weight ("tensor") or per output channel ("channel")
      {"fp8_weight_scales", s.fp8_weight_scales},
      {"device", s.device},
      {"runs_dir", s.runs_dir},
      // GPU: a longest or bucketed batch is padded up to a multiple of 8 tokens (CUDA graphs per shape).
      {"padding_length_multiple", gpu ? json(InferenceRunnerOptions{}.length_multiple) : json(1)},
      // GPU: the last encoder layer past its QKV projection for token 0 alone, the pooler's one input
      // (BertInference::set_first_token_last_layer; the predictions are the full layer's).
      {"gpu_last_layer",
       gpu ? json(BertInference::kFirstTokenLastLayerByDefault ? "first-token" : "all-tokens")
           : json(nullptr)},
      // GPU, fp32 and tf32 points: the attention-output and output GEMMs' residual added in the LayerNorm
      // ("layer-norm") or as the GEMM's C ("gemm-epilogue"); the 16-bit and fp8 engines add it in the GEMM
      // (BertInference::set_f32_residual_in_layer_norm; the same sums, other GEMM kernels).
      {"gpu_f32_residual",
       gpu ? json(BertInference::kF32ResidualInLayerNormByDefault ? "layer-norm" : "gemm-epilogue")
           : json(nullptr)},
      {"max_eval_examples", in.data.max_eval_examples ? json(*in.data.max_eval_examples) : json(nullptr)},
      {"trials", s.protocol.trials},
      {"min_trial_seconds", s.protocol.min_trial_seconds},
      {"idle_seconds", s.protocol.idle_seconds},
      {"warmup_seconds", s.protocol.warmup_min_seconds},
      {"cooldown_seconds", s.protocol.cooldown_seconds}};
  if (!s.devices.empty()) config_json["devices"] = s.devices;
  if (!s.submit.empty()) config_json["submit"] = s.submit;
  if (plan.refit) {
    config_json["refit_recipe"] = {{"batch_size", in.recipe.batch_size},
                                   {"learning_rate", in.recipe.optimizer.learning_rate},
                                   {"weight_decay", in.recipe.optimizer.weight_decay},
                                   {"warmup_ratio", in.recipe.warmup_ratio},
                                   {"seed", in.recipe.seed},
                                   {"weights_kept", "last refit epoch"}};
  }
  json data_json = {{"eval", data_file_json(in.files.eval, in.eval_set)}};
  if (plan.refit) data_json["train"] = data_file_json(in.files.train, in.train_set);
  const json run_json = {
      {"command", "phase2"},
      {"config", config_json},
      {"data", data_json},
      {"points", point_entries},
      {"frontier_cost", finish.pareto.frontier_cost},
      {"plots", plots},
      {"errors", errors.size()},
      {"environment", environment},
      {"plot_title", {{"model", title.model}, {"task", title.task}, {"device", title.device}}},
      {"start_time", iso_time(start_time)},
      {"end_time", iso_time(end_time)}};
  write_file_atomic(directory / "run.json", run_json.dump(2) + "\n");
  return finish;
}

void print_phase2_summary(std::ostream& out, const Phase2Plan& plan, const std::vector<ParetoRow>& rows,
                          size_t error_count, const Phase2Finish& finish,
                          const std::filesystem::path& directory) {
  out << "phase2 " << sweep_file_tag(plan.settings.sweep) << ": " << rows.size() << " point(s) measured";
  if (error_count > 0) out << ", " << error_count << " refused or failed (errors.json)";
  out << "; frontier by " << finish.pareto.frontier_cost << ":";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (finish.pareto.on_frontier[i].value_or(false)) out << " " << rows[i].label;
  }
  out << "\n";
  for (const std::string& notice : finish.plot_notices) out << notice << "\n";
  out << "run directory: " << directory.string() << "\n";
}

Phase2Result run_phase2(const Phase2Settings& s) {
  if (!s.submit.empty() || !s.devices.empty() || !s.resume_directory.empty()) return run_phase2_scaled_out(s);
  std::ostream& out = s.out ? *s.out : std::cout;
  std::ostream& log = s.log ? *s.log : std::cerr;
  const auto start_time = std::chrono::system_clock::now();

  // ---- everything that can be refused is refused here, before any measurement ----
  const Device device = choose_run_device(s.device, s.quiet, log);
  Phase2Plan plan = plan_phase2(s);
  json errors = json::array();
  const std::vector<Phase2Point> points =
      refuse_unsupported_points(plan, describe_device(device), errors, log);
  NLPF_CHECK(!points.empty(), ErrorCode::UNSUPPORTED, "phase2: every point was refused on ",
             device_string(device), " (", errors.size(), " refusals, e.g. ",
             errors[0]["error"].get<std::string>(), "); nothing was run");

  // ---- baseline, data ----
  {
    CheckpointLoadOptions load_options;
    load_options.quiet = s.quiet;
    load_options.notices = &log;
    load_checkpoint(plan.model_dir,
                    load_options);  // every file checked once, notices (missing head) shown once
  }
  const Phase2Inputs inputs = load_phase2_inputs(plan, points);

  // ---- run directory, meter ----
  SigintGuard sigint_guard;
  std::filesystem::create_directories(s.runs_dir);
  StagedDirectory run(std::filesystem::path(s.runs_dir) /
                      phase2_run_name(s.sweep, std::chrono::system_clock::to_time_t(start_time)));
  PointMeasurer measurer = make_point_measurer(device);

  std::vector<ParetoRow> rows;
  json point_entries = json::array();
  for (size_t index = 0; index < points.size(); ++index) {
    const Phase2Point& point = points[index];
    if (s.on_point) s.on_point(point.label);
    try {
      MeasuredPoint measured = measure_point(plan, inputs, measurer, point, run.path() / point.label, log);
      if (!s.quiet) log_measured_point(log, index, points.size(), measured);
      rows.push_back(std::move(measured.row));
      point_entries.push_back(std::move(measured.info));
    } catch (const Error& e) {
      if (e.code() == ErrorCode::INTERRUPTED || !s.skip_failed_precisions || point.precision == "fp32") throw;
      if (!s.quiet) log << point.label << " failed: " << e.what() << " (recorded in errors.json)\n";
      errors.push_back({{"point", point.label},
                        {"precision", point.precision},
                        {"stage", "failed"},
                        {"error", e.what()},
                        {"code", error_code_name(e.code())}});
    }
  }
  measurer.sampler->stop();
  const auto end_time = std::chrono::system_clock::now();
  NLPF_CHECK(!rows.empty(), ErrorCode::UNSUPPORTED, "phase2: every point failed (", errors.size(),
             " in all, e.g. ", errors[0]["error"].get<std::string>(), "); no run directory was completed");

  // ---- pareto.csv, plots, errors.json, run.json ----
  const Phase2Finish finish =
      finish_phase2(plan, inputs, run.path(), rows, point_entries, errors,
                    environment_json(device, measurer.description, *measurer.meter),
                    measurer.description.name, measurer.gpu != nullptr, start_time, end_time);
  NLPF_CHECK(!interrupt_flag().load(), ErrorCode::INTERRUPTED,
             "interrupted by Ctrl-C while writing the run; no run directory was completed");
  run.commit();
  print_phase2_summary(out, plan, rows, errors.size(), finish, run.final_path());
  return Phase2Result{run.final_path(), static_cast<int>(rows.size()), static_cast<int>(errors.size())};
}

}  // namespace nlpf
