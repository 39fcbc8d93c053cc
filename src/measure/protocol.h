// The measurement protocol of DESIGN §6 for one configuration: idle baseline (context alive) -> warm-up
// (>= 1 pass and >= warmup_min_seconds) -> N trials, each repeating full passes over the evaluation set for
// >= min_trial_seconds -> median and order-statistic CI of J/example across trials, CV, dynamic energy,
// latency and throughput. Every pass must give the first pass's predictions (a mismatch is a bug).
// Energy fields are nullopt, with the reason in null_reasons, wherever the meter cannot measure.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "measure/energy_meter.h"
#include "measure/power_sampler.h"

namespace nlpf {

struct ProtocolOptions {
  int trials = 5;                  // --trials
  double min_trial_seconds = 5.0;  // --min-trial-seconds: NVML's counter ticks every ~100 ms
  double idle_seconds = 3.0;       // --idle-seconds
  double warmup_min_seconds = 1.0;
  double cooldown_seconds = 0.0;    // pause before each trial (phase "cooldown")
  double cv_flag_threshold = 0.03;  // flag a CV of J/example above 3%
  double ci_level = 0.95;
};

// One full pass over the evaluation set. The workload returns only after its device work has finished
// (synchronised), so that wall time covers it. Latencies are per batch (CUDA events on the GPU); may be
// empty.
struct PassResult {
  int64_t examples = 0;
  std::vector<int32_t> predictions;  // one per example, in evaluation order
  std::vector<double> batch_latencies_ms;
};
using Workload = std::function<PassResult()>;

// The protocol's time source; tests substitute a deterministic one.
struct ProtocolClock {
  std::function<double()> now_s;
  std::function<void(double)> sleep_s;
  static ProtocolClock steady();
};

struct TrialResult {
  int index = 0;  // 1-based, as in the phase name "trial k"
  int passes = 0;
  int64_t examples = 0;
  double seconds = 0.0;
  double latency_per_example_ms = 0.0;
  std::optional<double> energy_j;
  std::optional<double> energy_per_example_j;
  std::optional<double> dynamic_energy_per_example_j;
  std::optional<double> average_power_w;
  std::optional<uint64_t> throttle_reasons;  // union over the trial's power-trace rows
};

struct ProtocolResult {
  std::string energy_source;  // the meter's source(), "none" when unavailable
  // Metric key (metrics.json spelling) -> why the value is null.
  std::map<std::string, std::string> null_reasons;
  std::vector<int32_t> predictions;  // of the first pass (the accuracy pass)
  int64_t examples_per_pass = 0;
  int warmup_passes = 0;
  double warmup_seconds = 0.0;
  double idle_seconds = 0.0;
  std::optional<double> idle_power_w;
  std::vector<TrialResult> trials;

  std::optional<double> energy_per_example_j;  // median across trials: the primary number
  std::optional<double> energy_per_example_j_ci_low;
  std::optional<double> energy_per_example_j_ci_high;
  std::optional<double> energy_per_example_j_ci_level;  // achieved coverage (stats.h)
  std::optional<double> cv;
  std::optional<bool> cv_flagged;
  std::optional<double> dynamic_energy_per_example_j;  // median across trials of (E - idle_power·t)/examples
  std::optional<double> average_power_w;               // trial energy / trial time
  double average_latency_per_example_ms = 0.0;         // trial wall time / examples (the study's definition)
  double throughput_examples_per_s = 0.0;
  std::optional<double> latency_p50_ms;  // per batch, over every trial pass
  std::optional<double> latency_p90_ms;
  std::optional<double> latency_p99_ms;
  std::optional<bool> throttled;  // a slowdown reason (kThrottleReasonsSlowdownMask) during a trial
  std::optional<uint64_t> throttle_reasons;
};

// Runs the protocol. `sampler` may be null; when given, the protocol sets its phases (idle, warmup,
// cooldown, trial k, end) and reads its rows for throttling, but does not start or stop it.
// Throws Error(INVALID_ARGUMENT) naming the option for bad options, Error(NUMERIC) when passes disagree.
ProtocolResult run_protocol(const ProtocolOptions& options, EnergyMeter& meter, PowerSampler* sampler,
                            const Workload& workload, const ProtocolClock& clock = ProtocolClock::steady());

}  // namespace nlpf
