// PowerSampler: a background thread that writes the power trace (power_trace.csv, DESIGN §3/§6). Where the
// driver keeps a power-sample buffer (NVML, ~20 ms apart) it is drained every drain_interval_s and each
// sample becomes a row with its own timestamp; otherwise instantaneous power is polled every
// poll_interval_s, or, for meters without a power reading (RAPL), power is the energy delta over the poll
// interval. The thread sleeps on a condition variable between polls: its cost is a few reads per 50 ms.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "measure/energy_meter.h"

namespace nlpf {

// One row of power_trace.csv; the columns are in this order, the first two as in the reference study.
// Empty optionals are written as empty cells (never 0).
struct PowerTraceRow {
  double timestamp_s = 0.0;  // since the sampler's start, steady clock
  std::optional<double> power_w;
  std::optional<double> energy_j;  // the meter's cumulative energy at this moment
  std::string
      source;         // where power_w came from: nvml_sample_buffer, nvml_power_instant, <meter>_energy_delta
  std::string phase;  // set by the protocol: idle, warmup, trial 1, ..., train
  std::optional<double> sm_clock_mhz;
  std::optional<double> temperature_c;
  std::optional<uint64_t> throttle_reasons;  // NVML clocks-event reason bits (energy_meter.h)
};

struct PowerSamplerOptions {
  double poll_interval_s = 0.05;
  // NVML's buffer holds a few seconds of 20 ms samples; draining twice a second loses none.
  double drain_interval_s = 0.5;
};

class PowerSampler {
 public:
  explicit PowerSampler(EnergyMeter& meter, PowerSamplerOptions options = {});
  ~PowerSampler();  // stops the thread (errors it met are then dropped: call stop() to see them)
  PowerSampler(const PowerSampler&) = delete;
  PowerSampler& operator=(const PowerSampler&) = delete;

  // Starts the thread (a no-op when the meter is unavailable: there is nothing to sample). Restarting
  // after stop() continues the same trace and clock.
  void start();
  // Takes a last reading, joins the thread, and rethrows the first error the thread met (a failed read).
  void stop();
  bool running() const;
  void set_phase(const std::string& phase);
  std::string phase() const;
  // Seconds since the first start() on the sampler's clock (0 before it).
  double elapsed_s() const;
  // The trace so far, ordered by timestamp.
  std::vector<PowerTraceRow> rows() const;

 private:
  void run();
  void poll_meter(double now_s);
  void drain_buffer();
  std::string phase_at(double t) const;  // needs mutex_

  EnergyMeter& meter_;
  PowerSamplerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::thread thread_;
  bool stop_requested_ = false;
  bool started_once_ = false;
  std::chrono::steady_clock::time_point start_steady_;
  uint64_t start_epoch_us_ = 0;
  std::vector<std::pair<double, std::string>> phase_changes_;  // (time, phase), increasing time
  std::vector<PowerTraceRow> rows_;
  std::optional<std::pair<double, double>> last_energy_;  // (time, joules) of the previous poll
  std::exception_ptr error_;
};

// The CSV text of a trace: header then one line per row.
std::string power_trace_csv(const std::vector<PowerTraceRow>& rows);
// Writes power_trace_csv(rows) to `path` atomically; throws Error(IO) naming the path.
void write_power_trace_csv(const std::filesystem::path& path, const std::vector<PowerTraceRow>& rows);

}  // namespace nlpf
