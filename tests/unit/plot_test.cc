// Frontier plots: the log-axis decision, label placement (inside the box, apart from each other), PNGs for
// the shapes a sweep produces (few points, a 100x cost span, ties, one point, whiskers) and the errors.
// With NLPF_PLOT_SAMPLES_DIR set, the sample PNGs are also written there, to be looked at. Run plots: the
// latency axis of the energy-latency plot (p99 batch latency where the batch size varies) and point labels.
#include "experiment/plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "experiment/run_plots.h"
#include "test_util.h"

namespace nlpf {
namespace {

using testing_util::TempDir;

void expect_error(const std::function<void()>& fn, ErrorCode code, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    const std::string message = e.what();
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "message spans lines: " << message;
  }
}

PlotPoint point(double cost, double y, bool on_frontier, std::string label) {
  PlotPoint p;
  p.cost = cost;
  p.y = y;
  p.on_frontier = on_frontier;
  p.label = std::move(label);
  return p;
}

bool inside_unit_box(const LabelBox& b) {
  const double eps = 1e-12;
  return b.x - b.width / 2 >= -eps && b.x + b.width / 2 <= 1 + eps && b.y - b.height / 2 >= -eps &&
         b.y + b.height / 2 <= 1 + eps;
}

bool overlap(const LabelBox& a, const LabelBox& b) {
  return std::abs(a.x - b.x) < (a.width + b.width) / 2 && std::abs(a.y - b.y) < (a.height + b.height) / 2;
}

TEST(PlotLogAxis, OnlyPastTwentyTimesAndPositive) {
  EXPECT_FALSE(use_log_cost_axis({}));
  EXPECT_FALSE(use_log_cost_axis({point(0.5, 0.9, true, "a")}));
  EXPECT_FALSE(use_log_cost_axis({point(1.0, 0.9, true, "a"), point(20.0, 0.9, true, "b")}));
  EXPECT_TRUE(use_log_cost_axis({point(1.0, 0.9, true, "a"), point(20.5, 0.9, true, "b")}));
  EXPECT_TRUE(use_log_cost_axis({point(0.002, 0.9, true, "a"), point(0.2, 0.9, true, "b")}));
  // A zero or negative cost has no logarithm: the axis stays linear.
  EXPECT_FALSE(use_log_cost_axis({point(0.0, 0.9, true, "a"), point(100.0, 0.9, true, "b")}));
  EXPECT_FALSE(use_log_cost_axis({point(-1.0, 0.9, true, "a"), point(100.0, 0.9, true, "b")}));
  // Whiskers count: the axis must hold them.
  PlotPoint wide = point(1.0, 0.9, true, "a");
  wide.cost_low = 0.04;
  wide.cost_high = 1.2;
  EXPECT_TRUE(use_log_cost_axis({wide, point(2.0, 0.9, false, "b")}));
}

TEST(PlotLabels, StayInsideTheBoxAndApart) {
  // Points on the edges and corners, a tie of four and a cluster: every label inside, none on another.
  std::vector<LabelBox> points = {{0.0, 0.0, 0.12, 0.04},  {1.0, 1.0, 0.12, 0.04}, {0.0, 1.0, 0.2, 0.04},
                                  {1.0, 0.0, 0.2, 0.04},   {0.5, 0.5, 0.1, 0.04},  {0.5, 0.5, 0.1, 0.04},
                                  {0.5, 0.5, 0.1, 0.04},   {0.5, 0.5, 0.1, 0.04},  {0.52, 0.51, 0.1, 0.04},
                                  {0.3, 0.98, 0.15, 0.04}, {0.99, 0.5, 0.15, 0.04}};
  const std::vector<LabelBox> labels = place_labels(points, 0.01);
  ASSERT_EQ(labels.size(), points.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    EXPECT_TRUE(inside_unit_box(labels[i])) << i << ": " << labels[i].x << ", " << labels[i].y;
    EXPECT_DOUBLE_EQ(labels[i].width, points[i].width);
    EXPECT_DOUBLE_EQ(labels[i].height, points[i].height);
    for (size_t j = 0; j < i; ++j) EXPECT_FALSE(overlap(labels[i], labels[j])) << i << " overlaps " << j;
  }
  // Labels of the tie stay near it (within a few label heights), not thrown across the plot.
  for (size_t i = 4; i < 8; ++i) {
    EXPECT_LT(std::abs(labels[i].y - 0.5), 0.3) << i;
    EXPECT_LT(std::abs(labels[i].x - 0.5), 0.3) << i;
  }
  // A lone point keeps its label right above it.
  const std::vector<LabelBox> lone = place_labels({{0.4, 0.4, 0.1, 0.04}}, 0.01);
  EXPECT_DOUBLE_EQ(lone[0].x, 0.4);
  EXPECT_GT(lone[0].y, 0.4);
  EXPECT_LT(lone[0].y, 0.5);
}

TEST(PlotLabels, AvoidObstaclesSuchAsTheFrontierLine) {
  // A level line through the point and right above it: the label goes below.
  const std::vector<LabelBox> obstacles = {{0.5, 0.5, 1.0, 0.01}, {0.5, 0.56, 0.4, 0.04}};
  const std::vector<LabelBox> labels = place_labels({{0.5, 0.5, 0.1, 0.04}}, 0.01, obstacles);
  for (const LabelBox& o : obstacles) EXPECT_FALSE(overlap(labels[0], o));
  EXPECT_LT(labels[0].y, 0.5);
}

TEST(PlotLabels, FrontierFirstAndAGridLabelsItsFrontierOnly) {
  FrontierPlot small;
  small.points = {point(2, 0.8, false, "a"), point(1, 0.9, true, "b"), point(3, 0.7, false, "c")};
  std::vector<const PlotPoint*> order = points_to_label(small);
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0]->label, "b");  // the frontier's first
  FrontierPlot grid;
  for (size_t i = 0; i <= kLabelEveryPointUpTo; ++i) {
    grid.points.push_back(point(1.0 + static_cast<double>(i), 0.5, i % 5 == 0, std::to_string(i)));
  }
  order = points_to_label(grid);
  ASSERT_EQ(order.size(), 4u);  // points 0, 5, 10, 15: the frontier only
  for (const PlotPoint* p : order) EXPECT_TRUE(p->on_frontier) << p->label;
}

TEST(PlotLabels, OversizedLabelIsCentred) {
  const std::vector<LabelBox> labels = place_labels({{0.9, 0.9, 1.5, 0.05}}, 0.01);
  EXPECT_DOUBLE_EQ(labels[0].x, 0.5);
  EXPECT_TRUE(labels[0].y + 0.025 <= 1.0);
}

// The sample plots: written into a TempDir, and into NLPF_PLOT_SAMPLES_DIR as well when that is set.
std::vector<std::pair<std::string, FrontierPlot>> sample_plots() {
  std::vector<std::pair<std::string, FrontierPlot>> out;
  FrontierPlot three;
  three.title = "tiny-bert / synthetic / cpu";
  three.cost_label = "energy per example (J)";
  three.points = {point(0.012, 0.91, true, "epoch 1"), point(0.013, 0.95, true, "epoch 2"),
                  point(0.014, 0.94, false, "epoch 3")};
  out.emplace_back("three_points", three);

  FrontierPlot span;
  span.title = "bert-base-uncased / sst2 / NVIDIA H200";
  span.cost_label = "energy per example (J)";
  const std::vector<std::pair<int, double>> lengths = {{128, 0.930}, {96, 0.930}, {64, 0.930}, {48, 0.930},
                                                       {40, 0.929},  {32, 0.912}, {24, 0.887}, {8, 0.62}};
  for (const auto& [len, acc] : lengths) {
    const double cost = 0.2315 * std::pow(len / 128.0, 1.66);
    PlotPoint p = point(cost, acc, len <= 48, "len " + std::to_string(len));
    p.cost_low = cost * 0.96;
    p.cost_high = cost * 1.05;
    span.points.push_back(p);
  }
  span.points[1].on_frontier = span.points[2].on_frontier = false;
  out.emplace_back("log_span", span);

  FrontierPlot ties;
  ties.title = "tiny-bert / synthetic / cpu";
  ties.cost_label = "latency per example (ms; no energy reading)";
  ties.points = {point(1.0, 0.90, true, "4 layers"),
                 point(1.0, 0.90, true, "4 layers again"),
                 point(0.5, 0.80, true, "2 layers"),
                 point(0.5, 0.80, true, "2 layers again"),
                 point(0.5, 0.80, true, "2 layers once more"),
                 point(0.25, 0.55, true, "1 layer"),
                 point(1.2, 0.90, false, "len 32")};
  out.emplace_back("ties", ties);

  FrontierPlot single;
  single.title = "tiny-bert / synthetic / cpu";
  single.cost_label = "energy per example (J)";
  single.points = {point(0.031, 0.87, true, "baseline")};
  out.emplace_back("single", single);

  FrontierPlot latency;
  latency.title = "tiny-bert / synthetic / cpu";
  latency.cost_label = "energy per example (J)";
  latency.y_label = "latency per example (ms)";
  latency.points = {point(0.010, 0.40, true, "len 8"), point(0.018, 0.35, true, "len 16"),
                    point(0.030, 0.62, false, "len 32"), point(0.031, 0.30, true, "len 24")};
  out.emplace_back("energy_latency", latency);
  return out;
}

TEST(PlotPng, WritesSamplePlots) {
  TempDir dir("plot");
  const char* keep = std::getenv("NLPF_PLOT_SAMPLES_DIR");
  for (const auto& [name, plot] : sample_plots()) {
    const std::filesystem::path path = dir / (name + ".png");
    const std::optional<std::string> skipped = plot_frontier_png(path, plot);
    if (!plots_available()) {
      ASSERT_TRUE(skipped.has_value());
      EXPECT_EQ(*skipped, "plots skipped (built without PLplot)");
      EXPECT_FALSE(std::filesystem::exists(path));
      continue;
    }
    ASSERT_FALSE(skipped.has_value()) << name << ": " << *skipped;
    const std::string png = read_file(path);
    ASSERT_GT(png.size(), 1000u) << name;
    EXPECT_EQ(png.substr(1, 3), "PNG") << name;
    if (keep != nullptr) plot_frontier_png(std::filesystem::path(keep) / (name + ".png"), plot);
  }
  // Nothing but the PNGs: the temporary files were renamed.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().extension(), ".png") << entry.path();
    ++files;
  }
  EXPECT_EQ(files, plots_available() ? sample_plots().size() : 0u);
}

TEST(PlotPng, NoPointsIsSkippedNotAnError) {
  TempDir dir("plot_empty");
  FrontierPlot plot;
  const std::optional<std::string> skipped = plot_frontier_png(dir / "empty.png", plot);
  ASSERT_TRUE(skipped.has_value());
  EXPECT_FALSE(std::filesystem::exists(dir / "empty.png"));
}

TEST(PlotPng, UnwritablePathIsAnIoErrorNamingIt) {
  if (!plots_available()) GTEST_SKIP() << "built without PLplot";
  TempDir dir("plot_bad");
  const std::filesystem::path path = dir / "no_such_dir" / "frontier.png";
  expect_error([&] { plot_frontier_png(path, sample_plots()[0].second); }, ErrorCode::IO, {path.string()});
}

TEST(PlotPng, RejectsNonFiniteAndHalfIntervals) {
  if (!plots_available()) GTEST_SKIP() << "built without PLplot";
  TempDir dir("plot_invalid");
  FrontierPlot plot;
  plot.points = {point(std::nan(""), 0.9, true, "len 16")};
  expect_error([&] { plot_frontier_png(dir / "a.png", plot); }, ErrorCode::INVALID_ARGUMENT,
               {"a.png", "len 16"});
  plot.points = {point(0.1, 0.9, true, "len 32")};
  plot.points[0].cost_low = 0.05;
  expect_error([&] { plot_frontier_png(dir / "b.png", plot); }, ErrorCode::INVALID_ARGUMENT,
               {"b.png", "len 32", "interval"});
  EXPECT_FALSE(std::filesystem::exists(dir / "a.png"));
}

ParetoRow sweep_row(const std::string& name, const nlohmann::json& value, double latency_ms, double p99_ms) {
  return ParetoRow{name + "_" + csv_cell(value),
                   {{name, value}},
                   {{"accuracy", 0.9},
                    {"average_latency_per_example_ms", latency_ms},
                    {"latency_p99_ms", p99_ms},
                    {"energy_per_example_j", nullptr}}};
}

TEST(RunPlots, VaryingBatchSizesPutP99BatchLatencyOnTheLatencyPlot) {
  const std::vector<ParetoRow> batch_sizes = {sweep_row("batch_size", 1, 2.0, 2.5),
                                              sweep_row("batch_size", 64, 0.5, 40.0)};
  EXPECT_EQ(latency_axis(batch_sizes), "latency_p99_ms");
  EXPECT_EQ(latency_axis({sweep_row("eval_batch_size", 4, 1, 4), sweep_row("eval_batch_size", 20, 1, 9)}),
            "latency_p99_ms");  // grids written before the batch-size sweep
  EXPECT_EQ(latency_axis({sweep_row("batch_size", 64, 1, 4), sweep_row("batch_size", 64, 1, 4)}),
            "average_latency_per_example_ms");
  const std::vector<ParetoRow> paddings = {sweep_row("padding", "longest", 1.0, 9.0),
                                           sweep_row("padding", "bucketed", 0.8, 8.0)};
  EXPECT_EQ(latency_axis(paddings), "average_latency_per_example_ms");
  EXPECT_EQ(plot_label(batch_sizes[1]), "bs 64");
  EXPECT_EQ(plot_label(paddings[1]), "bucketed");

  // Without an energy reading the p99 plot still has a cost (latency per example); the other is skipped.
  TempDir dir("run_plots");
  const RunPlotTitle title{"m", "sst2", "cpu"};
  const std::optional<std::string> batch_plot = draw_energy_latency_plot(dir / "b.png", batch_sizes, title);
  if (plots_available()) {
    EXPECT_FALSE(batch_plot.has_value()) << *batch_plot;
    EXPECT_TRUE(std::filesystem::exists(dir / "b.png"));
  } else {
    EXPECT_EQ(batch_plot, std::optional<std::string>("plots skipped (built without PLplot)"));
  }
  const std::optional<std::string> padding_plot = draw_energy_latency_plot(dir / "p.png", paddings, title);
  ASSERT_TRUE(padding_plot.has_value());
  EXPECT_NE(padding_plot->find("no point has an energy reading"), std::string::npos) << *padding_plot;
}

}  // namespace
}  // namespace nlpf
