// O(n^2) dominance test: runs hold a handful of points (epochs, sweep settings), so clarity wins.
#include "experiment/pareto.h"

namespace nlpf {

std::vector<bool> pareto_frontier(const std::vector<ParetoPoint>& points) {
  std::vector<bool> on(points.size(), false);
  for (size_t i = 0; i < points.size(); ++i) {
    if (!points[i].cost) continue;
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) {
      if (j == i || !points[j].cost) continue;
      const double ci = *points[i].cost, cj = *points[j].cost;
      const double ai = points[i].accuracy, aj = points[j].accuracy;
      dominated = cj <= ci && aj >= ai && (cj < ci || aj > ai);
    }
    on[i] = !dominated;
  }
  return on;
}

}  // namespace nlpf
