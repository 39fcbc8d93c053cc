// EnergyMeter: where joules come from (DESIGN §6). A meter reports a monotonic cumulative energy in joules
// whose origin is arbitrary (only differences mean anything; counter wraparound and resets are folded in),
// plus what power and device-state readings its source offers. Implementations: NvmlMeter (GPU, NVML loaded
// at run time), RaplMeter (CPU, powercap sysfs) and UnavailableMeter (carries why there is no reading).
// Every public read is thread-safe: the power sampler thread and the protocol read the same meter.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/device.h"

namespace nlpf {

// One entry of a driver power-sample buffer: the driver's own timestamp (microseconds since the Unix epoch,
// as NVML reports it) and the power it sampled.
struct TimedPowerSample {
  uint64_t epoch_us = 0;
  double power_w = 0.0;
};

// Readings that explain a number (clocks, heat, throttling); absent where the source has none.
struct DeviceState {
  std::optional<double> sm_clock_mhz;
  std::optional<double> temperature_c;
  std::optional<uint64_t> throttle_reasons;  // NVML clocks-event reason bits (kThrottleReason* below)
};

// NVML clocks-event (throttle) reason bits, nvml.h nvmlClocksEventReason* / nvmlClocksThrottleReason*.
inline constexpr uint64_t kThrottleReasonGpuIdle = 0x1;
inline constexpr uint64_t kThrottleReasonApplicationsClocksSetting = 0x2;
inline constexpr uint64_t kThrottleReasonSwPowerCap = 0x4;
inline constexpr uint64_t kThrottleReasonHwSlowdown = 0x8;
inline constexpr uint64_t kThrottleReasonSyncBoost = 0x10;
inline constexpr uint64_t kThrottleReasonSwThermalSlowdown = 0x20;
inline constexpr uint64_t kThrottleReasonHwThermalSlowdown = 0x40;
inline constexpr uint64_t kThrottleReasonHwPowerBrakeSlowdown = 0x80;
// The reasons that mean "slower than the card would otherwise run": power cap and thermal/hardware
// slowdowns. Idle, application-clock and sync-boost bits describe normal operation and do not count.
inline constexpr uint64_t kThrottleReasonsSlowdownMask =
    kThrottleReasonSwPowerCap | kThrottleReasonHwSlowdown | kThrottleReasonSwThermalSlowdown |
    kThrottleReasonHwThermalSlowdown | kThrottleReasonHwPowerBrakeSlowdown;

class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;

  // Short name of the energy source written to power_trace.csv and metrics.json ("nvml", "rapl", "none").
  virtual std::string source() const = 0;
  virtual bool available() const = 0;
  // Why there is no reading ("" when available()).
  virtual std::string unavailable_reason() const = 0;

  // Cumulative joules since an arbitrary origin, never decreasing. Throws Error(INTERNAL) when the meter
  // is unavailable, Error(NVML)/Error(IO) when a read fails.
  double read_energy_j() {
    std::lock_guard<std::mutex> lock(mutex_);
    return read_energy_j_locked();
  }
  // A point reading of power, where the source has one (NVML's instantaneous power field); nullopt if not.
  std::optional<double> read_power_w() {
    std::lock_guard<std::mutex> lock(mutex_);
    return read_power_w_locked();
  }
  // True where the driver keeps a buffer of timed power samples (NVML TOTAL_POWER_SAMPLES, ~20 ms apart).
  virtual bool has_power_sample_buffer() const { return false; }
  // The buffered samples newer than any returned before (and newer than since_epoch_us).
  std::vector<TimedPowerSample> drain_power_samples(uint64_t since_epoch_us) {
    std::lock_guard<std::mutex> lock(mutex_);
    return drain_power_samples_locked(since_epoch_us);
  }
  DeviceState read_device_state() {
    std::lock_guard<std::mutex> lock(mutex_);
    return read_device_state_locked();
  }
  // Static facts for run.json / metrics.json (GPU name, driver, power limit, persistence mode, zones).
  virtual nlohmann::json describe() const { return nlohmann::json::object(); }

 protected:
  // Held by the public reads above; a subclass's own multi-step reads take it too.
  std::mutex& meter_mutex() { return mutex_; }
  virtual double read_energy_j_locked() = 0;
  virtual std::optional<double> read_power_w_locked() { return std::nullopt; }
  virtual std::vector<TimedPowerSample> drain_power_samples_locked(uint64_t /*since_epoch_us*/) { return {}; }
  virtual DeviceState read_device_state_locked() { return {}; }

 private:
  std::mutex mutex_;
};

// A meter with no reading; keeps the reason so every energy field can say why it is null.
class UnavailableMeter : public EnergyMeter {
 public:
  explicit UnavailableMeter(std::string reason) : reason_(std::move(reason)) {}
  std::string source() const override { return "none"; }
  bool available() const override { return false; }
  std::string unavailable_reason() const override { return reason_; }

 protected:
  double read_energy_j_locked() override;

 private:
  std::string reason_;
};

// NVML for a CUDA device (matched by PCI bus id, else UUID: never by index), RAPL for the CPU.
// The result may be unavailable (check available()); choose_meter itself does not throw for a missing
// driver or unreadable counters.
std::unique_ptr<EnergyMeter> choose_meter(const DeviceDescription& device);

}  // namespace nlpf
