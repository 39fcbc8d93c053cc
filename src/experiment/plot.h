// Frontier plots of a run (energy vs accuracy, energy vs latency), drawn with PLplot's pngcairo driver where
// the build has PLplot (NLPF_WITH_PLPLOT): cost on x, a named y axis, every point labelled with its setting,
// optional confidence whiskers on the cost, the frontier as a step line, a log cost axis past a 20x span.
// The layout decisions (log axis, label placement) are pure functions, testable without PLplot.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace nlpf {

// The x axis is always a cost (J/example, or ms/example where no energy reading exists); y is what that
// cost buys or costs besides (accuracy, latency).
struct PlotPoint {
  double cost = 0.0;
  double y = 0.0;
  bool on_frontier = false;
  std::string label;                 // the setting: "len 32", "4 layers", "epoch 2"
  std::optional<double> cost_low{};  // confidence interval of the cost (a whisker): both or neither
  std::optional<double> cost_high{};
};

struct FrontierPlot {
  std::string title;                 // names model, task and device
  std::string cost_label;            // x axis, with its unit
  std::string y_label = "accuracy";  // with its unit
  std::vector<PlotPoint> points;
};

// Whether this build can draw PNGs.
bool plots_available();

// Whether the cost axis should be logarithmic: every cost (points and whiskers) is positive and the
// largest is more than 20 times the smallest.
bool use_log_cost_axis(const std::vector<PlotPoint>& points);

// A label's place in the plot box, in unit coordinates ([0, 1] on both axes, y up): its centre and size.
struct LabelBox {
  double x = 0.0;
  double y = 0.0;
  double width = 0.0;
  double height = 0.0;
};

// Greedy label placement, in input order. Each input box gives a point (x, y) and its label's size; the
// result gives the label's centre: the first of a fixed list of offsets around the point (above, below,
// right, left, diagonals, then further out) that overlaps no earlier label, no marker (a square of
// half-side marker_radius around each point) and no obstacle (boxes such as the frontier's segments),
// else the candidate with the least overlap. Candidates are moved inside the box first, so every result
// lies inside [0, 1]^2 (a label wider or taller than the box is centred on that axis).
std::vector<LabelBox> place_labels(const std::vector<LabelBox>& points, double marker_radius,
                                   const std::vector<LabelBox>& obstacles = {});

// The points whose labels are drawn, in placement order: the frontier's first, then the others, which a plot
// of more than kLabelEveryPointUpTo points (a grid) leaves unlabelled: dozens of labels on one plot pile up
// unreadably (a 36-point grid's did), and pareto.csv names every point.
constexpr size_t kLabelEveryPointUpTo = 16;
std::vector<const PlotPoint*> points_to_label(const FrontierPlot& plot);

// Writes the PNG (1000x700). Returns nullopt when written, else why it was skipped ("plots skipped (built
// without PLplot)", "no point to plot"). Errors: IO naming `path` when it cannot be written (checked
// before PLplot opens it, since PLplot exits the process on an unopenable file).
std::optional<std::string> plot_frontier_png(const std::filesystem::path& path, const FrontierPlot& plot);

}  // namespace nlpf
