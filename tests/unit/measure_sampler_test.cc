// PowerSampler with fake meters (energy-delta, instantaneous-power and sample-buffer modes), its error
// path, and the power_trace.csv writer (column order, empty cells for unavailable values, quoting).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/file_util.h"
#include "measure/power_sampler.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;

uint64_t epoch_us_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Energy grows at power_w on the steady clock; optional instantaneous power, sample buffer and a failure
// after a number of reads.
class FakeMeter : public EnergyMeter {
 public:
  explicit FakeMeter(double power_w) : power_w_(power_w), start_(std::chrono::steady_clock::now()) {}
  std::string source() const override { return "fake"; }
  bool available() const override { return true; }
  std::string unavailable_reason() const override { return ""; }
  bool has_power_sample_buffer() const override { return buffered_; }

  bool instant = false;
  bool buffered_ = false;
  int fail_after_reads = -1;

 protected:
  double read_energy_j_locked() override {
    if (fail_after_reads >= 0 && reads_++ >= fail_after_reads)
      NLPF_THROW(ErrorCode::NVML, "fake counter read failed");
    return power_w_ * std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  std::optional<double> read_power_w_locked() override {
    return instant ? std::optional<double>(power_w_) : std::nullopt;
  }
  std::vector<TimedPowerSample> drain_power_samples_locked(uint64_t since_epoch_us) override {
    // A driver buffer with one sample every 20 ms up to now.
    std::vector<TimedPowerSample> out;
    uint64_t t = std::max(since_epoch_us, last_sample_us_) + 20000;
    for (const uint64_t now = epoch_us_now(); t <= now; t += 20000) {
      out.push_back({t, power_w_});
      last_sample_us_ = t;
    }
    return out;
  }
  DeviceState read_device_state_locked() override { return {1980.0, 41.0, kThrottleReasonGpuIdle}; }

 private:
  double power_w_;
  std::chrono::steady_clock::time_point start_;
  int reads_ = 0;
  uint64_t last_sample_us_ = 0;
};

void sleep_s(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

TEST(MeasureSampler, EnergyDeltaModeDerivesPowerFromTheCounter) {
  FakeMeter meter(50.0);
  PowerSampler sampler(meter, {0.01, 0.5});
  sampler.set_phase("idle");
  sampler.start();
  EXPECT_TRUE(sampler.running());
  sleep_s(0.06);
  sampler.set_phase("trial 1");
  sleep_s(0.06);
  sampler.stop();
  EXPECT_FALSE(sampler.running());
  const std::vector<PowerTraceRow> rows = sampler.rows();
  ASSERT_GE(rows.size(), 2u);  // a poll at start and one at stop, whatever the scheduling
  EXPECT_FALSE(rows.front().power_w.has_value()) << "no previous reading: power unknown, not 0";
  EXPECT_EQ(rows.back().phase, "trial 1");
  bool seen_trial = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].source, "fake_energy_delta");
    ASSERT_TRUE(rows[i].energy_j.has_value());
    EXPECT_EQ(rows[i].throttle_reasons, kThrottleReasonGpuIdle);
    seen_trial = seen_trial || rows[i].phase == "trial 1";
    if (seen_trial) {
      EXPECT_EQ(rows[i].phase, "trial 1") << "phases must not go back";
    }
    if (i == 0) continue;
    EXPECT_GE(rows[i].timestamp_s, rows[i - 1].timestamp_s);
    ASSERT_TRUE(rows[i].power_w.has_value());
    // Power is the counter's slope between consecutive polls.
    EXPECT_NEAR(*rows[i].power_w * (rows[i].timestamp_s - rows[i - 1].timestamp_s),
                *rows[i].energy_j - *rows[i - 1].energy_j, 1e-9);
  }
}

TEST(MeasureSampler, InstantPowerModeUsesThePowerReading) {
  FakeMeter meter(75.0);
  meter.instant = true;
  PowerSampler sampler(meter, {0.01, 0.5});
  sampler.start();
  sleep_s(0.03);
  sampler.stop();
  const std::vector<PowerTraceRow> rows = sampler.rows();
  ASSERT_GE(rows.size(), 2u);
  for (const PowerTraceRow& row : rows) {
    EXPECT_EQ(row.source, "fake_power_instant");
    ASSERT_TRUE(row.power_w.has_value());
    EXPECT_DOUBLE_EQ(*row.power_w, 75.0);
    EXPECT_DOUBLE_EQ(*row.sm_clock_mhz, 1980.0);
    EXPECT_DOUBLE_EQ(*row.temperature_c, 41.0);
  }
}

TEST(MeasureSampler, SampleBufferRowsKeepTheirOwnTimestampsAndPhase) {
  FakeMeter meter(120.0);
  meter.buffered_ = true;
  PowerSampler sampler(meter, {0.01, 0.05});
  sampler.set_phase("warmup");
  sampler.start();
  sleep_s(0.1);  // at least 4 samples 20 ms apart
  sampler.stop();
  const std::vector<PowerTraceRow> rows = sampler.rows();
  size_t buffered = 0;
  for (const PowerTraceRow& row : rows) {
    EXPECT_EQ(row.phase, "warmup");
    if (row.source == "fake_sample_buffer") {
      ++buffered;
      EXPECT_DOUBLE_EQ(*row.power_w, 120.0);
      EXPECT_FALSE(row.energy_j.has_value());
      EXPECT_GE(row.timestamp_s, 0.0);
    } else {
      EXPECT_EQ(row.source, "fake_counter");
      EXPECT_FALSE(row.power_w.has_value()) << "counter rows carry no power in buffer mode";
      EXPECT_TRUE(row.energy_j.has_value());
    }
  }
  EXPECT_GE(buffered, 4u);
}

TEST(MeasureSampler, ReadErrorSurfacesAtStop) {
  FakeMeter meter(10.0);
  meter.fail_after_reads = 1;
  PowerSampler sampler(meter, {0.005, 0.5});
  sampler.start();
  sleep_s(0.03);
  try {
    sampler.stop();
    FAIL() << "expected the thread's Error(NVML)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NVML);
    EXPECT_NE(std::string(e.what()).find("fake counter read failed"), std::string::npos);
  }
}

TEST(MeasureSampler, BadIntervalsAreRejected) {
  FakeMeter meter(10.0);
  try {
    PowerSampler sampler(meter, {0.0, 0.5});
    FAIL() << "expected Error(INVALID_ARGUMENT)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("poll"), std::string::npos);
  }
}

TEST(MeasureSampler, CsvHasTheStudyColumnsFirstAndEmptyCells) {
  std::vector<PowerTraceRow> rows(3);
  rows[0] = {0.0, std::nullopt, 12.5, "rapl_energy_delta", "idle", std::nullopt, std::nullopt, std::nullopt};
  rows[1] = {0.05, 61.25, 15.5625, "nvml_power_instant", "trial 1", 1980.0, 45.0, uint64_t{4}};
  rows[2] = {0.1,          70.0,         std::nullopt, "nvml_sample_buffer", "odd, \"phase\"",
             std::nullopt, std::nullopt, std::nullopt};
  const std::string csv = power_trace_csv(rows);
  EXPECT_EQ(csv,
            "timestamp_s,power_w,energy_j,source,phase,sm_clock_mhz,temperature_c,throttle_reasons\n"
            "0.000000,,12.500000,rapl_energy_delta,idle,,,\n"
            "0.050000,61.250,15.562500,nvml_power_instant,trial 1,1980,45,4\n"
            "0.100000,70.000,,nvml_sample_buffer,\"odd, \"\"phase\"\"\",,,\n");
  EXPECT_EQ(power_trace_csv({}),
            "timestamp_s,power_w,energy_j,source,phase,sm_clock_mhz,temperature_c,throttle_reasons\n");

  const testing_util::TempDir dir("measure_csv");
  write_power_trace_csv(dir / "power_trace.csv", rows);
  EXPECT_EQ(read_file(dir / "power_trace.csv"), csv);
  try {
    write_power_trace_csv(dir / "absent" / "power_trace.csv", rows);
    FAIL() << "expected Error(IO)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::IO);
    EXPECT_NE(std::string(e.what()).find("power_trace.csv"), std::string::npos);
  }
}

}  // namespace
}  // namespace nlpf
