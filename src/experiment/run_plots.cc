// Run plots from pareto rows; see run_plots.h. Drawing itself is experiment/plot.h (PLplot).
#include "experiment/run_plots.h"

#include <set>

#include "experiment/pareto.h"
#include "experiment/plot.h"

namespace nlpf {

using json = nlohmann::json;

namespace {

std::string title_text(const RunPlotTitle& t) {
  return t.model + " / " + t.task + " / " + t.device;
}

std::optional<double> number(const json& metrics, const std::string& key) {
  const json v = value_or_null(metrics, key);
  if (!v.is_number()) return std::nullopt;
  return v.get<double>();
}

}  // namespace

std::string plot_label(const ParetoRow& row) {
  std::string label;
  for (const auto& [name, value] : row.parameters) {
    if (value.is_null() || name == "source_run") continue;
    std::string part;
    if (name == "max_sequence_length") {
      part = "len " + csv_cell(value);
    } else if (name == "num_layers") {
      part = csv_cell(value) + (csv_cell(value) == "1" ? " layer" : " layers");
    } else if (name == "batch_size" || name == "eval_batch_size") {
      part = "bs " + csv_cell(value);
    } else if (name == "epoch") {
      part = "epoch " + csv_cell(value);
    } else {
      part = csv_cell(value);
    }
    label += (label.empty() ? "" : " ") + part;
  }
  return label.empty() ? row.label : label;
}

namespace {

// Confidence whiskers on an energy cost, where the row has both ends of the interval.
void add_whiskers(PlotPoint& point, const json& metrics, const std::string& cost_key) {
  if (cost_key != "energy_per_example_j") return;
  const std::optional<double> low = number(metrics, "energy_per_example_j_ci_low");
  const std::optional<double> high = number(metrics, "energy_per_example_j_ci_high");
  if (low && high && *low <= point.cost && point.cost <= *high) {
    point.cost_low = low;
    point.cost_high = high;
  }
}

}  // namespace

std::optional<std::string> draw_accuracy_plot(const std::filesystem::path& path,
                                              const std::vector<ParetoRow>& rows,
                                              const std::vector<std::optional<bool>>& on_frontier,
                                              const std::string& frontier_cost, const RunPlotTitle& title) {
  FrontierPlot plot;
  plot.title = title_text(title);
  plot.cost_label = frontier_cost == "energy_per_example_j" ? "energy per example (J)"
                                                            : "latency per example (ms; no energy reading)";
  plot.y_label = "accuracy";
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::optional<double> cost = number(rows[i].metrics, frontier_cost);
    const std::optional<double> accuracy = number(rows[i].metrics, "accuracy");
    if (!cost || !accuracy) continue;
    PlotPoint point{*cost, *accuracy, on_frontier[i].value_or(false), plot_label(rows[i])};
    add_whiskers(point, rows[i].metrics, frontier_cost);
    plot.points.push_back(point);
  }
  return plot_frontier_png(path, plot);
}

std::string latency_axis(const std::vector<ParetoRow>& rows) {
  std::set<std::string> batch_sizes;
  for (const ParetoRow& row : rows) {
    for (const auto& [name, value] : row.parameters) {
      if ((name == "batch_size" || name == "eval_batch_size") && !value.is_null())
        batch_sizes.insert(value.dump());
    }
  }
  return batch_sizes.size() > 1 ? "latency_p99_ms" : "average_latency_per_example_ms";
}

std::optional<std::string> draw_energy_latency_plot(const std::filesystem::path& path,
                                                    const std::vector<ParetoRow>& rows,
                                                    const RunPlotTitle& title) {
  const std::string latency_key = latency_axis(rows);
  const bool per_batch = latency_key == "latency_p99_ms";
  bool any_energy = false;
  for (const ParetoRow& row : rows) any_energy = any_energy || number(row.metrics, "energy_per_example_j");
  if (!any_energy && !per_batch) {
    return std::string("no point has an energy reading (energy-latency plot skipped)");
  }
  const std::string cost_key = any_energy ? "energy_per_example_j" : "average_latency_per_example_ms";
  FrontierPlot plot;
  plot.title = title_text(title);
  plot.cost_label = any_energy ? "energy per example (J)" : "latency per example (ms; no energy reading)";
  plot.y_label = per_batch ? "p99 batch latency (ms)" : "latency per example (ms)";
  std::vector<ParetoPoint> points;
  std::vector<size_t> row_of;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::optional<double> cost = number(rows[i].metrics, cost_key);
    const std::optional<double> latency = number(rows[i].metrics, latency_key);
    if (!cost || !latency) continue;
    // Lower is better on both axes: the frontier of (cost, -latency) is the non-dominated set.
    points.push_back({*cost, -*latency});
    row_of.push_back(i);
  }
  if (points.empty())
    return std::string("no point has both a cost and a latency (energy-latency plot skipped)");
  const std::vector<bool> frontier = pareto_frontier(points);
  for (size_t j = 0; j < points.size(); ++j) {
    const ParetoRow& row = rows[row_of[j]];
    PlotPoint point{*points[j].cost, -points[j].accuracy, static_cast<bool>(frontier[j]), plot_label(row)};
    add_whiskers(point, row.metrics, cost_key);
    plot.points.push_back(point);
  }
  return plot_frontier_png(path, plot);
}

}  // namespace nlpf
