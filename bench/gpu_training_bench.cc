// gpu_training_bench: nlpf's side of the training-step comparison with PyTorch eager (issue 12 item 6;
// bench/peer/peer_training_step.py is the peer, bench/report_gpu_training.py puts the two side by side).
// Per precision (fp32 = IEEE, tf32, bf16 / fp16 = 16-bit GEMM inputs with f32 storage, backend/context.h;
// fp16 with dynamic loss scaling):
// BertForSequenceClassification of --config-dir with HF's random init (seed 42), dropout of config.json,
// moved to a fresh CUDA context in the precision's math mode; the Optimizer's step (forward TRAIN, backward,
// clip at 1.0, AdamW lr 3e-5 wd 0.01, linear schedule) on seeded random ids with every token real (attention
// mask all 1, so no padding work is skipped by either side). Protocol: idle baseline (NVML energy counter,
// model resident) -> --warmup-steps -> --trials trials of
// --steps steps each (queued with Optimizer::queue_step, their results read once at the trial's end),
// synchronised at both ends, timed by the steady clock (primary) and CUDA events per step. The caller warms a
// fresh GPU first (tools/device_check.sh bench_train does). --device cpu runs the same code on the CPU for a
// smoke run of the harness with a tiny config (not a measurement). Exit: 0 done (a failed precision is a
// record with "error"), CLI11's code for bad options, 3 an error, 4 no GPU.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/context.h"
#include "backend/device.h"
#include "core/error.h"
#include "core/file_util.h"
#include "experiment/run_files.h"
#include "measure/batch_timer.h"
#include "measure/energy_meter.h"
#include "measure/stats.h"
#include "model/bert_config.h"
#include "model/bert_model.h"
#include "nlpf/build_info.h"
#include "text/batching.h"
#include "train/optimizer.h"

namespace nlpf {
namespace {

using json = nlohmann::json;
constexpr double kMiB = 1024.0 * 1024.0;
constexpr uint64_t kSeed = 42;
// Ids are drawn from [kFirstWordId, vocab_size): past bert-base-uncased's [unused*] and special tokens.
constexpr int32_t kFirstWordId = 1000;

struct Options {
  std::string config_dir, out;
  std::string device = "cuda";
  std::vector<std::string> precisions{"fp32", "tf32"};
  int64_t batch_size = 32;
  int64_t seq_len = 128;
  int64_t distinct_batches = 8;
  int64_t warmup_steps = 10;
  int64_t steps = 100;
  int trials = 3;
  double idle_seconds = 3.0;
  std::string capture_steps = "on";  // on: each step a CUDA graph replay (Optimizer's capture_steps)
  // heuristic, autotune or inplace-reduction (GemmSelection, backend/context.h)
  std::string gemm_selection = "heuristic";
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// `count` labelled batches of B rows x T tokens, all real (mask 1, token type 0), from a seeded mt19937:
// the same work as the study's max-length padding shape with no padding to skip.
std::vector<Batch> random_batches(const BertConfig& config, const Options& o) {
  std::mt19937 rng(static_cast<uint32_t>(kSeed));
  std::uniform_int_distribution<int32_t> id(kFirstWordId, static_cast<int32_t>(config.vocab_size) - 1);
  std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(config.num_labels()) - 1);
  std::vector<Batch> batches(static_cast<size_t>(o.distinct_batches));
  for (Batch& b : batches) {
    b.B = o.batch_size;
    b.T = o.seq_len;
    const size_t n = static_cast<size_t>(o.batch_size * o.seq_len);
    b.input_ids.resize(n);
    for (int32_t& x : b.input_ids) x = id(rng);
    b.token_type_ids.assign(n, 0);
    b.attention_mask.assign(n, 1);
    for (int64_t r = 0; r < o.batch_size; ++r) {
      b.labels.push_back(label(rng));
      b.example_index.push_back(r);
    }
  }
  return batches;
}

json optional_json(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

json measure(const Device& device, EnergyMeter& meter, const BertConfig& config,
             const std::vector<Batch>& batches, const std::string& precision, const Options& o) {
  const int64_t total_steps = o.warmup_steps + o.trials * o.steps;
  json record = {{"engine", "nlpf"},
                 {"compile", false},
                 {"model", "bert_base"},
                 {"precision", precision},
                 {"batch_size", o.batch_size},
                 {"seq_len", o.seq_len},
                 {"warmup_steps", o.warmup_steps},
                 {"steps_per_trial", o.steps},
                 {"trials", o.trials},
                 {"capture_steps", o.capture_steps == "on"},
                 {"gemm_selection", o.gemm_selection},
                 {"error", nullptr}};
  try {
    NLPF_CHECK(precision == "fp32" || precision == "tf32" || precision == "bf16" || precision == "fp16",
               ErrorCode::UNSUPPORTED, "--precisions ", precision,
               ": nlpf trains in fp32, tf32, bf16 and fp16");
    // A fresh CUDA context per precision (its math mode is the precision); the CPU has one shared context.
    std::unique_ptr<ExecutionContext> owned =
        device.type == DeviceType::CUDA ? make_execution_context(device) : nullptr;
    ExecutionContext* gpu = owned ? owned.get() : &cpu_context();
    gpu->set_math_mode(precision == "tf32"   ? MathMode::TF32
                       : precision == "bf16" ? MathMode::BF16
                       : precision == "fp16" ? MathMode::FP16
                                             : MathMode::IEEE_FP32);
    gpu->set_gemm_selection(o.gemm_selection == "inplace-reduction"
                                ? GemmSelection::HEURISTIC_INPLACE_REDUCTION
                            : o.gemm_selection == "autotune" ? GemmSelection::AUTOTUNE
                                                             : GemmSelection::HEURISTIC);
    gpu->allocator().reset_peak();
    BertForSequenceClassification model(config, kSeed);
    model.set_dropout(DropoutSettings::from_config(config, kSeed));
    model.to_context(*gpu);
    OptimizerSettings settings;  // DESIGN §5's recipe: lr 3e-5, wd 0.01, clip 1.0, 6% linear warm-up
    settings.total_steps = total_steps;
    settings.warmup_steps = static_cast<int64_t>(std::ceil(0.06 * static_cast<double>(total_steps)));
    settings.loss_scaling.enabled = precision == "fp16";  // GradScaler's defaults, as PyTorch's fp16 side
    settings.capture_steps = o.capture_steps == "on";
    Optimizer optimizer(model, settings);
    size_t next = 0;
    auto one_step = [&] {
      const StepResult r = optimizer.step(batches[next]);
      next = (next + 1) % batches.size();
      return r;
    };

    // Idle baseline with the model resident, as run_protocol does before its warm-up.
    gpu->synchronize();
    std::optional<double> idle_power_w;
    if (meter.available() && o.idle_seconds > 0) {
      const double e0 = meter.read_energy_j();
      const auto t0 = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_seconds));
      const double e1 = meter.read_energy_j();
      idle_power_w = (e1 - e0) / seconds_since(t0);
    }
    const auto warmup_t0 = std::chrono::steady_clock::now();
    StepResult last;
    for (int64_t s = 0; s < o.warmup_steps; ++s) last = one_step();
    gpu->synchronize();
    const double warmup_s = seconds_since(warmup_t0);

    const std::unique_ptr<BatchTimer> timer = make_batch_timer(device, gpu->native_stream());
    std::vector<double> ms_per_step, event_ms_per_step, j_per_step, power_w, dynamic_j_per_step;
    json trial_data = json::array();
    std::vector<double> losses;
    uint64_t throttle_reasons = 0;
    const bool metered = meter.available();
    for (int trial = 0; trial < o.trials; ++trial) {
      gpu->synchronize();
      const double e0 = metered ? meter.read_energy_j() : 0.0;
      const auto t0 = std::chrono::steady_clock::now();
      // Steps are queued and their results read once per trial, as the Trainer reads them every few dozen
      // steps (and as PyTorch's side runs without a host sync per step).
      for (int64_t s = 0; s < o.steps; ++s) {
        timer->start();
        optimizer.queue_step(batches[next]);
        next = (next + 1) % batches.size();
        timer->stop();
      }
      for (const StepResult& r : optimizer.collect()) {
        last = r;
        losses.push_back(r.loss);
      }
      gpu->synchronize();
      const double seconds = seconds_since(t0);
      const double e1 = metered ? meter.read_energy_j() : 0.0;
      const std::vector<double> step_ms = timer->finish();
      double event_ms = 0;
      for (double ms : step_ms) event_ms += ms;
      const double steps = static_cast<double>(o.steps);
      ms_per_step.push_back(1000.0 * seconds / steps);
      event_ms_per_step.push_back(event_ms / steps);
      json t = {{"seconds", seconds}, {"event_ms_sum", event_ms}, {"joules", nullptr}};
      if (metered) {
        const double joules = e1 - e0;
        t["joules"] = joules;
        j_per_step.push_back(joules / steps);
        power_w.push_back(joules / seconds);
        if (idle_power_w) dynamic_j_per_step.push_back((joules - *idle_power_w * seconds) / steps);
      }
      const DeviceState state = meter.read_device_state();
      t["sm_clock_mhz"] = optional_json(state.sm_clock_mhz);
      t["temperature_c"] = optional_json(state.temperature_c);
      t["clocks_event_reasons"] = state.throttle_reasons ? json(*state.throttle_reasons) : json(nullptr);
      if (state.throttle_reasons) throttle_reasons |= *state.throttle_reasons;
      trial_data.push_back(t);
    }

    const double B = static_cast<double>(o.batch_size);
    const double ms = median(ms_per_step);
    auto per_example = [&](const std::vector<double>& v) {
      return v.empty() ? json(nullptr) : json(median(v) / B);
    };
    const size_t graph_bytes = gpu->graph_memory_peak_bytes();  // the captured steps' own allocations
    record.update(
        {{"ms_per_step", ms},
         {"ms_per_step_cv",
          ms_per_step.size() > 1 ? json(coefficient_of_variation(ms_per_step)) : json(nullptr)},
         {"ms_per_step_events", median(event_ms_per_step)},
         {"examples_per_s", 1000.0 * B / ms},
         {"j_per_step", j_per_step.empty() ? json(nullptr) : json(median(j_per_step))},
         {"j_per_example", per_example(j_per_step)},
         {"j_per_step_cv",
          j_per_step.size() > 1 ? json(coefficient_of_variation(j_per_step)) : json(nullptr)},
         {"dynamic_j_per_example", per_example(dynamic_j_per_step)},
         {"avg_power_w", power_w.empty() ? json(nullptr) : json(median(power_w))},
         {"idle_power_w", optional_json(idle_power_w)},
         {"peak_memory_mb", static_cast<double>(gpu->allocator().peak_bytes() + graph_bytes) / kMiB},
         {"graph_memory_mb", static_cast<double>(graph_bytes) / kMiB},
         {"warmup_s", warmup_s},
         {"first_loss", losses.front()},
         {"last_loss", losses.back()},
         {"last_grad_norm", last.grad_norm},
         {"throttled", (throttle_reasons & kThrottleReasonsSlowdownMask) != 0},
         {"clocks_event_reasons", throttle_reasons},
         {"trial_data", trial_data}});
  } catch (const Error& e) {
    record["error"] = e.what();
  }
  return record;
}

int run(const Options& o) {
  const bool on_gpu = o.device == "cuda";
  if (on_gpu && cuda_devices().empty()) {
    std::fprintf(stderr, "gpu_training_bench: no CUDA device visible\n");
    return 4;
  }
  const Device device = on_gpu ? Device{DeviceType::CUDA, 0} : Device{DeviceType::CPU, 0};
  const DeviceDescription description = on_gpu ? describe_device(device) : cpu_description();
  std::unique_ptr<EnergyMeter> meter = choose_meter(description);
  if (!meter->available()) {
    std::fprintf(stderr, "gpu_training_bench: no energy counter (%s): energy fields stay null\n",
                 meter->unavailable_reason().c_str());
  }
  BertConfig config = BertConfig::load(o.config_dir + "/config.json");
  config.set_num_labels(2);
  NLPF_CHECK(o.seq_len <= config.max_position_embeddings, ErrorCode::INVALID_ARGUMENT, "--seq-len ",
             o.seq_len, " exceeds max_position_embeddings ", config.max_position_embeddings);
  const std::vector<Batch> batches = random_batches(config, o);
  json out = {
      {"tool", "nlpf"},
      {"nlpf_commit", kGitCommit},
      {"device", o.device},
      {"gpu", description.name},
      {"gpu_uuid", description.uuid},
      {"cuda_runtime", cuda_runtime_version()},
      {"driver", cuda_driver_version()},
      {"meter", meter->describe()},
      {"date", iso_time(std::chrono::system_clock::now())},
      {"config", o.config_dir + "/config.json"},
      {"shape",
       {{"hidden_size", config.hidden_size},
        {"num_hidden_layers", config.num_hidden_layers},
        {"num_attention_heads", config.num_attention_heads},
        {"intermediate_size", config.intermediate_size},
        {"vocab_size", config.vocab_size},
        {"batch_size", o.batch_size},
        {"seq_len", o.seq_len}}},
      {"data",
       "random ids (mt19937 seed 42, uniform in [1000, vocab_size)), attention mask all 1, token type 0, "
       "random labels; " +
           std::to_string(o.distinct_batches) + " distinct batches cycled"},
      {"recipe",
       "AdamW lr 3e-5 (linear, 6% warm-up) wd 0.01 (not on biases/LayerNorm), clip 1.0, dropout on"},
      {"host_sync_per_step",
       "none: steps are queued (Optimizer::queue_step) and their results read once per trial; with "
       "capture_steps each step after a shape's second is one CUDA graph replay"},
      {"protocol",
       {{"warmup_steps", o.warmup_steps},
        {"steps_per_trial", o.steps},
        {"trials", o.trials},
        {"idle_seconds", o.idle_seconds}}},
      {"records", json::array()}};
  for (const std::string& precision : o.precisions) {
    json record = measure(device, *meter, config, batches, precision, o);
    if (record["error"].is_null()) {
      std::fprintf(stderr, "nlpf %s (capture %s, %s) b%lld t%lld: %.2f ms/step, %s J/step, peak %.0f MiB\n",
                   precision.c_str(), o.capture_steps.c_str(), o.gemm_selection.c_str(),
                   static_cast<long long>(o.batch_size), static_cast<long long>(o.seq_len),
                   record["ms_per_step"].get<double>(), record["j_per_step"].dump().c_str(),
                   record["peak_memory_mb"].get<double>());
    } else {
      std::fprintf(stderr, "nlpf %s: %s\n", precision.c_str(), record["error"].get<std::string>().c_str());
    }
    out["records"].push_back(record);
    if (!o.out.empty()) write_file_atomic(o.out, out.dump(2) + "\n");
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace nlpf

int main(int argc, char** argv) {
  nlpf::Options o;
  CLI::App app("nlpf side of the training-step benchmark (bench/peer/peer_training_step.py is the peer)");
  app.add_option("--config-dir", o.config_dir, "directory of a BERT config.json (bert-base-uncased's)")
      ->required();
  app.add_option("--device", o.device, "cuda (the benchmark) or cpu (a smoke run of the harness)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
  app.add_option("--precisions", o.precisions, "fp32 (IEEE), tf32, bf16 and/or fp16 (with loss scaling)")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  app.add_option("--batch-size", o.batch_size)->check(CLI::PositiveNumber);
  app.add_option("--seq-len", o.seq_len)->check(CLI::Range(int64_t{2}, int64_t{512}));
  app.add_option("--distinct-batches", o.distinct_batches, "random batches cycled through")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup-steps", o.warmup_steps)->check(CLI::NonNegativeNumber);
  app.add_option("--steps", o.steps, "timed steps per trial")->check(CLI::PositiveNumber);
  app.add_option("--trials", o.trials)->check(CLI::PositiveNumber);
  app.add_option("--idle-seconds", o.idle_seconds)->check(CLI::NonNegativeNumber);
  app.add_option(
         "--capture-steps", o.capture_steps,
         "on: each step replays a CUDA graph of it (captured at its second use); off: launched eagerly")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option(
         "--gemm-selection", o.gemm_selection,
         "heuristic: cuBLASLt's first choice (training's); autotune: the fastest of its first eight, timed "
         "once per GEMM shape (GEMMs that do not accumulate into their output); inplace-reduction: its first "
         "that adds split-K partial products in the output (no reduction kernel)")
      ->check(CLI::IsMember({"heuristic", "autotune", "inplace-reduction"}));
  app.add_option("--out", o.out, "also write the JSON here (rewritten after every record)");
  CLI11_PARSE(app, argc, argv);
  try {
    return nlpf::run(o);
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "gpu_training_bench: %s\n", e.what());
    return 3;
  }
}
