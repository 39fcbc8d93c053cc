// integrate_sample_buffer: trapezoid rule over the driver's power samples inside a window.
#include "measure/trace_energy.h"

#include <algorithm>
#include <cmath>
#include <string_view>

#include "core/error.h"
#include "measure/stats.h"

namespace nlpf {

namespace {

bool from_sample_buffer(const PowerTraceRow& row) {
  constexpr std::string_view kSuffix = "_sample_buffer";
  return row.power_w && row.source.size() >= kSuffix.size() &&
         std::string_view(row.source).substr(row.source.size() - kSuffix.size()) == kSuffix;
}

}  // namespace

TraceEnergy integrate_sample_buffer(const std::vector<PowerTraceRow>& rows, double t0_s, double t1_s) {
  NLPF_CHECK(std::isfinite(t0_s) && std::isfinite(t1_s) && t1_s > t0_s, ErrorCode::INVALID_ARGUMENT,
             "power trace window [", t0_s, ", ", t1_s, "] s is empty");
  std::vector<std::pair<double, double>> samples;  // (time s, power W)
  for (const PowerTraceRow& row : rows) {
    if (!from_sample_buffer(row) || row.timestamp_s < t0_s || row.timestamp_s > t1_s) continue;
    NLPF_CHECK(std::isfinite(*row.power_w), ErrorCode::NUMERIC,
               "power trace: non-finite power at t = ", row.timestamp_s, " s");
    samples.emplace_back(row.timestamp_s, *row.power_w);
  }
  NLPF_CHECK(samples.size() >= 2, ErrorCode::INVALID_ARGUMENT, "power trace window [", t0_s, ", ", t1_s,
             "] s holds ", samples.size(), " sample-buffer row(s); integrating needs at least 2");
  std::sort(samples.begin(), samples.end());

  TraceEnergy out;
  out.samples = static_cast<int64_t>(samples.size());
  out.first_sample_s = samples.front().first;
  out.last_sample_s = samples.back().first;
  std::vector<double> intervals;
  intervals.reserve(samples.size() - 1);
  for (size_t i = 1; i < samples.size(); ++i) {
    const double dt = samples[i].first - samples[i - 1].first;
    out.inner_energy_j += 0.5 * (samples[i].second + samples[i - 1].second) * dt;
    intervals.push_back(dt);
  }
  out.max_gap_s = *std::max_element(intervals.begin(), intervals.end());
  out.median_interval_s = median(intervals);
  out.energy_j = out.inner_energy_j + samples.front().second * (out.first_sample_s - t0_s) +
                 samples.back().second * (t1_s - out.last_sample_s);
  return out;
}

}  // namespace nlpf
