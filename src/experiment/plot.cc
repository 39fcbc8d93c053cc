// PLplot drawing. PLplot keeps global state per stream, so each plot makes its own stream (plmkstrm) and
// ends only that one (plend1). Colour map 0: 0 background, 1 axes and text, 2 frontier, 3 dominated points,
// 4 grid, 5 whiskers and leader lines. On a log axis PLplot takes log10 of the values (plenv's axis 10).
#include "experiment/plot.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <system_error>

#include "core/error.h"

#if NLPF_WITH_PLPLOT
#include <plplot.h>
#endif

namespace nlpf {
namespace {

constexpr double kLogSpanRatio = 20.0;
// Average width of a label character in character heights (PLplot has no string-width query): measured
// on pngcairo's sans font for digits and lower case, rounded up.
constexpr double kCharWidth = 0.75;
// Radius of the frontier marker (the larger one) as drawn, in mm of the page.
constexpr double kMarkerRadiusMm = 2.5;

double overlap_area(const LabelBox& a, const LabelBox& b) {
  const double w =
      std::min(a.x + a.width / 2, b.x + b.width / 2) - std::max(a.x - a.width / 2, b.x - b.width / 2);
  const double h =
      std::min(a.y + a.height / 2, b.y + b.height / 2) - std::max(a.y - a.height / 2, b.y - b.height / 2);
  return w > 0 && h > 0 ? w * h : 0.0;
}

// Moves a centre so that the box lies inside [0, 1] on this axis (centred when it cannot fit).
double clamp_centre(double centre, double size) {
  if (size >= 1.0) return 0.5;
  return std::clamp(centre, size / 2, 1.0 - size / 2);
}

#if NLPF_WITH_PLPLOT
// Ends the PLplot stream on every exit path, so an exception leaves no half-open stream behind.
class PlotStream {
 public:
  PlotStream() { plmkstrm(&stream_); }
  ~PlotStream() {
    if (stream_ >= 0) {
      plsstrm(stream_);
      plend1();
    }
  }
  PlotStream(const PlotStream&) = delete;
  PlotStream& operator=(const PlotStream&) = delete;
  bool ok() const { return stream_ >= 0; }
  // Ends the stream now: pngcairo writes the file only then.
  void finish() {
    plend1();
    stream_ = -1;
  }

 private:
  PLINT stream_ = -1;
};

struct Range {
  double low = 0.0;
  double high = 0.0;
};

// The range of `values` widened by `fraction` of its span on each side; a zero span gets a margin relative
// to the value (a single point, or all points tied).
Range padded_range(const std::vector<double>& values, double fraction, double zero_span_margin) {
  Range r{*std::min_element(values.begin(), values.end()), *std::max_element(values.begin(), values.end())};
  const double span = r.high - r.low;
  const double pad = span > 0 ? fraction * span : std::max(zero_span_margin * std::abs(r.high), 1e-6);
  return {r.low - pad, r.high + pad};
}

// Tick labels of a log axis as plain decimals at 1, 2 and 5 times each power of ten (PLplot's own labels
// are powers of ten only, two or three on a typical sweep); only at powers of ten past three decades.
void label_log_axis(const Range& log_range) {
  const int first = static_cast<int>(std::floor(log_range.low));
  const int last = static_cast<int>(std::ceil(log_range.high));
  const bool dense = log_range.high - log_range.low <= 3.0;
  for (int decade = first; decade <= last; ++decade) {
    for (const double multiple : {1.0, 2.0, 5.0}) {
      if (!dense && multiple != 1.0) continue;
      const double value = multiple * std::pow(10.0, decade);
      const double position = (std::log10(value) - log_range.low) / (log_range.high - log_range.low);
      if (position < 0.0 || position > 1.0) continue;
      std::ostringstream text;
      text << std::setprecision(3) << value;
      plmtex("b", 1.6, position, 0.5, text.str().c_str());
    }
  }
}
#endif

}  // namespace

bool plots_available() {
#if NLPF_WITH_PLPLOT
  return true;
#else
  return false;
#endif
}

bool use_log_cost_axis(const std::vector<PlotPoint>& points) {
  double low = 0.0, high = 0.0;
  bool any = false;
  const auto take = [&](double v) {
    low = any ? std::min(low, v) : v;
    high = any ? std::max(high, v) : v;
    any = true;
  };
  for (const PlotPoint& p : points) {
    take(p.cost);
    if (p.cost_low) take(*p.cost_low);
    if (p.cost_high) take(*p.cost_high);
  }
  return any && low > 0 && std::isfinite(high) && high > kLogSpanRatio * low;
}

std::vector<LabelBox> place_labels(const std::vector<LabelBox>& points, double marker_radius,
                                   const std::vector<LabelBox>& obstacles) {
  std::vector<LabelBox> markers = obstacles;
  for (const LabelBox& p : points) markers.push_back({p.x, p.y, 2 * marker_radius, 2 * marker_radius});

  std::vector<LabelBox> placed;
  placed.reserve(points.size());
  for (const LabelBox& p : points) {
    const double w = p.width, h = p.height, gap = marker_radius + 0.3 * h;
    // (dx, dy) in units of the label's half-size plus the gap: near places first, then further out.
    std::vector<std::array<double, 2>> offsets = {{0, gap + h / 2},
                                                  {0, -gap - h / 2},
                                                  {gap + w / 2, 0},
                                                  {-gap - w / 2, 0},
                                                  {gap + w / 2, gap + h / 2},
                                                  {-gap - w / 2, gap + h / 2},
                                                  {gap + w / 2, -gap - h / 2},
                                                  {-gap - w / 2, -gap - h / 2}};
    for (int ring = 1; ring <= 3; ++ring) {
      const double step = ring * 1.2 * h;
      offsets.push_back({0, gap + h / 2 + step});
      offsets.push_back({0, -gap - h / 2 - step});
      offsets.push_back({gap + w / 2, gap + h / 2 + step});
      offsets.push_back({-gap - w / 2, gap + h / 2 + step});
      offsets.push_back({gap + w / 2, -gap - h / 2 - step});
      offsets.push_back({-gap - w / 2, -gap - h / 2 - step});
    }
    LabelBox best;
    double best_overlap = -1.0;
    for (const std::array<double, 2>& offset : offsets) {
      const LabelBox candidate{clamp_centre(p.x + offset[0], w), clamp_centre(p.y + offset[1], h), w, h};
      double overlap = 0.0;
      for (const LabelBox& other : placed) overlap += overlap_area(candidate, other);
      for (const LabelBox& marker : markers) overlap += overlap_area(candidate, marker);
      if (best_overlap < 0 || overlap < best_overlap) {
        best = candidate;
        best_overlap = overlap;
      }
      if (overlap == 0.0) break;
    }
    placed.push_back(best);
  }
  return placed;
}

std::vector<const PlotPoint*> points_to_label(const FrontierPlot& plot) {
  const bool label_off_frontier = plot.points.size() <= kLabelEveryPointUpTo;
  std::vector<const PlotPoint*> order;
  for (const bool on_frontier : {true, false}) {
    if (!on_frontier && !label_off_frontier) continue;
    for (const PlotPoint& p : plot.points) {
      if (p.on_frontier == on_frontier) order.push_back(&p);
    }
  }
  return order;
}

std::optional<std::string> plot_frontier_png(const std::filesystem::path& path, const FrontierPlot& plot) {
#if NLPF_WITH_PLPLOT
  if (plot.points.empty()) return std::string("no point to plot");
  for (const PlotPoint& p : plot.points) {
    NLPF_CHECK(std::isfinite(p.cost) && std::isfinite(p.y), ErrorCode::INVALID_ARGUMENT, "plot ",
               path.string(), ": point '", p.label, "' is not finite (", p.cost, ", ", p.y, ")");
    NLPF_CHECK(p.cost_low.has_value() == p.cost_high.has_value(), ErrorCode::INVALID_ARGUMENT, "plot ",
               path.string(), ": point '", p.label, "' has only one end of its confidence interval");
  }
  const bool log_x = use_log_cost_axis(plot.points);
  const auto to_axis = [log_x](double v) { return log_x ? std::log10(v) : v; };

  // PLplot exits the process when it cannot open its output file, so the file is opened here first. It
  // is drawn under a temporary name and renamed, so a failed plot never leaves a partial PNG behind.
  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream probe(tmp, std::ios::binary | std::ios::trunc);
    NLPF_CHECK(probe.good(), ErrorCode::IO, "cannot write plot ", path.string());
  }

  std::vector<double> xs, ys;
  for (const PlotPoint& p : plot.points) {
    xs.push_back(to_axis(p.cost));
    if (p.cost_low) {
      xs.push_back(to_axis(*p.cost_low));
      xs.push_back(to_axis(*p.cost_high));
    }
    ys.push_back(p.y);
  }
  const Range x_range = padded_range(xs, 0.08, 0.1);
  Range y_range = padded_range(ys, 0.12, 0.02);
  // Room above the highest point for its label.
  y_range.high += 0.06 * (y_range.high - y_range.low);

  {
    PlotStream stream;
    if (!stream.ok()) {
      std::filesystem::remove(tmp);
      NLPF_THROW(ErrorCode::IO, "PLplot: no free plot stream for ", path.string());
    }
    plsdev("pngcairo");
    plsfnam(tmp.string().c_str());
    plspage(0, 0, 1000, 700, 0, 0);
    plscol0(0, 255, 255, 255);
    plscol0(1, 25, 25, 25);
    plscol0(2, 200, 40, 40);
    plscol0(3, 70, 100, 190);
    plscol0(4, 225, 225, 225);
    plscol0(5, 130, 130, 130);
    plinit();
    pladv(0);
    plvpor(0.115, 0.97, 0.11, 0.91);  // left room for 5-character tick labels (0.926) and the y label
    plwind(x_range.low, x_range.high, y_range.low, y_range.high);
    // Plain decimals on linear axes too: PLplot would otherwise move a common factor into an "(x10^-2)" that
    // sits past the right edge of the page.
    plsxax(8, 0);
    plsyax(8, 0);

    // PLplot's default character height is large on a 1000x700 page: scale it down, and the title further
    // where it would run past the page (kCharWidth).
    PLFLT default_mm = 0, char_mm = 0, page_x0 = 0, page_x1 = 0, page_y0 = 0, page_y1 = 0;
    plgspa(&page_x0, &page_x1, &page_y0, &page_y1);
    plschr(0, 0.85);
    plcol0(4);
    plwidth(1.0);
    plbox(log_x ? "gl" : "g", 0, 0, "g", 0, 0);
    plcol0(1);
    plwidth(1.5);
    plbox(log_x ? "bcstl" : "bcnst", 0, 0, "bcnstv", 0, 0);
    if (log_x) label_log_axis(x_range);
    plmtex("b", 3.2, 0.5, 0.5, plot.cost_label.c_str());
    plmtex("l", 5.6, 0.5, 0.5, plot.y_label.c_str());
    plschr(0, 1.0);
    plgchr(&default_mm, &char_mm);
    const double title_mm = kCharWidth * char_mm * static_cast<double>(plot.title.size());
    const double title_room_mm = 0.95 * (page_x1 - page_x0);
    if (title_mm > title_room_mm) plschr(0, std::max(0.5, title_room_mm / title_mm));
    plmtex("t", 1.5, 0.5, 0.5, plot.title.c_str());

    // The frontier as a step line: at cost x the best reachable y is that of the last frontier point at or
    // left of x, so the line runs level to the next frontier point and then changes; after the last one it
    // runs level to the right edge of the data, over the points it dominates.
    std::vector<const PlotPoint*> frontier;
    for (const PlotPoint& p : plot.points) {
      if (p.on_frontier) frontier.push_back(&p);
    }
    std::sort(frontier.begin(), frontier.end(),
              [](const PlotPoint* a, const PlotPoint* b) { return a->cost < b->cost; });
    std::vector<PLFLT> line_x, line_y;
    if (!frontier.empty()) {
      for (size_t i = 0; i < frontier.size(); ++i) {
        if (i > 0) {
          line_x.push_back(to_axis(frontier[i]->cost));
          line_y.push_back(frontier[i - 1]->y);
        }
        line_x.push_back(to_axis(frontier[i]->cost));
        line_y.push_back(frontier[i]->y);
      }
      const double right = *std::max_element(xs.begin(), xs.end());
      if (right > line_x.back()) {
        line_x.push_back(right);
        line_y.push_back(line_y.back());
      }
      if (line_x.size() > 1) {
        plcol0(2);
        plwidth(2.5);
        plline(static_cast<PLINT>(line_x.size()), line_x.data(), line_y.data());
      }
    }

    plcol0(5);
    plwidth(1.5);
    for (const PlotPoint& p : plot.points) {
      if (!p.cost_low) continue;
      PLFLT low = to_axis(*p.cost_low), high = to_axis(*p.cost_high), y = p.y;
      plerrx(1, &low, &high, &y);
    }

    // Dominated points first, so frontier markers sit on top.
    plwidth(1.5);
    for (const bool on_frontier : {false, true}) {
      for (const PlotPoint& p : plot.points) {
        if (p.on_frontier != on_frontier) continue;
        PLFLT x = to_axis(p.cost), y = p.y;
        plcol0(on_frontier ? 2 : 3);
        plssym(0, on_frontier ? 2.2 : 1.1);
        plpoin(1, &x, &y, on_frontier ? 17 : 4);
      }
    }

    // Label sizes in unit box coordinates, from the character height (mm) and the viewport size (mm).
    plschr(0, 0.75);
    PLFLT vp_x0 = 0, vp_x1 = 0, vp_y0 = 0, vp_y1 = 0;
    plgchr(&default_mm, &char_mm);
    plgvpd(&vp_x0, &vp_x1, &vp_y0, &vp_y1);
    const double box_w_mm = (vp_x1 - vp_x0) * (page_x1 - page_x0);
    const double box_h_mm = (vp_y1 - vp_y0) * (page_y1 - page_y0);
    const double marker_radius = kMarkerRadiusMm / std::min(box_w_mm, box_h_mm);

    // Frontier labels are placed first and get the nearest free places.
    const std::vector<const PlotPoint*> order = points_to_label(plot);
    std::vector<LabelBox> anchors;
    for (const PlotPoint* p : order) {
      anchors.push_back({(to_axis(p->cost) - x_range.low) / (x_range.high - x_range.low),
                         (p->y - y_range.low) / (y_range.high - y_range.low),
                         kCharWidth * char_mm * static_cast<double>(p->label.size()) / box_w_mm,
                         1.5 * char_mm / box_h_mm});
    }
    // The frontier's segments are obstacles too: a label on the line is hard to read.
    std::vector<LabelBox> segments;
    const double line_half_width = 0.004;
    for (size_t i = 1; i < line_x.size(); ++i) {
      const double u0 = (line_x[i - 1] - x_range.low) / (x_range.high - x_range.low);
      const double u1 = (line_x[i] - x_range.low) / (x_range.high - x_range.low);
      const double v0 = (line_y[i - 1] - y_range.low) / (y_range.high - y_range.low);
      const double v1 = (line_y[i] - y_range.low) / (y_range.high - y_range.low);
      segments.push_back({(u0 + u1) / 2, (v0 + v1) / 2, std::abs(u1 - u0) + 2 * line_half_width,
                          std::abs(v1 - v0) + 2 * line_half_width});
    }
    const std::vector<LabelBox> labels = place_labels(anchors, marker_radius, segments);
    const auto world_x = [&](double u) { return x_range.low + u * (x_range.high - x_range.low); };
    const auto world_y = [&](double v) { return y_range.low + v * (y_range.high - y_range.low); };
    for (size_t i = 0; i < order.size(); ++i) {
      const LabelBox& a = anchors[i];
      const LabelBox& l = labels[i];
      // A label pushed away from its point (ties, crowding) gets a thin leader line to the nearest point
      // of its box.
      const double near_x = std::clamp(a.x, l.x - l.width / 2, l.x + l.width / 2);
      const double near_y = std::clamp(a.y, l.y - l.height / 2, l.y + l.height / 2);
      if (std::hypot(near_x - a.x, near_y - a.y) > marker_radius + l.height) {
        PLFLT lx[2] = {world_x(a.x), world_x(near_x)}, ly[2] = {world_y(a.y), world_y(near_y)};
        plcol0(5);
        plwidth(1.0);
        plline(2, lx, ly);
      }
      plcol0(1);
      plptex(world_x(l.x), world_y(l.y), 1.0, 0.0, 0.5, order[i]->label.c_str());
    }
    stream.finish();
  }

  std::error_code ec;
  const auto size = std::filesystem::file_size(tmp, ec);
  if (ec || size == 0) {
    std::filesystem::remove(tmp, ec);
    NLPF_THROW(ErrorCode::IO, "PLplot did not write ", path.string());
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    NLPF_THROW(ErrorCode::IO, "cannot write plot ", path.string(), ": ", ec.message());
  }
  return std::nullopt;
#else
  (void)path;
  (void)plot;
  return std::string("plots skipped (built without PLplot)");
#endif
}

}  // namespace nlpf
