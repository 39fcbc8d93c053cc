// The energy-accuracy (or latency-accuracy) frontier plot of a run, drawn with PLplot's pngcairo driver
// where the build has PLplot (NLPF_WITH_PLPLOT). White background, dark axes, every point labelled, the
// frontier as a step line through its points in order of cost.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace nlpf {

struct PlotPoint {
  double cost = 0.0;
  double accuracy = 0.0;
  bool on_frontier = false;
  std::string label;
};

struct FrontierPlot {
  std::string title;
  std::string cost_label;  // x axis, with its unit
  std::vector<PlotPoint> points;
};

// Whether this build can draw PNGs.
bool plots_available();

// Writes the PNG. Returns nullopt when written, else why it was skipped ("plots skipped (built without
// PLplot)", "no point has a cost"). Errors: IO when PLplot cannot write `path`.
std::optional<std::string> plot_frontier_png(const std::filesystem::path& path, const FrontierPlot& plot);

}  // namespace nlpf
