// NvmlMeter without a usable NVML: a library path that does not exist, and a file that is not a library.
// Either way the meter is unavailable with a reason (never a throw), and the protocol still completes with
// every energy field null and the reason kept.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "measure/metrics_json.h"
#include "measure/nvml_meter.h"
#include "measure/protocol.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;

TEST(MeasureNvml, MissingLibraryIsUnavailableNotFound) {
  NvmlMeter meter(NvmlDeviceSelector{"0000:65:00.0", ""}, "/nonexistent/libnvidia-ml.so.1");
  EXPECT_FALSE(meter.available());
  EXPECT_EQ(meter.source(), "nvml");
  EXPECT_NE(meter.unavailable_reason().find("/nonexistent/libnvidia-ml.so.1 not found (no NVIDIA driver)"),
            std::string::npos)
      << meter.unavailable_reason();
  EXPECT_FALSE(meter.has_power_sample_buffer());
  EXPECT_FALSE(meter.read_power_w().has_value());
  EXPECT_TRUE(meter.drain_power_samples(0).empty());
  EXPECT_FALSE(meter.read_device_state().sm_clock_mhz.has_value());
  EXPECT_FALSE(meter.process_memory(static_cast<unsigned int>(::getpid())).used_bytes.has_value());
  EXPECT_EQ(meter.describe()["available"], false);
  EXPECT_THROW(meter.read_energy_j(), Error);
}

TEST(MeasureNvml, NotALibraryIsUnavailable) {
  const testing_util::TempDir dir("measure_nvml");
  const fs::path fake = dir / "libfake_nvml.so";
  std::ofstream(fake) << "not an ELF file\n";
  NvmlMeter meter(NvmlDeviceSelector{"", "GPU-00000000-0000-0000-0000-000000000000"}, fake.string());
  EXPECT_FALSE(meter.available());
  EXPECT_NE(meter.unavailable_reason().find(fake.string()), std::string::npos) << meter.unavailable_reason();
}

TEST(MeasureNvml, ProtocolCompletesWithNullEnergyAndTheReason) {
  NvmlMeter meter(NvmlDeviceSelector{"0000:65:00.0", ""}, "/nonexistent/libnvidia-ml.so.1");
  PowerSampler sampler(meter);
  sampler.start();  // nothing to sample: no thread
  EXPECT_FALSE(sampler.running());
  const Workload workload = [] { return PassResult{4, {1, 0, 1, 1}, {0.5, 0.7}}; };
  ProtocolOptions options;
  options.trials = 3;
  options.min_trial_seconds = 0.01;
  options.idle_seconds = 0.01;
  options.warmup_min_seconds = 0.0;
  const ProtocolResult result = run_protocol(options, meter, &sampler, workload);
  sampler.stop();
  EXPECT_EQ(result.trials.size(), 3u);
  EXPECT_EQ(result.energy_source, "none");
  EXPECT_FALSE(result.energy_per_example_j.has_value());
  EXPECT_FALSE(result.idle_power_w.has_value());
  EXPECT_GT(result.average_latency_per_example_ms, 0.0);
  InferenceMetricsInputs inputs;
  inputs.accuracy = 0.75;
  inputs.peak_gpu_memory_null_reason = "not a GPU run";
  inputs.peak_memory_mb = 12.0;
  const nlohmann::json metrics = inference_metrics_json(result, inputs);
  for (const char* key : {"energy_per_example_j", "energy_per_correct_j", "energy_per_example_j_ci_low",
                          "energy_per_example_j_ci_high", "dynamic_energy_per_example_j", "idle_power_w",
                          "average_power_w", "cv", "cv_flagged"}) {
    EXPECT_TRUE(metrics[key].is_null()) << key;
    ASSERT_TRUE(metrics["null_reasons"].contains(key)) << key;
    EXPECT_NE(metrics["null_reasons"][key].get<std::string>().find("not found"), std::string::npos) << key;
  }
  EXPECT_DOUBLE_EQ(metrics["accuracy"].get<double>(), 0.75);
  EXPECT_EQ(metrics["energy_source"], "none");
}

}  // namespace
}  // namespace nlpf
