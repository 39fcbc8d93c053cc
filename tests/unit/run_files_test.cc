// pareto.csv written by make_pareto_table and read back by read_pareto_csv: columns in DESIGN §3 order,
// null -> empty cell (never 0), the frontier cost falling back to latency when any row lacks energy, the
// union of parameter columns, and one clear error naming FILE:LINE for each malformed input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "experiment/run_files.h"
#include "test_util.h"

namespace nlpf {
namespace {

using json = nlohmann::json;
using testing_util::TempDir;

json metrics(double accuracy, double latency, json energy) {
  return {{"accuracy", accuracy},           {"average_latency_per_example_ms", latency},
          {"energy_per_example_j", energy}, {"energy_per_correct_j", nullptr},
          {"peak_gpu_memory_mb", nullptr},  {"trials", 5}};
}

TEST(ParetoTable, EnergyEverywhereUsesEnergyAndWritesEmptyCellsForNull) {
  const std::vector<ParetoRow> rows = {{"a", {{"num_layers", 2}}, metrics(0.9, 1.0, 0.5)},
                                       {"b", {{"num_layers", 1}}, metrics(0.8, 0.5, 0.2)},
                                       {"c", {{"num_layers", 3}}, metrics(0.85, 2.0, 0.6)}};
  const ParetoTable table = make_pareto_table(rows);
  EXPECT_EQ(table.frontier_cost, "energy_per_example_j");
  ASSERT_EQ(table.on_frontier.size(), 3u);
  EXPECT_EQ(table.on_frontier[0], true);
  EXPECT_EQ(table.on_frontier[1], true);
  EXPECT_EQ(table.on_frontier[2], false);  // dominated by a: more energy, less accuracy
  EXPECT_EQ(
      table.csv.substr(0, table.csv.find('\n')),
      "label,num_layers,accuracy,average_latency_per_example_ms,energy_per_example_j,energy_per_correct_j,"
      "peak_gpu_memory_mb,on_frontier,frontier_cost,energy_per_example_j_ci_low,energy_per_example_j_ci_high,"
      "dynamic_energy_per_example_j,throughput_examples_per_s,latency_p50_ms,latency_p90_ms,latency_p99_ms,"
      "trials");
  EXPECT_NE(table.csv.find("\na,2,0.9,1,0.5,,,1,energy_per_example_j,,,,,,,,5\n"), std::string::npos)
      << table.csv;
}

TEST(ParetoTable, MissingEnergyAnywhereFallsBackToLatency) {
  const std::vector<ParetoRow> rows = {{"a", {}, metrics(0.9, 1.0, 0.5)},
                                       {"b", {}, metrics(0.9, 0.5, nullptr)}};
  const ParetoTable table = make_pareto_table(rows);
  EXPECT_EQ(table.frontier_cost, "average_latency_per_example_ms");
  EXPECT_EQ(table.on_frontier[0], false);
  EXPECT_EQ(table.on_frontier[1], true);
}

TEST(ParetoTable, RoundTripsThroughTheReaderWithUnionOfParameters) {
  const TempDir temp("pareto_roundtrip");
  const std::vector<ParetoRow> rows = {{"x", {{"max_sequence_length", 64}}, metrics(0.9, 1.0, 0.5)},
                                       {"y", {{"precision", "fp32"}}, metrics(0.8, 0.5, 0.25)}};
  const ParetoTable table = make_pareto_table(rows);
  write_file_atomic(temp / "pareto.csv", table.csv);
  const ParetoFile file = read_pareto_csv(temp / "pareto.csv");
  EXPECT_EQ(file.parameter_columns, (std::vector<std::string>{"max_sequence_length", "precision"}));
  EXPECT_EQ(file.frontier_cost, "energy_per_example_j");
  ASSERT_EQ(file.rows.size(), 2u);
  EXPECT_EQ(file.rows[0].parameters[0].second, 64);
  EXPECT_TRUE(file.rows[0].parameters[1].second.is_null());
  EXPECT_EQ(file.rows[1].parameters[1].second, "fp32");
  EXPECT_DOUBLE_EQ(file.rows[1].metrics["energy_per_example_j"].get<double>(), 0.25);
  EXPECT_TRUE(file.rows[1].metrics["peak_gpu_memory_mb"].is_null());
  EXPECT_EQ(file.rows[0].metrics["trials"], 5);
  EXPECT_EQ(file.on_frontier, table.on_frontier);
}

void expect_bad(const std::string& csv, const std::string& fragment) {
  const TempDir temp("pareto_bad");
  write_file_atomic(temp / "pareto.csv", csv);
  try {
    read_pareto_csv(temp / "pareto.csv");
    ADD_FAILURE() << "no error for: " << csv;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("pareto.csv:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ParetoCsv, MalformedFilesNameTheFileAndLine) {
  const std::string header =
      "label,accuracy,average_latency_per_example_ms,energy_per_example_j,energy_per_correct_j,"
      "peak_gpu_memory_mb,on_frontier,frontier_cost\n";
  expect_bad("", "empty");
  expect_bad("name,accuracy\n", "first column");
  expect_bad("label,accuracy\n", "no column 'average_latency_per_example_ms'");
  expect_bad(header + "a,0.9,1,,,,1\n", ":2: expected 8 fields");
  expect_bad(header + "a,high,1,,,,1,average_latency_per_example_ms\n", "'high', not a number");
  expect_bad(header + "a,0.9,1,,,,yes,average_latency_per_example_ms\n", "on_frontier is 'yes'");
  expect_bad(header + "a,0.9,1,,,,1,watts\n", "frontier_cost is 'watts'");
  expect_bad(header + "a,0.9,1,,,,1,\"unterminated\n", "unterminated");
}

TEST(ParetoCsv, MissingFileIsAnIoError) {
  try {
    read_pareto_csv("/nonexistent/pareto.csv");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::IO);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/pareto.csv"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
