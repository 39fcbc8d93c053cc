// PowerSampler thread and the power_trace.csv writer. NVML sample timestamps are wall-clock microseconds;
// they are placed on the sampler's steady timeline through the (steady, wall) pair taken at start().
#include "measure/power_sampler.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/file_util.h"

namespace nlpf {

PowerSampler::PowerSampler(EnergyMeter& meter, PowerSamplerOptions options)
    : meter_(meter), options_(options) {
  NLPF_CHECK(options_.poll_interval_s > 0.0 && options_.drain_interval_s > 0.0, ErrorCode::INVALID_ARGUMENT,
             "power sampler: poll and drain intervals must be positive (got ", options_.poll_interval_s, ", ",
             options_.drain_interval_s, ")");
}

PowerSampler::~PowerSampler() {
  try {
    stop();
  } catch (...) {  // a destructor cannot report; stop() is where errors surface
  }
}

void PowerSampler::start() {
  NLPF_CHECK(!thread_.joinable(), ErrorCode::INTERNAL, "power sampler started twice");
  std::lock_guard<std::mutex> lock(mutex_);
  if (!started_once_) {
    start_steady_ = std::chrono::steady_clock::now();
    start_epoch_us_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
    started_once_ = true;
  }
  if (!meter_.available()) return;
  stop_requested_ = false;
  thread_ = std::thread(&PowerSampler::run, this);
}

void PowerSampler::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_requested_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

bool PowerSampler::running() const {
  return thread_.joinable();
}

void PowerSampler::set_phase(const std::string& phase) {
  const double now = elapsed_s();
  std::lock_guard<std::mutex> lock(mutex_);
  phase_changes_.emplace_back(now, phase);
}

std::string PowerSampler::phase() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return phase_changes_.empty() ? std::string() : phase_changes_.back().second;
}

double PowerSampler::elapsed_s() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!started_once_) return 0.0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_steady_).count();
}

std::vector<PowerTraceRow> PowerSampler::rows() const {
  std::vector<PowerTraceRow> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    out = rows_;
  }
  std::stable_sort(out.begin(), out.end(), [](const PowerTraceRow& a, const PowerTraceRow& b) {
    return a.timestamp_s < b.timestamp_s;
  });
  return out;
}

std::string PowerSampler::phase_at(double t) const {
  std::string phase;
  for (const auto& [time, name] : phase_changes_) {
    if (time > t) break;
    phase = name;
  }
  return phase;
}

void PowerSampler::poll_meter(double now_s) {
  PowerTraceRow row;
  row.timestamp_s = now_s;
  const double energy_j = meter_.read_energy_j();
  row.energy_j = energy_j;
  if (meter_.has_power_sample_buffer()) {
    row.source = meter_.source() + "_counter";  // power comes from the buffer's own rows
  } else if (const std::optional<double> power = meter_.read_power_w()) {
    row.power_w = power;
    row.source = meter_.source() + "_power_instant";
  } else {
    if (last_energy_ && now_s > last_energy_->first)
      row.power_w = (energy_j - last_energy_->second) / (now_s - last_energy_->first);
    row.source = meter_.source() + "_energy_delta";
  }
  last_energy_ = std::make_pair(now_s, energy_j);
  const DeviceState state = meter_.read_device_state();
  row.sm_clock_mhz = state.sm_clock_mhz;
  row.temperature_c = state.temperature_c;
  row.throttle_reasons = state.throttle_reasons;
  std::lock_guard<std::mutex> lock(mutex_);
  row.phase = phase_at(now_s);
  rows_.push_back(std::move(row));
}

void PowerSampler::drain_buffer() {
  const std::vector<TimedPowerSample> samples = meter_.drain_power_samples(start_epoch_us_);
  std::lock_guard<std::mutex> lock(mutex_);
  for (const TimedPowerSample& sample : samples) {
    if (sample.epoch_us < start_epoch_us_) continue;
    PowerTraceRow row;
    row.timestamp_s = static_cast<double>(sample.epoch_us - start_epoch_us_) * 1e-6;
    row.power_w = sample.power_w;
    row.source = meter_.source() + "_sample_buffer";
    row.phase = phase_at(row.timestamp_s);
    rows_.push_back(std::move(row));
  }
}

void PowerSampler::run() {
  const bool buffered = meter_.has_power_sample_buffer();
  double last_drain_s = -1e30;
  std::unique_lock<std::mutex> lock(mutex_);
  bool stopping = stop_requested_;
  // One more poll (and drain) after the stop request, so the trace reaches the end of the measured window.
  for (bool last = stopping;; last = stopping) {
    lock.unlock();
    try {
      const double now = elapsed_s();
      poll_meter(now);
      if (buffered && (last || now - last_drain_s >= options_.drain_interval_s)) {
        drain_buffer();
        last_drain_s = now;
      }
    } catch (...) {
      lock.lock();
      if (!error_) error_ = std::current_exception();
      return;
    }
    lock.lock();
    if (last) return;
    wake_.wait_for(lock, std::chrono::duration<double>(options_.poll_interval_s),
                   [this] { return stop_requested_; });
    stopping = stop_requested_;
  }
}

namespace {

void append_number(std::string& out, const std::optional<double>& value, const char* format) {
  if (!value) return;
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, *value);
  out += buffer;
}

void append_text(std::string& out, const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) {
    out += text;
    return;
  }
  out += '"';
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

}  // namespace

std::string power_trace_csv(const std::vector<PowerTraceRow>& rows) {
  std::string out = "timestamp_s,power_w,energy_j,source,phase,sm_clock_mhz,temperature_c,throttle_reasons\n";
  for (const PowerTraceRow& row : rows) {
    append_number(out, row.timestamp_s, "%.6f");
    out += ',';
    append_number(out, row.power_w, "%.3f");
    out += ',';
    append_number(out, row.energy_j, "%.6f");
    out += ',';
    append_text(out, row.source);
    out += ',';
    append_text(out, row.phase);
    out += ',';
    append_number(out, row.sm_clock_mhz, "%.0f");
    out += ',';
    append_number(out, row.temperature_c, "%.0f");
    out += ',';
    if (row.throttle_reasons) out += std::to_string(*row.throttle_reasons);
    out += '\n';
  }
  return out;
}

void write_power_trace_csv(const std::filesystem::path& path, const std::vector<PowerTraceRow>& rows) {
  write_file_atomic(path, power_trace_csv(rows));
}

}  // namespace nlpf
