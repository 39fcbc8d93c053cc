// PLplot drawing. PLplot keeps global state per stream, so each plot makes its own stream (plmkstrm) and
// ends only that one (plend1); colour 0 is the background, colour 1 the axes and text.
#include "experiment/plot.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

#if NLPF_WITH_PLPLOT
#include <plplot.h>
#endif

namespace nlpf {

bool plots_available() {
#if NLPF_WITH_PLPLOT
  return true;
#else
  return false;
#endif
}

std::optional<std::string> plot_frontier_png(const std::filesystem::path& path, const FrontierPlot& plot) {
#if NLPF_WITH_PLPLOT
  if (plot.points.empty()) return std::string("no point has a cost");
  double x_min = plot.points[0].cost, x_max = x_min, y_min = plot.points[0].accuracy, y_max = y_min;
  for (const PlotPoint& p : plot.points) {
    x_min = std::min(x_min, p.cost);
    x_max = std::max(x_max, p.cost);
    y_min = std::min(y_min, p.accuracy);
    y_max = std::max(y_max, p.accuracy);
  }
  // Margins so single points and labels stay inside the box.
  const double x_pad = x_max > x_min ? 0.1 * (x_max - x_min) : std::max(0.1 * std::abs(x_max), 1e-6);
  const double y_pad = y_max > y_min ? 0.1 * (y_max - y_min) : 0.01;

  PLINT stream = 0;
  plmkstrm(&stream);
  NLPF_CHECK(stream >= 0, ErrorCode::IO, "PLplot: no free plot stream for ", path.string());
  plsdev("pngcairo");
  plsfnam(path.string().c_str());
  plspage(0, 0, 1000, 700, 0, 0);
  plscol0(0, 255, 255, 255);
  plscol0(1, 30, 30, 30);
  plscol0(2, 200, 40, 40);
  plscol0(3, 90, 90, 200);
  plinit();
  plcol0(1);
  plenv(x_min - x_pad, x_max + x_pad, y_min - y_pad, y_max + y_pad, 0, 0);
  pllab(plot.cost_label.c_str(), "accuracy", plot.title.c_str());

  std::vector<PlotPoint> frontier;
  for (const PlotPoint& p : plot.points) {
    if (p.on_frontier) frontier.push_back(p);
  }
  std::sort(frontier.begin(), frontier.end(),
            [](const PlotPoint& a, const PlotPoint& b) { return a.cost < b.cost; });
  if (frontier.size() > 1) {
    std::vector<PLFLT> xs, ys;
    for (size_t i = 0; i < frontier.size(); ++i) {
      if (i > 0) {  // horizontal to the next cost, then up to its accuracy
        xs.push_back(frontier[i].cost);
        ys.push_back(frontier[i - 1].accuracy);
      }
      xs.push_back(frontier[i].cost);
      ys.push_back(frontier[i].accuracy);
    }
    plcol0(2);
    plwidth(2.0);
    plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
  }
  for (const PlotPoint& p : plot.points) {
    PLFLT x = p.cost, y = p.accuracy;
    plcol0(p.on_frontier ? 2 : 3);
    plssym(0, p.on_frontier ? 2.5 : 1.0);  // symbol 17 (filled circle) is small at scale 1
    plpoin(1, &x, &y, p.on_frontier ? 17 : 4);
    plcol0(1);
    plschr(0, 0.7);
    plptex(x, y + 0.25 * y_pad, 1.0, 0.0, 0.5, p.label.c_str());
    plschr(0, 1.0);
  }
  plend1();
  std::error_code ec;
  NLPF_CHECK(std::filesystem::exists(path, ec), ErrorCode::IO, "PLplot did not write ", path.string());
  return std::nullopt;
#else
  (void)path;
  (void)plot;
  return std::string("plots skipped (built without PLplot)");
#endif
}

}  // namespace nlpf
