// nlpf frontier RUN_DIR... (merge finished runs into one frontier) and nlpf plot RUN_DIR (redraw a run's
// plots from its pareto.csv).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "experiment/frontier.h"

namespace nlpf::cli {

void register_frontier(CLI::App& app, Action& action) {
  auto settings = std::make_shared<FrontierSettings>();
  CLI::App* sub =
      app.add_subcommand("frontier", "Merge finished runs (same task and device) into one frontier");
  sub->add_option("run_dirs", settings->run_directories, "Run directories (phase1, phase2 or frontier)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option(flag_names("runs-dir"), settings->runs_dir, "Where the merged run directory is created")
      ->capture_default_str();
  sub->add_flag("--quiet,-q", settings->quiet, "Print only the run directory (and plots that were skipped)");
  sub->callback([&action, settings] {
    action = [settings]() -> int {
      merge_frontier(*settings);
      return 0;
    };
  });
}

void register_plot(CLI::App& app, Action& action) {
  auto run_dir = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("plot", "(Re)draw a run's plots from its pareto.csv");
  sub->add_option("run_dir", *run_dir, "Run directory")->required()->check(CLI::ExistingDirectory);
  sub->add_flag("--quiet,-q", *quiet, "Print only the plots that were skipped");
  sub->callback([&action, run_dir, quiet] {
    action = [run_dir, quiet]() -> int {
      for (const std::string& line : redraw_plots(*run_dir)) {
        if (!*quiet || line.rfind("written ", 0) != 0) std::printf("%s\n", line.c_str());
      }
      return 0;
    };
  });
}

}  // namespace nlpf::cli
