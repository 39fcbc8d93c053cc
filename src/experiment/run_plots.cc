// Run plots from pareto rows; see run_plots.h. Drawing itself is experiment/plot.h (PLplot).
#include "experiment/run_plots.h"

#include "experiment/pareto.h"
#include "experiment/plot.h"

namespace nlpf {

using json = nlohmann::json;

namespace {

std::string title_text(const RunPlotTitle& t) { return t.model + " / " + t.task + " / " + t.device; }

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
    } else if (name == "eval_batch_size") {
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

std::optional<std::string> draw_accuracy_plot(const std::filesystem::path& path, const std::vector<ParetoRow>& rows,
                                              const std::vector<std::optional<bool>>& on_frontier,
                                              const std::string& frontier_cost, const RunPlotTitle& title) {
  FrontierPlot plot;
  plot.title = title_text(title);
  plot.cost_label = frontier_cost == "energy_per_example_j" ? "energy per example (J)"
                                                            : "latency per example (ms; no energy reading)";
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::optional<double> cost = number(rows[i].metrics, frontier_cost);
    const std::optional<double> accuracy = number(rows[i].metrics, "accuracy");
    if (!cost || !accuracy) continue;
    plot.points.push_back({*cost, *accuracy, on_frontier[i].value_or(false), plot_label(rows[i])});
  }
  return plot_frontier_png(path, plot);
}

std::optional<std::string> draw_energy_latency_plot(const std::filesystem::path& path,
                                                    const std::vector<ParetoRow>& rows, const RunPlotTitle& title) {
  (void)path;
  (void)rows;
  (void)title;
  return std::string("energy-latency plot not drawn yet");
}

}  // namespace nlpf
