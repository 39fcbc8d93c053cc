// metrics.json's inference block (DESIGN §3): the study's five keys, then ours. A value that could not be
// measured is null and its reason is in "null_reasons" under the same key; a number is never 0 for "unknown".
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "measure/protocol.h"

namespace nlpf {

// What the protocol does not know, filled by the caller.
struct InferenceMetricsInputs {
  std::optional<double> accuracy;  // on the evaluation set, from ProtocolResult::predictions
  std::string accuracy_null_reason = "no labels";
  std::optional<double> peak_gpu_memory_mb;  // device allocator high-water mark
  std::string peak_gpu_memory_null_reason = "not a GPU run";
  std::optional<double> peak_memory_mb;  // host allocator high-water mark (CPU runs)
  // NVML's per-process figure (NvmlMeter::process_memory): everything the driver holds for this process on
  // the GPU, the CUDA context and library workspaces included, read while the workload's memory is alive.
  std::optional<double> gpu_process_memory_mb;
  std::string gpu_process_memory_null_reason = "CPU run: no GPU process";
};

// {"accuracy", "average_latency_per_example_ms", "energy_per_example_j", "energy_per_correct_j",
//  "peak_gpu_memory_mb", "gpu_process_memory_mb", "gpu_context_memory_mb" (process memory minus the
//  allocator's peak: what the context, cuBLAS and the driver take beyond our tensors),
//  "energy_per_example_j_ci_low"/"_ci_high"/"_ci_level",
//  "dynamic_energy_per_example_j", "throughput_examples_per_s", "latency_p50_ms"/"p90"/"p99", "trials",
//  "energy_source", "idle_power_w", "average_power_w", "cv", "cv_flagged", "throttled", ..., "trial_details":
//  [...], "null_reasons": {...}}.
nlohmann::json inference_metrics_json(const ProtocolResult& result, const InferenceMetricsInputs& inputs);

}  // namespace nlpf
