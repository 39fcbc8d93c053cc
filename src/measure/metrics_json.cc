// inference_metrics_json: every optional becomes a value or null-with-reason; non-finite numbers are
// treated as unavailable (JSON has no NaN) rather than written as something else.
#include "measure/metrics_json.h"

#include <cmath>
#include <cstdio>

namespace nlpf {

namespace {

class MetricsWriter {
 public:
  explicit MetricsWriter(nlohmann::json& out) : out_(out), reasons_(nlohmann::json::object()) {}

  void number(const std::string& key, const std::optional<double>& value, const std::string& reason) {
    if (value && std::isfinite(*value)) {
      out_[key] = *value;
    } else {
      out_[key] = nullptr;
      reasons_[key] = value ? "not a finite number" : (reason.empty() ? "unavailable" : reason);
    }
  }
  void flag(const std::string& key, const std::optional<bool>& value, const std::string& reason) {
    if (value) {
      out_[key] = *value;
    } else {
      out_[key] = nullptr;
      reasons_[key] = reason.empty() ? "unavailable" : reason;
    }
  }
  nlohmann::json& reasons() { return reasons_; }

 private:
  nlohmann::json& out_;
  nlohmann::json reasons_;
};

std::string reason_for(const ProtocolResult& result, const std::string& key) {
  const auto it = result.null_reasons.find(key);
  return it != result.null_reasons.end() ? it->second : std::string();
}

std::string hex(uint64_t bits) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(bits));
  return buffer;
}

}  // namespace

nlohmann::json inference_metrics_json(const ProtocolResult& result, const InferenceMetricsInputs& inputs) {
  nlohmann::json out = nlohmann::json::object();
  MetricsWriter w(out);
  const auto from_result = [&](const std::string& key, const std::optional<double>& value) {
    w.number(key, value, reason_for(result, key));
  };

  // The study's five, in its order.
  w.number("accuracy", inputs.accuracy, inputs.accuracy_null_reason);
  out["average_latency_per_example_ms"] = result.average_latency_per_example_ms;
  from_result("energy_per_example_j", result.energy_per_example_j);
  // Energy per correct prediction = pass energy / correct = (J/example) / accuracy.
  std::optional<double> per_correct;
  std::string per_correct_reason = reason_for(result, "energy_per_example_j");
  if (!result.energy_per_example_j) {
  } else if (!inputs.accuracy) {
    per_correct_reason = "accuracy unavailable: " + inputs.accuracy_null_reason;
  } else if (*inputs.accuracy <= 0.0) {
    per_correct_reason = "accuracy is 0: no correct prediction";
  } else {
    per_correct = *result.energy_per_example_j / *inputs.accuracy;
  }
  w.number("energy_per_correct_j", per_correct, per_correct_reason);
  w.number("peak_gpu_memory_mb", inputs.peak_gpu_memory_mb, inputs.peak_gpu_memory_null_reason);

  // Ours.
  if (inputs.peak_memory_mb) w.number("peak_memory_mb", inputs.peak_memory_mb, "");
  w.number("gpu_process_memory_mb", inputs.gpu_process_memory_mb, inputs.gpu_process_memory_null_reason);
  std::optional<double> context_mb;
  std::string context_reason;
  if (!inputs.gpu_process_memory_mb) {
    context_reason = inputs.gpu_process_memory_null_reason;
  } else if (!inputs.peak_gpu_memory_mb) {
    context_reason = "peak_gpu_memory_mb unavailable: " + inputs.peak_gpu_memory_null_reason;
  } else if (*inputs.gpu_process_memory_mb < *inputs.peak_gpu_memory_mb) {
    // The driver cannot hold less than our live allocations: NVML was read after they were freed.
    context_reason = "gpu_process_memory_mb is below peak_gpu_memory_mb (read after the peak was released)";
  } else {
    context_mb = *inputs.gpu_process_memory_mb - *inputs.peak_gpu_memory_mb;
  }
  w.number("gpu_context_memory_mb", context_mb, context_reason);
  from_result("energy_per_example_j_ci_low", result.energy_per_example_j_ci_low);
  from_result("energy_per_example_j_ci_high", result.energy_per_example_j_ci_high);
  w.number("energy_per_example_j_ci_level", result.energy_per_example_j_ci_level,
           reason_for(result, "energy_per_example_j_ci_low"));
  from_result("dynamic_energy_per_example_j", result.dynamic_energy_per_example_j);
  out["throughput_examples_per_s"] = result.throughput_examples_per_s;
  from_result("latency_p50_ms", result.latency_p50_ms);
  from_result("latency_p90_ms", result.latency_p90_ms);
  from_result("latency_p99_ms", result.latency_p99_ms);
  out["trials"] = result.trials.size();
  out["energy_source"] = result.energy_source;
  from_result("idle_power_w", result.idle_power_w);
  from_result("average_power_w", result.average_power_w);
  from_result("cv", result.cv);
  w.flag("cv_flagged", result.cv_flagged, reason_for(result, "cv_flagged"));
  w.flag("throttled", result.throttled, reason_for(result, "throttled"));
  if (result.throttle_reasons) out["throttle_reasons"] = hex(*result.throttle_reasons);
  out["examples_per_pass"] = result.examples_per_pass;
  out["warmup_passes"] = result.warmup_passes;
  out["idle_seconds"] = result.idle_seconds;

  nlohmann::json details = nlohmann::json::array();
  for (const TrialResult& trial : result.trials) {
    nlohmann::json t = {{"trial", trial.index},
                        {"passes", trial.passes},
                        {"examples", trial.examples},
                        {"seconds", trial.seconds},
                        {"latency_per_example_ms", trial.latency_per_example_ms}};
    const auto put = [&t](const char* key, const std::optional<double>& v) {
      t[key] = v && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    put("energy_j", trial.energy_j);
    put("energy_per_example_j", trial.energy_per_example_j);
    put("dynamic_energy_per_example_j", trial.dynamic_energy_per_example_j);
    put("average_power_w", trial.average_power_w);
    t["throttle_reasons"] =
        trial.throttle_reasons ? nlohmann::json(hex(*trial.throttle_reasons)) : nlohmann::json(nullptr);
    details.push_back(std::move(t));
  }
  out["trial_details"] = std::move(details);
  out["null_reasons"] = std::move(w.reasons());
  return out;
}

}  // namespace nlpf
