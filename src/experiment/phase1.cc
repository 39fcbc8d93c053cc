// run_phase1: resolve the device and precision (refusing before any work), load model and data, train
// (train/trainer.h) with every epoch's weights saved inside the staging directory, measure each epoch's
// model with the protocol, then write the run's files and rename the directory into place.
// CSV cells and JSON values that could not be measured are empty / null with a reason, never 0.
#include "experiment/phase1.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/device.h"
#include "core/allocator.h"
#include "core/error.h"
#include "core/file_util.h"
#include "experiment/gpu_measure.h"
#include "experiment/run_files.h"
#include "experiment/run_plots.h"
#include "fetch/fetch.h"
#include "measure/energy_meter.h"
#include "measure/metrics_json.h"
#include "measure/power_sampler.h"
#include "model/bert_inference.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "text/batching.h"
#include "text/dataset.h"
#include "text/tokenizer.h"
#include "train/interrupt.h"
#include "train/lr_schedule.h"
#include "train/trainer.h"

namespace nlpf {

namespace {

using json = nlohmann::json;

// The arithmetic a --train-precision stands for, written to run.json beside it (docs/ENGINE.md), so that a
// run says how its GEMMs ran: bf16 and fp16 meant f32 operands down-converted by cuBLASLt before 2026-11-30's
// 16-bit operands.
std::string train_arithmetic(const std::string& precision) {
  if (precision == "tf32") return "TF32 tensor-core GEMM inputs, fp32 accumulation, f32 tensors";
  if (precision == "bf16" || precision == "fp16") {
    return "mixed precision: " + precision +
           " operands for the encoder's GEMMs (weights rounded from f32 masters before each forward), fp32 "
           "accumulation; f32 master weights, residual stream, LayerNorm and softmax statistics, loss and "
           "gradients" +
           (precision == "fp16" ? "; dynamic loss scaling" : "");
  }
  return "IEEE fp32 (no TF32)";
}

void check_settings(const Phase1Settings& s, Device device) {
  const bool cuda = device.type == DeviceType::CUDA;
  const bool tensor_core_mode =
      s.train_precision == "tf32" || s.train_precision == "bf16" || s.train_precision == "fp16";
  NLPF_CHECK(s.train_precision == "fp32" || (cuda && tensor_core_mode), ErrorCode::UNSUPPORTED,
             "--train-precision ", s.train_precision,
             tensor_core_mode ? ": a GPU tensor-core mode (the CPU trains in fp32); use fp32"
                              : ": expected fp32, tf32, bf16 or fp16");
  NLPF_CHECK(s.init == "pretrained" || s.init == "random", ErrorCode::INVALID_ARGUMENT,
             "--init: expected pretrained or random, got '", s.init, "'");
  parse_padding(s.padding);
  check_data_settings(s.data, /*need_train=*/s.epochs > 0);
}

}  // namespace

std::string phase1_run_name(std::time_t time) {
  return run_timestamp(time) + "_phase_1_baseline";
}

Phase1Result run_phase1(const Phase1Settings& s) {
  std::ostream& out = s.out ? *s.out : std::cout;
  std::ostream& log = s.log ? *s.log : std::cerr;
  const auto start_time = std::chrono::system_clock::now();
  // Device and precision refusals come first: nothing may be loaded or fetched for a run that cannot happen.
  const Device device = choose_run_device(s.device, s.quiet, log);
  check_settings(s, device);
  const bool on_gpu = device.type == DeviceType::CUDA;
  const PaddingMode padding = parse_padding(s.padding);
  const bool show_progress = !s.quiet;  // Progress itself stays silent unless stderr is a terminal

  // ---- model ----
  const std::filesystem::path model_dir = ensure_model(s.model);
  // The GPU contexts outlive the model (its tensors free into their allocators), also when an error unwinds.
  std::unique_ptr<ExecutionContext> train_gpu, eval_gpu;
  std::unique_ptr<BertForSequenceClassification> model;
  BertConfig config;
  if (s.init == "random") {
    config = BertConfig::load(model_dir / "config.json");
    model = std::make_unique<BertForSequenceClassification>(config, s.seed);
  } else {
    CheckpointLoadOptions load_options;
    load_options.init_seed = s.seed;
    load_options.quiet = s.quiet;
    load_options.notices = &log;
    const Checkpoint checkpoint = load_checkpoint(model_dir, load_options);
    config = checkpoint.config;
    model = std::make_unique<BertForSequenceClassification>(checkpoint);
  }
  if (const std::optional<std::string> reason = BertInference::unsupported_reason(config, device)) {
    NLPF_THROW(ErrorCode::UNSUPPORTED, "--device ", s.device, ": ", *reason);  // before any training
  }
  model->set_dropout(DropoutSettings::from_config(config, s.seed));
  // On a GPU, training runs on one context (its math mode is the training precision's) and every evaluation
  // and measurement on another (the inference engine sets its own math mode on the context it is given).
  if (on_gpu) {
    eval_gpu = make_execution_context(device);
    if (s.epochs > 0) {
      train_gpu = make_execution_context(device);
      train_gpu->set_math_mode(s.train_precision == "tf32"   ? MathMode::TF32
                               : s.train_precision == "bf16" ? MathMode::BF16
                               : s.train_precision == "fp16" ? MathMode::FP16
                                                             : MathMode::IEEE_FP32);
      model->to_context(*train_gpu);
    }
  }
  NLPF_CHECK(s.max_sequence_length <= config.max_position_embeddings, ErrorCode::INVALID_ARGUMENT,
             "--max-sequence-length ", s.max_sequence_length, " exceeds max_position_embeddings ",
             config.max_position_embeddings, " of ", (model_dir / "config.json").string());
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(model_dir);

  // ---- data ----
  // --epochs 0 measures the given model as it is (a fine-tuned checkpoint): no training data is read.
  const bool train = s.epochs > 0;
  const DataFiles files = locate_data(s.data, /*need_train=*/train);
  const Dataset train_set =
      train ? read_split(files.train, s.data, config.num_labels(), s.data.max_train_examples) : Dataset{};
  const Dataset eval_set = read_split(files.eval, s.data, config.num_labels(), s.data.max_eval_examples);
  for (const Example& e : eval_set.examples) {
    NLPF_CHECK(e.label != kNoLabel, ErrorCode::INVALID_ARGUMENT, files.eval.string(), ":", e.line,
               ": the evaluation split needs labels (best epoch by validation accuracy)");
  }
  const TokenizedDataset train_data =
      tokenize_dataset(train_set, tokenizer, s.max_sequence_length, show_progress);
  const TokenizedDataset eval_data =
      tokenize_dataset(eval_set, tokenizer, s.max_sequence_length, show_progress);

  // ---- run directory, meter ----
  // From here on Ctrl-C only raises a flag, so the staging directory is always removed on the way out.
  SigintGuard sigint_guard;
  std::filesystem::create_directories(s.runs_dir);
  StagedDirectory run(std::filesystem::path(s.runs_dir) /
                      phase1_run_name(std::chrono::system_clock::to_time_t(start_time)));
  const std::filesystem::path epochs_dir = run.path() / ".epochs";
  std::filesystem::create_directories(epochs_dir);
  const DeviceDescription device_description = describe_device(device);
  std::unique_ptr<EnergyMeter> meter = choose_meter(device_description);
  PowerSampler sampler(*meter);
  std::vector<PowerTraceRow> markers;  // the trace's rows when the meter has no reading (power empty)
  const auto trace_start = std::chrono::steady_clock::now();
  const auto mark = [&](const std::string& phase) {
    if (meter->available()) {
      sampler.set_phase(phase);
    } else {
      PowerTraceRow row;
      row.timestamp_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - trace_start).count();
      row.source = "none";  // no power reading: the row marks a phase change only
      row.phase = phase;
      markers.push_back(row);
    }
  };
  sampler.start();

  // ---- training ----
  TrainerOptions trainer;
  trainer.epochs = s.epochs;
  trainer.batch_size = s.batch_size;
  trainer.max_length = s.max_sequence_length;
  trainer.eval_batch_size = s.eval_batch_size;
  trainer.eval_padding = padding;
  trainer.seed = s.seed;
  trainer.warmup_ratio = s.warmup_ratio;
  trainer.optimizer.learning_rate = s.learning_rate;
  trainer.optimizer.weight_decay = s.weight_decay;
  trainer.optimizer.loss_scaling.enabled =
      s.train_precision == "fp16";  // GradScaler's defaults, as the Trainer
  trainer.show_progress = show_progress;
  trainer.on_step = s.on_step;
  if (meter->available()) trainer.read_energy_j = [&] { return meter->read_energy_j(); };
  GpuEvaluationOptions gpu_eval;
  gpu_eval.batch_size = s.eval_batch_size;
  gpu_eval.padding = padding;
  if (on_gpu) {
    trainer.evaluate = [&](BertForSequenceClassification& m) {
      return evaluate_on_gpu(*eval_gpu, m.config(), m.to_checkpoint_tensors(), eval_data, gpu_eval);
    };
  }
  trainer.on_epoch_end = [&](const EpochResult& epoch, BertForSequenceClassification& m) {
    if (!s.quiet) {
      log << "epoch " << epoch.epoch << ": accuracy "
          << (epoch.accuracy ? std::to_string(*epoch.accuracy) : std::string("n/a")) << "\n";
    }
    save_checkpoint(epochs_dir / ("epoch_" + std::to_string(epoch.epoch)), m.config(),
                    m.to_checkpoint_tensors(), tokenizer.vocab(), tokenizer.options().do_lower_case);
  };
  mark("train");
  // Joules over training (0 stands for "no reading" only inside this function; see energy_measured).
  const bool energy_measured = meter->available();
  const double train_energy_start = energy_measured ? meter->read_energy_j() : 0.0;
  const TrainResult trained = [&] {
    try {
      return train_classifier(*model, train_data, eval_data, trainer);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::OUT_OF_MEMORY) throw;
      // Training's memory grows with the batch and its length (bert_model.h: Memory): say which options set
      // it.
      NLPF_THROW(ErrorCode::OUT_OF_MEMORY, "training with --batch-size ", s.batch_size,
                 " and --max-sequence-length ", s.max_sequence_length, " (", s.train_precision,
                 ") does not fit: ", e.what(), "; try a smaller --batch-size or --max-sequence-length");
    }
  }();
  const double train_energy_end = energy_measured ? meter->read_energy_j() : 0.0;
  model.reset();  // frees parameters, gradients and activations before inference is measured
  // The training context's allocator high-water mark (parameters, gradients, AdamW moments, activations) plus
  // what the captured steps' CUDA graphs held of their own (their activations, outside the allocator).
  const size_t graph_bytes = train_gpu ? train_gpu->graph_memory_peak_bytes() : 0;
  const auto mib = [](size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); };
  const json train_graph_memory_mb = train_gpu ? json(mib(graph_bytes)) : json(nullptr);
  const json train_peak_gpu_mb =
      train_gpu ? json(mib(train_gpu->allocator().peak_bytes() + graph_bytes)) : json(nullptr);
  train_gpu.reset();
  NLPF_CHECK(trained.best_index >= 0, ErrorCode::INTERNAL, "phase1: no epoch had an accuracy");
  const auto best_index = static_cast<size_t>(trained.best_index);

  // ---- measurement of every epoch's model ----
  std::vector<json> epoch_metrics;
  for (const EpochResult& epoch : trained.epochs) {
    CheckpointLoadOptions load_options;
    load_options.quiet = true;
    const Checkpoint checkpoint =
        load_checkpoint(epochs_dir / ("epoch_" + std::to_string(epoch.epoch)), load_options);
    BertForSequenceClassification measured(checkpoint);
    measured.drop_gradients();
    mark("measure epoch " + std::to_string(epoch.epoch));
    InferenceMetricsInputs inputs;
    inputs.accuracy = epoch.accuracy;
    ProtocolResult measured_result;
    if (on_gpu) {
      measured_result = measure_on_gpu(*eval_gpu, *meter, sampler, measured.config(), measured.parameters(),
                                       eval_data, gpu_eval, s.protocol, inputs);
    } else {
      Allocator& allocator = host_allocator();
      allocator.reset_peak();
      const Workload workload = evaluation_workload(
          [&] {
            return evaluate_classifier(measured, eval_data, s.eval_batch_size, s.max_sequence_length,
                                       padding);
          },
          eval_data.size());
      measured_result = run_protocol(s.protocol, *meter, meter->available() ? &sampler : nullptr, workload);
      inputs.peak_gpu_memory_null_reason = "CPU run: no GPU memory; see peak_memory_mb (host allocator)";
      inputs.peak_memory_mb = static_cast<double>(allocator.peak_bytes()) / (1024.0 * 1024.0);
    }
    NLPF_CHECK(measured_result.predictions == epoch.predictions, ErrorCode::INTERNAL, "epoch ", epoch.epoch,
               ": the reloaded checkpoint predicts differently from the model it was saved from");
    epoch_metrics.push_back(inference_metrics_json(measured_result, inputs));
  }
  mark("end");
  const double run_energy_end = energy_measured ? meter->read_energy_j() : 0.0;
  sampler.stop();
  const auto end_time = std::chrono::system_clock::now();

  // ---- best model ----
  const std::filesystem::path best_dir = run.path() / "best_model";
  std::filesystem::rename(epochs_dir / ("epoch_" + std::to_string(trained.best_epoch)), best_dir);
  std::filesystem::remove_all(epochs_dir);
  const EpochResult& best = trained.epochs[best_index];

  // ---- pareto.csv and the plot ----
  std::vector<ParetoRow> pareto_rows;
  for (size_t i = 0; i < epoch_metrics.size(); ++i) {
    const int epoch = trained.epochs[i].epoch;
    pareto_rows.push_back({"epoch_" + std::to_string(epoch), {{"epoch", epoch}}, epoch_metrics[i]});
  }
  const ParetoTable pareto = make_pareto_table(pareto_rows);
  write_file_atomic(run.path() / "pareto.csv", pareto.csv);
  const RunPlotTitle plot_title{std::filesystem::path(s.model).filename().string(), s.data.task,
                                device_description.name.empty() ? "cpu" : device_description.name};
  const std::optional<std::string> plot_skipped = draw_accuracy_plot(
      run.path() / "pareto_frontier.png", pareto_rows, pareto.on_frontier, pareto.frontier_cost, plot_title);

  // ---- predictions, train log, power trace ----
  std::ostringstream predictions;
  for (size_t i = 0; i < best.predictions.size(); ++i) {
    const int32_t label = eval_data.labels[i];
    predictions << json{{"prediction", best.predictions[i]},
                        {"label", label == kNoLabel ? json(nullptr) : json(label)}}
                       .dump()
                << '\n';
  }
  write_file_atomic(run.path() / "predictions.jsonl", predictions.str());
  write_file_atomic(run.path() / "train_log.csv", trained.train_log_csv);
  write_power_trace_csv(run.path() / "power_trace.csv", meter->available() ? sampler.rows() : markers);

  // ---- metrics.json ----
  const char* kNoTraining = "no training (--epochs 0): the given model is measured as it is";
  json training = {{"seconds", trained.train_seconds},
                   {"steps", trained.steps},
                   {"examples", trained.examples},
                   {"examples_per_s", train ? json(static_cast<double>(trained.examples) /
                                                   std::max(trained.train_seconds, 1e-9))
                                            : json(nullptr)},
                   {"energy_source", meter->source()},
                   {"best_epoch", trained.best_epoch},
                   {"device", device_string(device)},
                   {"precision", s.train_precision},
                   {"peak_gpu_memory_mb", train_peak_gpu_mb},
                   {"graph_memory_mb", train_graph_memory_mb},
                   // How the steps ran (CUDA): each shape's first step eagerly, then replays of its graph.
                   {"captured_step_shapes", trained.captured_shapes},
                   {"replayed_steps", trained.replayed_steps}};
  if (trainer.optimizer.loss_scaling.enabled) {
    training["loss_scaling"] = {{"initial_scale", trainer.optimizer.loss_scaling.initial_scale},
                                {"final_scale", trained.final_loss_scale},
                                {"skipped_steps", trained.skipped_steps}};
  }
  if (!train_peak_gpu_mb.is_number()) {
    training["null_reasons"]["peak_gpu_memory_mb"] = !on_gpu ? "CPU run: no GPU memory" : kNoTraining;
    training["null_reasons"]["graph_memory_mb"] = training["null_reasons"]["peak_gpu_memory_mb"];
  }
  if (!train) training["null_reasons"]["examples_per_s"] = kNoTraining;
  if (energy_measured && train) {
    // joules: the training steps only (the same window as seconds); window_joules: from the first step to the
    // end of the last epoch, the per-epoch evaluations and checkpoint writes included.
    double joules = 0.0;
    for (const EpochResult& epoch : trained.epochs) joules += epoch.train_energy_j.value_or(0.0);
    training["energy"] = {{"joules", joules},
                          {"joules_per_step", joules / static_cast<double>(trained.steps)},
                          {"joules_per_example", joules / static_cast<double>(trained.examples)},
                          {"average_power_w", joules / std::max(trained.train_seconds, 1e-9)},
                          {"window_joules", train_energy_end - train_energy_start},
                          {"includes_epoch_evaluation", false}};
    // Training plus the inference benchmark: every joule from the first training step to the end of the
    // last measurement (idle baselines and warm-ups included): the run's energy as one figure.
    training["run_energy_j"] = run_energy_end - train_energy_start;
  } else {
    training["energy"] = nullptr;
    training["null_reasons"]["energy"] = train ? meter->unavailable_reason() : kNoTraining;
  }
  json per_epoch = json::array();
  for (size_t i = 0; i < epoch_metrics.size(); ++i) {
    per_epoch.push_back(
        {{"epoch", trained.epochs[i].epoch},
         {"steps_done", trained.epochs[i].steps_done},
         {"train_seconds", trained.epochs[i].train_seconds},
         {"train_energy_j",
          trained.epochs[i].train_energy_j ? json(*trained.epochs[i].train_energy_j) : json(nullptr)},
         {"on_frontier", pareto.on_frontier[i] ? json(*pareto.on_frontier[i]) : json(nullptr)},
         {"inference_benchmark_metrics", epoch_metrics[i]}});
  }
  const std::filesystem::path final_best_dir = std::filesystem::absolute(run.final_path() / "best_model");
  json metrics = {{"best_model_directory", final_best_dir.string()},
                  {"best_epoch", trained.best_epoch},
                  {"inference_benchmark_metrics", epoch_metrics[best_index]},
                  {"training", training},
                  {"epochs", per_epoch},
                  {"frontier_cost", pareto.frontier_cost},
                  {"plot", plot_skipped ? json(*plot_skipped) : json("pareto_frontier.png")}};
  write_file_atomic(run.path() / "metrics.json", metrics.dump(2) + "\n");

  // ---- run.json ----
  const auto file_entry = [](const std::filesystem::path& path, const Dataset& data,
                             const TokenizedDataset& tok) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    return json{{"path", std::filesystem::absolute(path).string()},
                {"bytes", ec ? json(nullptr) : json(bytes)},
                {"examples_used", data.size()},
                {"max_untruncated_length", tok.max_untruncated_length},
                {"mean_untruncated_length", tok.mean_untruncated_length},
                {"truncated_examples", tok.num_truncated}};
  };
  json run_json = {
      {"command", "phase1"},
      {"config",
       {{"model", s.model},
        {"model_directory", std::filesystem::absolute(model_dir).string()},
        {"init", s.init},
        {"task", s.data.task},
        {"max_sequence_length", s.max_sequence_length},
        {"batch_size", s.batch_size},
        {"epochs", s.epochs},
        {"learning_rate", s.learning_rate},
        {"weight_decay", s.weight_decay},
        {"warmup_ratio", s.warmup_ratio},
        {"warmup_steps", warmup_steps_for(s.warmup_ratio, trained.steps)},
        {"total_steps", trained.steps},
        {"adam_beta1", trainer.optimizer.beta1},
        {"adam_beta2", trainer.optimizer.beta2},
        {"adam_epsilon", trainer.optimizer.eps},
        {"max_grad_norm", trainer.optimizer.max_grad_norm},
        {"dropout",
         {{"hidden", config.hidden_dropout_prob},
          {"attention", config.attention_probs_dropout_prob},
          {"classifier", config.effective_classifier_dropout()}}},
        {"train_padding", "longest in batch (masked; equals max-length padding up to rounding)"},
        {"padding", padding_name(padding)},
        {"seed", s.seed},
        {"eval_batch_size", s.eval_batch_size},
        {"device", s.device},
        {"train_precision", s.train_precision},
        {"train_arithmetic", train_arithmetic(s.train_precision)},
        {"inference_precision", "fp32"},
        {"runs_dir", s.runs_dir},
        {"max_train_examples", s.data.max_train_examples ? json(*s.data.max_train_examples) : json(nullptr)},
        {"max_eval_examples", s.data.max_eval_examples ? json(*s.data.max_eval_examples) : json(nullptr)},
        {"trials", s.protocol.trials},
        {"min_trial_seconds", s.protocol.min_trial_seconds},
        {"idle_seconds", s.protocol.idle_seconds},
        {"warmup_seconds", s.protocol.warmup_min_seconds},
        {"cooldown_seconds", s.protocol.cooldown_seconds}}},
      {"data",
       {{"train", train ? file_entry(files.train, train_set, train_data) : json(nullptr)},
        {"eval", file_entry(files.eval, eval_set, eval_data)}}},
      {"environment", environment_json(device, device_description, *meter)},
      {"plot_title", {{"model", plot_title.model}, {"task", plot_title.task}, {"device", plot_title.device}}},
      {"start_time", iso_time(start_time)},
      {"end_time", iso_time(end_time)}};
  write_file_atomic(run.path() / "run.json", run_json.dump(2) + "\n");

  NLPF_CHECK(!interrupt_flag().load(), ErrorCode::INTERRUPTED,
             "interrupted by Ctrl-C while writing the run; no run directory was completed");
  run.commit();

  // ---- summary ----
  const json& best_metrics = epoch_metrics[best_index];
  out << "phase1 done: best epoch " << trained.best_epoch << " of " << s.epochs << ", accuracy "
      << csv_cell(best_metrics.at("accuracy")) << ", "
      << csv_cell(best_metrics.at("average_latency_per_example_ms")) << " ms/example, ";
  if (best_metrics.at("energy_per_example_j").is_number()) {
    out << csv_cell(best_metrics.at("energy_per_example_j")) << " J/example";
  } else {
    const json reasons = value_or_null(best_metrics, "null_reasons");
    out << "J/example null ("
        << (reasons.is_object() && reasons.contains("energy_per_example_j")
                ? reasons.at("energy_per_example_j").get<std::string>()
                : meter->unavailable_reason())
        << ")";
  }
  out << "\n";
  if (plot_skipped) out << *plot_skipped << "\n";
  out << "run directory: " << run.final_path().string() << "\n";
  return Phase1Result{run.final_path(), trained.best_epoch, best.accuracy};
}

}  // namespace nlpf
