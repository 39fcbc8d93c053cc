// metrics.json's GPU memory fields: gpu_process_memory_mb (NVML's per-process figure) and
// gpu_context_memory_mb (that minus the allocator's peak), each a number or null with its reason.
#include <gtest/gtest.h>

#include "measure/metrics_json.h"

namespace nlpf {
namespace {

ProtocolResult measured_result() {
  ProtocolResult r;
  r.energy_source = "nvml";
  r.examples_per_pass = 864;
  r.energy_per_example_j = 0.4;
  r.average_latency_per_example_ms = 0.6;
  return r;
}

// Every null has a reason and no reason lacks its null.
void expect_consistent_nulls(const nlohmann::json& m) {
  for (const auto& [key, value] : m.items()) {
    if (value.is_null()) {
      EXPECT_TRUE(m["null_reasons"].contains(key)) << key;
    }
  }
  for (const auto& [key, reason] : m["null_reasons"].items()) EXPECT_TRUE(m[key].is_null()) << key;
}

TEST(MeasureMetricsJson, GpuRunReportsProcessAndContextMemory) {
  InferenceMetricsInputs inputs;
  inputs.accuracy = 0.9;
  inputs.peak_gpu_memory_mb = 586.0;
  inputs.gpu_process_memory_mb = 1104.5;
  const nlohmann::json m = inference_metrics_json(measured_result(), inputs);
  EXPECT_DOUBLE_EQ(m["peak_gpu_memory_mb"].get<double>(), 586.0);
  EXPECT_DOUBLE_EQ(m["gpu_process_memory_mb"].get<double>(), 1104.5);
  EXPECT_DOUBLE_EQ(m["gpu_context_memory_mb"].get<double>(), 518.5);
  EXPECT_FALSE(m["null_reasons"].contains("gpu_process_memory_mb"));
  expect_consistent_nulls(m);
}

TEST(MeasureMetricsJson, CpuRunDefaultsToNullsWithReasons) {
  InferenceMetricsInputs inputs;  // what phase1 passes on the CPU: no GPU figures at all
  inputs.accuracy = 0.9;
  inputs.peak_memory_mb = 300.0;
  const nlohmann::json m = inference_metrics_json(measured_result(), inputs);
  for (const char* key : {"gpu_process_memory_mb", "gpu_context_memory_mb"}) {
    ASSERT_TRUE(m.contains(key)) << key;
    EXPECT_TRUE(m[key].is_null()) << key;
    EXPECT_EQ(m["null_reasons"][key], "CPU run: no GPU process") << key;
  }
  EXPECT_DOUBLE_EQ(m["peak_memory_mb"].get<double>(), 300.0);
  expect_consistent_nulls(m);
}

TEST(MeasureMetricsJson, ContextMemoryNullWhenAnInputIsMissingOrInconsistent) {
  InferenceMetricsInputs inputs;
  // NVML could not list the process (a container's PID namespace, say): its reason carries over.
  inputs.peak_gpu_memory_mb = 586.0;
  inputs.gpu_process_memory_null_reason = "process 4242 not listed by NVML on GPU 0000:65:00.0";
  nlohmann::json m = inference_metrics_json(measured_result(), inputs);
  EXPECT_TRUE(m["gpu_process_memory_mb"].is_null());
  EXPECT_EQ(m["null_reasons"]["gpu_process_memory_mb"], inputs.gpu_process_memory_null_reason);
  EXPECT_EQ(m["null_reasons"]["gpu_context_memory_mb"], inputs.gpu_process_memory_null_reason);
  expect_consistent_nulls(m);

  // A process figure but no allocator peak.
  inputs.gpu_process_memory_mb = 900.0;
  inputs.peak_gpu_memory_mb.reset();
  inputs.peak_gpu_memory_null_reason = "allocator not tracked";
  m = inference_metrics_json(measured_result(), inputs);
  EXPECT_DOUBLE_EQ(m["gpu_process_memory_mb"].get<double>(), 900.0);
  EXPECT_TRUE(m["gpu_context_memory_mb"].is_null());
  EXPECT_EQ(m["null_reasons"]["gpu_context_memory_mb"],
            "peak_gpu_memory_mb unavailable: allocator not tracked");
  expect_consistent_nulls(m);

  // NVML read after the tensors were freed: less than the peak, never a negative context.
  inputs.peak_gpu_memory_mb = 1000.0;
  m = inference_metrics_json(measured_result(), inputs);
  EXPECT_TRUE(m["gpu_context_memory_mb"].is_null());
  EXPECT_NE(m["null_reasons"]["gpu_context_memory_mb"].get<std::string>().find("below peak_gpu_memory_mb"),
            std::string::npos);
  expect_consistent_nulls(m);
}

}  // namespace
}  // namespace nlpf
