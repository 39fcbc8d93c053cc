// pareto_frontier on hand-made sets: domination, ties on one axis, duplicates, points without a cost.
#include <gtest/gtest.h>

#include "experiment/pareto.h"

namespace nlpf {
namespace {

TEST(Pareto, DominatedPointsAreOff) {
  // (cost, accuracy): b is cheaper and better than c; a is cheapest; d most accurate.
  const std::vector<ParetoPoint> points = {{1.0, 0.80}, {2.0, 0.90}, {3.0, 0.85}, {4.0, 0.95}};
  EXPECT_EQ(pareto_frontier(points), (std::vector<bool>{true, true, false, true}));
}

TEST(Pareto, TieOnOneAxisIsDominatedByTheStrictlyBetter) {
  // Same cost, lower accuracy: dominated. Same accuracy, higher cost: dominated.
  const std::vector<ParetoPoint> points = {{1.0, 0.90}, {1.0, 0.80}, {2.0, 0.90}};
  EXPECT_EQ(pareto_frontier(points), (std::vector<bool>{true, false, false}));
}

TEST(Pareto, IdenticalPointsAreBothOn) {
  const std::vector<ParetoPoint> points = {{1.0, 0.9}, {1.0, 0.9}, {0.5, 0.7}, {2.0, 0.8}};
  EXPECT_EQ(pareto_frontier(points), (std::vector<bool>{true, true, true, false}));
}

TEST(Pareto, DuplicatesOfADominatedPointStayOff) {
  const std::vector<ParetoPoint> points = {{2.0, 0.8}, {2.0, 0.8}, {1.0, 0.9}};
  EXPECT_EQ(pareto_frontier(points), (std::vector<bool>{false, false, true}));
}

TEST(Pareto, PointsWithoutCostAreNeitherOnNorDominating) {
  const std::vector<ParetoPoint> points = {{std::nullopt, 0.99}, {1.0, 0.5}, {2.0, 0.4}};
  EXPECT_EQ(pareto_frontier(points), (std::vector<bool>{false, true, false}));
}

TEST(Pareto, SingleAndEmpty) {
  EXPECT_EQ(pareto_frontier({{3.0, 0.1}}), (std::vector<bool>{true}));
  EXPECT_TRUE(pareto_frontier({}).empty());
}

}  // namespace
}  // namespace nlpf
