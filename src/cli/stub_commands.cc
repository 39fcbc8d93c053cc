// Subcommands whose engines are not built yet: frontier, plot, fetch, demo. Each parses and validates its
// options, then says plainly that nothing was run and exits non-zero (none pretends to work).
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"

namespace nlpf::cli {
namespace {

[[noreturn]] void not_built(const std::string& what, const std::string& needs) {
  NLPF_THROW(ErrorCode::UNSUPPORTED, what, ": ", needs, " is not built yet; nothing was run");
}

}  // namespace

void register_frontier(CLI::App& app, Action& action) {
  auto run_dirs = std::make_shared<std::vector<std::string>>();
  CLI::App* sub = app.add_subcommand("frontier", "Merge finished runs (same task and device) into one frontier");
  sub->add_option("run_dirs", *run_dirs, "Run directories")->required()->check(CLI::ExistingDirectory);
  sub->callback([&action] { action = []() -> int { not_built("frontier", "Pareto merging (Phase 2 issue)"); }; });
}

void register_plot(CLI::App& app, Action& action) {
  auto run_dir = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("plot", "(Re)draw a run's plots from its pareto.csv");
  sub->add_option("run_dir", *run_dir, "Run directory")->required()->check(CLI::ExistingDirectory);
  sub->callback([&action] { action = []() -> int { not_built("plot", "plotting (Phase 2 issue)"); }; });
}

void register_fetch(CLI::App& app, Action& action) {
  CLI::App* fetch = app.add_subcommand("fetch", "Download a model or dataset into the cache ($NLPF_HOME)");
  fetch->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  CLI::App* model = fetch->add_subcommand("model", "Fetch a Hugging Face model (e.g. bert-base-uncased)");
  model->add_option("name", *name, "Hub model name")->required();
  CLI::App* dataset = fetch->add_subcommand("dataset", "Fetch a dataset (sst2)");
  dataset->add_option("name", *name, "Dataset name")->required()->check(CLI::IsMember({"sst2"}));
  auto on_parse = [&action] { action = []() -> int { not_built("fetch", "downloading (Downloads issue)"); }; };
  model->callback(on_parse);
  dataset->callback(on_parse);
}

void register_demo(CLI::App& app, Action& action) {
  CLI::App* sub = app.add_subcommand("demo", "Whole pipeline on a built-in synthetic task, offline, on the CPU");
  sub->callback([&action] {
    action = []() -> int { not_built("demo", "the synthetic task with training and sweeps (Phase 2 issue)"); };
  });
}

}  // namespace nlpf::cli
