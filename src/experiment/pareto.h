// Pareto frontiers of (cost, accuracy) points: lower cost and higher accuracy are better. A point is on
// the frontier when no other point is at least as good on both axes and strictly better on one; identical
// points do not dominate each other, so duplicates on the frontier are all on it.
#pragma once

#include <optional>
#include <vector>

namespace nlpf {

struct ParetoPoint {
  std::optional<double> cost;  // J/example, or ms/example where no energy reading exists
  double accuracy = 0.0;
};

// One flag per point. Points without a cost are never on the frontier and never dominate.
std::vector<bool> pareto_frontier(const std::vector<ParetoPoint>& points);

}  // namespace nlpf
