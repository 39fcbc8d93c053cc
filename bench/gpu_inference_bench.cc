// gpu_inference_bench: nlpf's side of the GPU inference comparison with PyTorch + transformers
// (bench/peer/peer_gpu_inference.py), same batches, same protocol, same JSON record schema, so that
// bench/report_gpu_inference.py can put the two side by side. Per model x precision x batch size x padding:
// the model's weights go to the GPU in the precision's compute dtype (BertInference), SST-2 dev is tokenised
// with the bert-base-uncased vocabulary and uploaded once in file-order batches (InferenceRunner: CUDA graphs
// per shape, LONGEST rounded up to a multiple of 8), and run_protocol measures it (NVML energy counter, idle
// baseline, warm-up, N trials of >= min-trial-seconds). bert_base: the config at --config-dir with HF's
// random init (seed 42); minilm: the checkpoint at --minilm-dir (its classifier initialised from seed 42).
// Exit: 0 done (failed points are records with "error"), 2 bad options, 3 an error, 4 no GPU.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/context.h"
#include "backend/device.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/fp8.h"
#include "experiment/run_files.h"
#include "measure/batch_timer.h"
#include "measure/energy_meter.h"
#include "measure/nvml_meter.h"
#include "measure/power_sampler.h"
#include "measure/protocol.h"
#include "model/bert_inference.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "model/fp8_calibration.h"
#include "model/inference_runner.h"
#include "nlpf/build_info.h"
#include "ops/linear.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

namespace nlpf {
namespace {

using json = nlohmann::json;
constexpr double kMiB = 1024.0 * 1024.0;

struct Options {
  std::string dev_tsv, vocab_dir, config_dir, minilm_dir, out;
  std::vector<std::string> models{"bert_base", "minilm"};
  std::vector<std::string> precisions{"fp32", "tf32", "bf16", "fp16"};
  std::vector<int64_t> batch_sizes{32, 64, 256};
  std::vector<std::string> paddings{"max_length", "longest"};
  int64_t max_length = 128;
  ProtocolOptions protocol;
  double gpu_warmup_seconds = 25.0;
  std::string gemm_selection = "autotune";   // or heuristic (backend/context.h)
  int autotune_candidates = 8;               // ExecutionContext::set_autotune_candidates
  int autotune_rounds = 1;                   // ExecutionContext::set_autotune_rounds
  std::string autotune_replay;               // an earlier run's JSON whose gemm_autotune choices are taken
  int64_t calibration_examples = 256;        // fp8 only
  std::string fp8_weight_scales = "tensor";  // fp8 only: tensor or channel (core/fp8.h)
  std::string padded_rows = "zero";          // or normalise (BertInference::set_zero_padded_rows)
  std::string tf32_gelu = "exact";           // or epilogue (BertInference::set_tf32_gelu_epilogue)
  std::string tf32_attention =
      "tensor-cores";                     // or cuda-cores (BertInference::set_tf32_attention_tensor_cores)
  std::string last_layer =  // first-token or all-tokens (BertInference::set_first_token_last_layer)
      BertInference::kFirstTokenLastLayerByDefault ? "first-token" : "all-tokens";
  std::string f32_residual =  // layer-norm or epilogue (BertInference::set_f32_residual_in_layer_norm)
      BertInference::kF32ResidualInLayerNormByDefault ? "layer-norm" : "epilogue";
  int64_t length_multiple = InferenceRunnerOptions{}.length_multiple;  // longest: lengths rounded up to it
  bool cuda_profiler_range = false;       // collect only each point's measured trials (cuda_profiler_collect)
};

json optional_json(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

// Keeps the GPU busy with the engine itself for `seconds` (a fresh H200 draws ~28% more power for its first
// ~22 s of load: METHOD and README).
void warm_up_gpu(InferenceRunner& runner, double seconds) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds)
    runner.run_pass();
}

json measure(ExecutionContext& gpu, EnergyMeter& meter, PowerSampler& sampler,
             const BertForSequenceClassification& model, const std::string& model_name,
             const std::string& precision_text, int64_t batch_size, const std::string& padding_text,
             const TokenizedDataset& data, const Options& o, const Fp8Calibration* calibration,
             bool& gpu_warm) {
  json record = {
      {"engine", "nlpf"},
      {"compile_mode", nullptr},
      {"model", model_name},
      {"precision", precision_text},
      {"batch_size", batch_size},
      {"padding", padding_text},
      {"gemm_selection", o.gemm_selection},
      {"autotune_candidates", o.gemm_selection == "autotune" ? json(o.autotune_candidates) : json(nullptr)},
      {"autotune_rounds", o.gemm_selection == "autotune" ? json(o.autotune_rounds) : json(nullptr)},
      {"autotune_replay", o.gemm_selection == "autotune" && !o.autotune_replay.empty()
                              ? json(o.autotune_replay)
                              : json(nullptr)},
      {"max_length", o.max_length},
      {"length_multiple", padding_text == "longest" ? json(o.length_multiple) : json(nullptr)},
      {"fp8_weight_scales", precision_text == "fp8" ? json(o.fp8_weight_scales) : json(nullptr)},
      {"padded_rows", o.padded_rows},
      {"tf32_gelu", precision_text == "tf32" ? json(o.tf32_gelu) : json(nullptr)},
      {"tf32_attention", precision_text == "tf32" ? json(o.tf32_attention) : json(nullptr)},
      {"last_layer", o.last_layer},
      {"f32_residual",
       precision_text == "fp32" || precision_text == "tf32" ? json(o.f32_residual) : json(nullptr)},
      {"examples_per_pass", data.size()},
      {"error", nullptr}};
  try {
    const Precision precision = parse_precision(precision_text);
    if (const auto reason = precision_unsupported_reason(describe_device(gpu.device()), precision)) {
      NLPF_THROW(ErrorCode::UNSUPPORTED, *reason);
    }
    gpu.allocator().reset_peak();
    gpu.set_autotune_candidates(o.autotune_candidates);
    gpu.set_autotune_rounds(o.autotune_rounds);
    const InferenceRunnerOptions options{
        .batch_size = batch_size,
        .padding = padding_text == "max_length" ? PaddingMode::MAX_LENGTH : PaddingMode::LONGEST,
        .length_multiple = o.length_multiple,
        .gemm_selection =
            o.gemm_selection == "heuristic" ? GemmSelection::HEURISTIC : GemmSelection::AUTOTUNE};
    BertInference engine(gpu, model.config(), model.parameters(), precision, batch_size,
                         planned_sequence_length(data, options),
                         precision == Precision::FP8 ? calibration : nullptr,
                         parse_fp8_weight_scales(o.fp8_weight_scales));
    engine.set_zero_padded_rows(o.padded_rows == "zero");
    engine.set_first_token_last_layer(o.last_layer == "first-token");
    if (precision == Precision::FP32 || precision == Precision::TF32)
      engine.set_f32_residual_in_layer_norm(o.f32_residual == "layer-norm");
    if (precision == Precision::TF32) {
      engine.set_tf32_gelu_epilogue(o.tf32_gelu == "epilogue");
      engine.set_tf32_attention_tensor_cores(o.tf32_attention == "tensor-cores");
    }
    InferenceRunner runner(engine, data, options);
    if (!gpu_warm) {
      warm_up_gpu(runner, o.gpu_warmup_seconds);
      gpu_warm = true;
    }
    const std::unique_ptr<BatchTimer> timer = make_batch_timer(gpu.device(), gpu.native_stream());
    const Workload workload = evaluation_workload([&] { return runner.run_pass(timer.get()); }, data.size());
    if (o.cuda_profiler_range) {  // every plan autotuned and every graph captured before collection starts
      runner.run_pass();
      cuda_profiler_collect(true);
    }
    const ProtocolResult r = run_protocol(o.protocol, meter, &sampler, workload);
    if (o.cuda_profiler_range) cuda_profiler_collect(false);
    int64_t correct = 0;
    for (size_t i = 0; i < r.predictions.size(); ++i) correct += r.predictions[i] == data.labels[i];
    json shapes = json::array();
    for (const auto& [B, T] : runner.shapes()) shapes.push_back(T);
    record.update({{"accuracy", static_cast<double>(correct) / static_cast<double>(data.size())},
                   {"j_per_example", optional_json(r.energy_per_example_j)},
                   {"j_per_example_ci_low", optional_json(r.energy_per_example_j_ci_low)},
                   {"j_per_example_ci_high", optional_json(r.energy_per_example_j_ci_high)},
                   {"j_per_example_cv", optional_json(r.cv)},
                   {"dynamic_j_per_example", optional_json(r.dynamic_energy_per_example_j)},
                   {"fp8_channel_gemm_form", precision == Precision::FP8 && o.fp8_weight_scales == "channel"
                                                 ? json(ops::fp8_channel_gemm_form(gpu))
                                                 : json(nullptr)},
                   {"ms_per_example", r.average_latency_per_example_ms},
                   {"examples_per_s", r.throughput_examples_per_s},
                   {"avg_power_w", optional_json(r.average_power_w)},
                   {"idle_power_w", optional_json(r.idle_power_w)},
                   {"latency_p50_ms", optional_json(r.latency_p50_ms)},
                   {"latency_p90_ms", optional_json(r.latency_p90_ms)},
                   {"latency_p99_ms", optional_json(r.latency_p99_ms)},
                   {"peak_memory_mb", static_cast<double>(gpu.allocator().peak_bytes()) / kMiB},
                   {"weights_mb", static_cast<double>(engine.weight_bytes()) / kMiB},
                   {"workspace_mb", static_cast<double>(engine.workspace_bytes()) / kMiB},
                   {"trials", r.trials.size()},
                   {"throttled", r.throttled ? json(*r.throttled) : json(nullptr)},
                   {"shapes", shapes}});
  } catch (const Error& e) {
    record["error"] = e.what();
  }
  return record;
}

constexpr std::pair<MathMode, const char*> kMathNames[] = {{MathMode::IEEE_FP32, "ieee_fp32"},
                                                           {MathMode::TF32, "tf32"},
                                                           {MathMode::BF16, "bf16"},
                                                           {MathMode::FP16, "fp16"}};

// A math mode's name in the JSON (kMathNames); INTERNAL for a mode the table lacks (a new MathMode).
const char* math_name(MathMode mode) {
  const auto entry = std::find_if(std::begin(kMathNames), std::end(kMathNames),
                                  [&](const auto& named) { return named.first == mode; });
  NLPF_CHECK(entry != std::end(kMathNames), ErrorCode::INTERNAL, "gpu_inference_bench: math mode ",
             static_cast<int>(mode), " has no name in kMathNames");
  return entry->second;
}

// What the GEMM autotune saw, every plan of the context so far: shape, math, beta, each candidate's time
// (ms of 5 launches, its fastest round; -1 refused), the index chosen (0: the heuristic's own choice) and its
// cuBLASLt configuration, the plan's name, and whether the choice was replayed (--autotune-replay).
json autotune_json(ExecutionContext& gpu) {
  json plans = json::array();
  for (const GemmAutotuneRecord& r : ops::gemm_autotune_records(gpu)) {
    plans.push_back({{"M", r.M},
                     {"N", r.N},
                     {"K", r.K},
                     {"batch", r.batch},
                     {"math", math_name(r.math_mode)},
                     {"reads_c", r.reads_c},
                     {"candidate_ms", r.candidate_ms},
                     {"chosen", r.chosen},
                     {"chosen_algo", r.chosen_algo},
                     {"plan", r.plan},
                     {"replayed", r.replayed}});
  }
  return plans;
}

// The autotune records of an earlier run's JSON (its "gemm_autotune", autotune_json's form), for
// ExecutionContext::set_autotune_replay. INVALID_ARGUMENT naming the file when it is not that JSON.
std::vector<GemmAutotuneRecord> read_autotune_records(const std::string& path) {
  std::vector<GemmAutotuneRecord> records;
  const std::string text = read_file(path);
  try {
    const json parsed = json::parse(text);
    for (const json& plan : parsed.at("gemm_autotune")) {
      const std::string math_text = plan.at("math").get<std::string>();
      const auto math = std::find_if(std::begin(kMathNames), std::end(kMathNames),
                                     [&](const auto& entry) { return math_text == entry.second; });
      NLPF_CHECK(math != std::end(kMathNames), ErrorCode::INVALID_ARGUMENT, path, ": math ", math_text);
      records.push_back({.M = plan.at("M").get<int64_t>(),
                         .N = plan.at("N").get<int64_t>(),
                         .K = plan.at("K").get<int64_t>(),
                         .batch = plan.at("batch").get<int64_t>(),
                         .math_mode = math->first,
                         .reads_c = plan.at("reads_c").get<bool>(),
                         .candidate_ms = plan.at("candidate_ms").get<std::vector<float>>(),
                         .chosen = plan.at("chosen").get<int>(),
                         .chosen_algo = plan.at("chosen_algo").get<std::string>(),
                         .plan = plan.at("plan").get<std::string>()});
    }
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, path, ": not a gpu_inference_bench JSON with gemm_autotune (",
               e.what(), ")");
  }
  NLPF_CHECK(!records.empty(), ErrorCode::INVALID_ARGUMENT, path, ": no gemm_autotune records to replay");
  return records;
}

int run(const Options& o) {
  const std::vector<GemmAutotuneRecord> replay = o.autotune_replay.empty()
                                                     ? std::vector<GemmAutotuneRecord>{}
                                                     : read_autotune_records(o.autotune_replay);
  if (cuda_devices().empty()) {
    std::fprintf(stderr, "gpu_inference_bench: no CUDA device visible\n");
    return 4;
  }
  const Device device{DeviceType::CUDA, 0};
  const DeviceDescription description = describe_device(device);
  std::unique_ptr<EnergyMeter> meter = choose_meter(description);
  NLPF_CHECK(meter->available(), ErrorCode::NVML, "no energy counter: ", meter->unavailable_reason());
  PowerSampler sampler(*meter);
  sampler.start();
  std::unique_ptr<ExecutionContext> gpu = make_execution_context(device);
  gpu->set_autotune_replay(replay);
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(o.vocab_dir);
  const TokenizedDataset data = tokenize_dataset(read_dataset(o.dev_tsv), tokenizer, o.max_length, false);
  json out = {{"tool", "nlpf"},
              {"nlpf_commit", kGitCommit},
              {"gpu", description.name},
              {"gpu_uuid", description.uuid},
              {"cuda_runtime", cuda_runtime_version()},
              {"driver", cuda_driver_version()},
              {"meter", meter->describe()},
              {"date", iso_time(std::chrono::system_clock::now())},
              {"protocol",
               {{"trials", o.protocol.trials},
                {"min_trial_seconds", o.protocol.min_trial_seconds},
                {"idle_seconds", o.protocol.idle_seconds},
                {"warmup_seconds", o.protocol.warmup_min_seconds}}},
              {"records", json::array()}};
  bool gpu_warm = false;
  for (const std::string& model_name : o.models) {
    std::unique_ptr<BertForSequenceClassification> model;
    if (model_name == "bert_base") {
      model = std::make_unique<BertForSequenceClassification>(BertConfig::load(o.config_dir + "/config.json"),
                                                              42);
    } else {
      model = std::make_unique<BertForSequenceClassification>(load_checkpoint(o.minilm_dir, {.quiet = true}));
    }
    // fp8's activation scales (model/fp8_calibration.h), once per model: the bench has no training split, so
    // it calibrates on the first of a seeded shuffle of the dev set (phase2 uses training data; for the
    // random-weight bert_base shape the choice of sentences is immaterial to speed and energy).
    std::optional<Fp8Calibration> calibration;
    if (std::find(o.precisions.begin(), o.precisions.end(), "fp8") != o.precisions.end()) {
      calibration = calibrate_fp8(*model, data, o.calibration_examples, 42, 32, o.max_length);
    }
    for (const std::string& precision : o.precisions) {
      for (int64_t batch_size : o.batch_sizes) {
        for (const std::string& padding : o.paddings) {
          json record = measure(*gpu, *meter, sampler, *model, model_name, precision, batch_size, padding,
                                data, o, calibration ? &*calibration : nullptr, gpu_warm);
          std::fprintf(
              stderr, "nlpf %s %s b%lld %s: %s\n", model_name.c_str(), precision.c_str(),
              static_cast<long long>(batch_size), padding.c_str(),
              record["error"].is_null()
                  ? (std::to_string(
                         record["j_per_example"].is_null() ? -1.0 : record["j_per_example"].get<double>()) +
                     " J/ex, " + std::to_string(record["ms_per_example"].get<double>()) + " ms/ex")
                        .c_str()
                  : record["error"].get<std::string>().c_str());
          out["records"].push_back(record);
          out["gemm_autotune"] = autotune_json(*gpu);
          if (!o.out.empty()) write_file_atomic(o.out, out.dump(2) + "\n");
        }
      }
    }
  }
  sampler.stop();
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace nlpf

int main(int argc, char** argv) {
  nlpf::Options o;
  CLI::App app("nlpf side of the GPU inference benchmark (bench/peer/peer_gpu_inference.py is the peer)");
  app.add_option("--dev-tsv", o.dev_tsv, "SST-2 dev.tsv")->required();
  app.add_option("--vocab-dir", o.vocab_dir, "bert-base-uncased vocab.txt + tokenizer_config.json")
      ->required();
  app.add_option("--config-dir", o.config_dir, "bert-base-uncased config.json directory (model bert_base)");
  app.add_option("--minilm-dir", o.minilm_dir, "all-MiniLM-L6-v2 checkpoint (model minilm)");
  app.add_option("--models", o.models)->check(CLI::IsMember({"bert_base", "minilm"}));
  app.add_option("--precisions", o.precisions);
  app.add_option("--batch-sizes", o.batch_sizes);
  app.add_option("--paddings", o.paddings)->check(CLI::IsMember({"max_length", "longest"}));
  app.add_option("--max-length", o.max_length);
  app.add_option("--trials", o.protocol.trials);
  app.add_option("--min-trial-seconds", o.protocol.min_trial_seconds);
  app.add_option("--idle-seconds", o.protocol.idle_seconds);
  app.add_option("--warmup-seconds", o.protocol.warmup_min_seconds);
  app.add_option("--gpu-warmup-seconds", o.gpu_warmup_seconds);
  app.add_option("--gemm-selection", o.gemm_selection,
                 "cuBLASLt algorithm: autotune (the engine's) or heuristic")
      ->check(CLI::IsMember({"autotune", "heuristic"}));
  app.add_option("--autotune-candidates", o.autotune_candidates,
                 "autotune: how many of cuBLASLt's heuristic candidates are timed per GEMM shape")
      ->check(CLI::Range(1, nlpf::ExecutionContext::kMaxAutotuneCandidates));
  app.add_option("--autotune-rounds", o.autotune_rounds,
                 "autotune: rounds of timing every candidate in turn, each candidate's fastest counting")
      ->check(CLI::Range(1, nlpf::ExecutionContext::kMaxAutotuneRounds));
  app.add_option(
         "--autotune-replay", o.autotune_replay,
         "autotune: take each GEMM's choice from this earlier run's JSON (--out) instead of timing: "
         "for a profiled run, whose own timings are the profiler's (same options as the recorded run)")
      ->check(CLI::ExistingFile);
  app.add_option("--calibration-examples", o.calibration_examples,
                 "fp8: dev examples for the activation scales");
  app.add_option("--fp8-weight-scales", o.fp8_weight_scales,
                 "fp8: one E4M3 scale per weight (tensor) or per output channel (channel)")
      ->check(CLI::IsMember({"tensor", "channel"}));
  app.add_option("--padded-rows", o.padded_rows,
                 "rows of padded tokens in the LayerNorms and the f32 GELU: 0 unread (zero, the engine's) or "
                 "computed")
      ->check(CLI::IsMember({"zero", "normalise"}));
  app.add_option("--tf32-gelu", o.tf32_gelu,
                 "tf32: the feed-forward GELU as the exact erf pass (exact, the engine's) or cuBLASLt's tanh "
                 "epilogue (epilogue)")
      ->check(CLI::IsMember({"exact", "epilogue"}));
  app.add_option(
         "--tf32-attention", o.tf32_attention,
         "tf32: the attention's products on the tensor cores in tf32 (tensor-cores, the engine's) or on "
         "the CUDA cores in fp32 (cuda-cores)")
      ->check(CLI::IsMember({"cuda-cores", "tensor-cores"}));
  app.add_option("--last-layer", o.last_layer,
                 "the last encoder layer past its QKV projection for token 0 alone, the row the pooler reads "
                 "(first-token, the engine's), or for every token (all-tokens)")
      ->check(CLI::IsMember({"all-tokens", "first-token"}));
  app.add_option("--length-multiple", o.length_multiple,
                 "padded to the longest: each batch's length rounded up to a multiple of this (8, the engine's: "
                 "fewer shapes and graphs; 1 pads as PyTorch does, to the batch's longest example)")
      ->check(CLI::PositiveNumber);
  app.add_option(
         "--f32-residual", o.f32_residual,
         "fp32/tf32: the attention-output and output GEMMs leave the residual to the LayerNorm's pass "
         "(layer-norm, the engine's) or add it as their C (epilogue)")
      ->check(CLI::IsMember({"epilogue", "layer-norm"}));
  app.add_flag(
      "--cuda-profiler-range", o.cuda_profiler_range,
      "for a profiler started with collection off (ncu --profile-from-start off): collect each point's "
      "protocol only, after a pass that autotunes its GEMMs and captures its graphs unprofiled");
  app.add_option("--out", o.out, "also write the JSON here (rewritten after every record)");
  CLI11_PARSE(app, argc, argv);
  try {
    return nlpf::run(o);
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "gpu_inference_bench: %s\n", e.what());
    return 3;
  }
}
