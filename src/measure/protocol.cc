// run_protocol: the phases of DESIGN §6 and the statistics across trials. Energy is always a counter delta
// over a window (never integrated power); the counter is read right before the first and after the last
// pass of a window, so the window's wall time and energy cover the same work.
#include "measure/protocol.h"

#include <chrono>
#include <cmath>
#include <thread>

#include "core/error.h"
#include "measure/stats.h"

namespace nlpf {

ProtocolClock ProtocolClock::steady() {
  ProtocolClock clock;
  clock.now_s = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  clock.sleep_s = [](double seconds) {
    if (seconds > 0.0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  };
  return clock;
}

namespace {

void check_options(const ProtocolOptions& o) {
  NLPF_CHECK(o.trials >= 1, ErrorCode::INVALID_ARGUMENT, "--trials must be at least 1, got ", o.trials);
  const std::pair<double, const char*> seconds[] = {{o.min_trial_seconds, "--min-trial-seconds"},
                                                    {o.idle_seconds, "--idle-seconds"},
                                                    {o.warmup_min_seconds, "warm-up seconds"},
                                                    {o.cooldown_seconds, "cool-down seconds"}};
  for (const auto& [value, name] : seconds)
    NLPF_CHECK(std::isfinite(value) && value >= 0.0, ErrorCode::INVALID_ARGUMENT, name,
               " must be a finite number >= 0, got ", value);
  NLPF_CHECK(o.cv_flag_threshold >= 0.0, ErrorCode::INVALID_ARGUMENT, "CV flag threshold must be >= 0, got ",
             o.cv_flag_threshold);
  NLPF_CHECK(o.ci_level > 0.0 && o.ci_level < 1.0, ErrorCode::INVALID_ARGUMENT,
             "confidence level must be in (0, 1), got ", o.ci_level);
}

// Runs one pass and checks it against the reference (the first pass): same examples, same predictions.
PassResult run_checked_pass(const Workload& workload, const PassResult* reference, int pass_number) {
  PassResult pass = workload();
  NLPF_CHECK(pass.examples > 0, ErrorCode::INVALID_ARGUMENT, "measurement pass ", pass_number,
             ": the workload processed no examples (empty evaluation set?)");
  NLPF_CHECK(pass.predictions.size() == static_cast<size_t>(pass.examples), ErrorCode::INTERNAL,
             "measurement pass ", pass_number, ": ", pass.predictions.size(), " predictions for ",
             pass.examples, " examples");
  if (reference == nullptr) return pass;
  NLPF_CHECK(pass.examples == reference->examples, ErrorCode::NUMERIC,
             "predictions differ between passes: a bug (pass ", pass_number, " processed ", pass.examples,
             " examples, the first pass ", reference->examples, ")");
  for (size_t i = 0; i < pass.predictions.size(); ++i) {
    NLPF_CHECK(pass.predictions[i] == reference->predictions[i], ErrorCode::NUMERIC,
               "predictions differ between passes: a bug (pass ", pass_number, ", example ", i, ": ",
               pass.predictions[i], " vs ", reference->predictions[i], " in the first pass)");
  }
  return pass;
}

void set_phase(PowerSampler* sampler, const std::string& phase) {
  if (sampler != nullptr) sampler->set_phase(phase);
}

double sampler_time(PowerSampler* sampler) {
  return sampler != nullptr ? sampler->elapsed_s() : 0.0;
}

}  // namespace

ProtocolResult run_protocol(const ProtocolOptions& options, EnergyMeter& meter, PowerSampler* sampler,
                            const Workload& workload, const ProtocolClock& clock) {
  check_options(options);
  NLPF_CHECK(static_cast<bool>(workload), ErrorCode::INTERNAL, "run_protocol: no workload");
  ProtocolResult result;
  const bool measures = meter.available();
  result.energy_source = measures ? meter.source() : "none";
  const std::string no_energy = measures ? "" : meter.unavailable_reason();

  // Idle baseline: the caller's context (CUDA context, weights) is alive, nothing runs.
  if (measures && options.idle_seconds > 0.0) {
    set_phase(sampler, "idle");
    const double e0 = meter.read_energy_j();
    const double t0 = clock.now_s();
    clock.sleep_s(options.idle_seconds);
    const double e1 = meter.read_energy_j();
    const double t1 = clock.now_s();
    result.idle_seconds = t1 - t0;
    if (t1 > t0 && e1 > e0) {
      result.idle_power_w = (e1 - e0) / (t1 - t0);
    } else {
      result.null_reasons["idle_power_w"] = "the energy counter did not advance during the idle baseline";
    }
  } else {
    result.null_reasons["idle_power_w"] =
        !measures ? no_energy
                  : "no idle baseline (--idle-seconds " + std::to_string(options.idle_seconds) + ")";
  }

  // Warm-up; its first pass is the reference every later pass must reproduce.
  set_phase(sampler, "warmup");
  int pass_number = 1;
  const double warmup_start = clock.now_s();
  PassResult reference = run_checked_pass(workload, nullptr, pass_number++);
  result.warmup_passes = 1;
  while (clock.now_s() - warmup_start < options.warmup_min_seconds) {
    run_checked_pass(workload, &reference, pass_number++);
    ++result.warmup_passes;
  }
  result.warmup_seconds = clock.now_s() - warmup_start;
  result.examples_per_pass = reference.examples;
  result.predictions = reference.predictions;

  std::vector<double> batch_latencies_ms;
  const std::vector<PowerTraceRow> no_rows;
  for (int k = 1; k <= options.trials; ++k) {
    if (options.cooldown_seconds > 0.0) {
      set_phase(sampler, "cooldown");
      clock.sleep_s(options.cooldown_seconds);
    }
    set_phase(sampler, "trial " + std::to_string(k));
    TrialResult trial;
    trial.index = k;
    const double trace_start = sampler_time(sampler);
    const DeviceState start_state = meter.read_device_state();
    const double e0 = measures ? meter.read_energy_j() : 0.0;
    const double t0 = clock.now_s();
    do {
      PassResult pass = run_checked_pass(workload, &reference, pass_number++);
      trial.examples += pass.examples;
      ++trial.passes;
      batch_latencies_ms.insert(batch_latencies_ms.end(), pass.batch_latencies_ms.begin(),
                                pass.batch_latencies_ms.end());
    } while (clock.now_s() - t0 < options.min_trial_seconds);
    const double t1 = clock.now_s();
    const double e1 = measures ? meter.read_energy_j() : 0.0;
    const DeviceState end_state = meter.read_device_state();
    const double trace_end = sampler_time(sampler);
    trial.seconds = t1 - t0;
    trial.latency_per_example_ms = trial.seconds * 1e3 / static_cast<double>(trial.examples);
    // A counter that did not move means the window was shorter than its update period: no reading, not 0 J.
    if (measures && e1 > e0) {
      trial.energy_j = e1 - e0;
      trial.energy_per_example_j = *trial.energy_j / static_cast<double>(trial.examples);
      if (trial.seconds > 0.0) trial.average_power_w = *trial.energy_j / trial.seconds;
      if (result.idle_power_w)
        trial.dynamic_energy_per_example_j =
            (*trial.energy_j - *result.idle_power_w * trial.seconds) / static_cast<double>(trial.examples);
    }
    // Throttling: the state at both ends of the window, plus whatever the trace saw in between.
    for (const std::optional<uint64_t>& reasons :
         {start_state.throttle_reasons, end_state.throttle_reasons}) {
      if (reasons) trial.throttle_reasons = trial.throttle_reasons.value_or(0) | *reasons;
    }
    if (sampler != nullptr) {
      for (const PowerTraceRow& row : sampler->rows()) {
        if (row.timestamp_s < trace_start || row.timestamp_s > trace_end || !row.throttle_reasons) continue;
        trial.throttle_reasons = trial.throttle_reasons.value_or(0) | *row.throttle_reasons;
      }
    }
    result.trials.push_back(trial);
  }
  set_phase(sampler, "end");

  // Across trials.
  double total_seconds = 0.0;
  int64_t total_examples = 0;
  double total_energy_j = 0.0;
  std::vector<double> per_example, dynamic_per_example;
  bool every_trial_measured = measures;
  for (const TrialResult& trial : result.trials) {
    total_seconds += trial.seconds;
    total_examples += trial.examples;
    if (trial.energy_per_example_j) {
      per_example.push_back(*trial.energy_per_example_j);
      total_energy_j += *trial.energy_j;
    } else {
      every_trial_measured = false;
    }
    if (trial.dynamic_energy_per_example_j)
      dynamic_per_example.push_back(*trial.dynamic_energy_per_example_j);
    if (trial.throttle_reasons)
      result.throttle_reasons = result.throttle_reasons.value_or(0) | *trial.throttle_reasons;
  }
  result.average_latency_per_example_ms = total_seconds * 1e3 / static_cast<double>(total_examples);
  if (total_seconds > 0.0)
    result.throughput_examples_per_s = static_cast<double>(total_examples) / total_seconds;

  const std::string energy_reason =
      !measures ? no_energy
                : "the energy counter did not advance during a trial (raise --min-trial-seconds above the "
                  "counter's update period)";
  if (every_trial_measured) {
    result.energy_per_example_j = median(per_example);
    result.average_power_w =
        total_seconds > 0.0 ? std::optional<double>(total_energy_j / total_seconds) : std::nullopt;
    if (const std::optional<MedianInterval> ci = median_confidence_interval(per_example, options.ci_level)) {
      result.energy_per_example_j_ci_low = ci->low;
      result.energy_per_example_j_ci_high = ci->high;
      result.energy_per_example_j_ci_level = ci->confidence;
    } else {
      for (const char* key : {"energy_per_example_j_ci_low", "energy_per_example_j_ci_high"})
        result.null_reasons[key] = "one trial: no interval (--trials 1)";
    }
    if (per_example.size() >= 2) {
      result.cv = coefficient_of_variation(per_example);
      result.cv_flagged = *result.cv > options.cv_flag_threshold;
    } else {
      result.null_reasons["cv"] = "one trial: no spread (--trials 1)";
    }
    if (dynamic_per_example.size() == per_example.size()) {
      result.dynamic_energy_per_example_j = median(dynamic_per_example);
    } else {
      result.null_reasons["dynamic_energy_per_example_j"] = result.null_reasons["idle_power_w"];
    }
  } else {
    for (const char* key :
         {"energy_per_example_j", "energy_per_example_j_ci_low", "energy_per_example_j_ci_high", "cv",
          "dynamic_energy_per_example_j", "average_power_w"})
      result.null_reasons[key] = energy_reason;
  }
  if (!result.cv_flagged) result.null_reasons["cv_flagged"] = result.null_reasons["cv"];

  if (!batch_latencies_ms.empty()) {
    result.latency_p50_ms = percentile(batch_latencies_ms, 50.0);
    result.latency_p90_ms = percentile(batch_latencies_ms, 90.0);
    result.latency_p99_ms = percentile(batch_latencies_ms, 99.0);
  } else {
    for (const char* key : {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms"})
      result.null_reasons[key] = "the workload reported no per-batch latencies";
  }

  if (result.throttle_reasons) {
    result.throttled = (*result.throttle_reasons & kThrottleReasonsSlowdownMask) != 0;
  } else {
    result.null_reasons["throttled"] =
        measures ? "the " + meter.source() + " meter reports no throttle reasons" : no_energy;
  }
  return result;
}

}  // namespace nlpf
