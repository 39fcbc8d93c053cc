// One register_* function per subcommand: each adds its subcommand (and the study's aliases) to the app
// and, when that subcommand is parsed, stores the work to run in `action`.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace nlpf::cli {

using Action = std::function<int()>;

void register_phase1(CLI::App& app, Action& action);
void register_phase2(CLI::App& app, Action& action);
void register_status(CLI::App& app, Action& action);  // in phase2_command.cc
void register_frontier(CLI::App& app, Action& action);
void register_plot(CLI::App& app, Action& action);
void register_fetch(CLI::App& app, Action& action);
void register_demo(CLI::App& app, Action& action);
void register_inspect(CLI::App& app, Action& action);

// Builds the whole command line. Separate from main() so that tests can parse argument lists.
void build_app(CLI::App& app, Action& action);

// Parses argv and runs the chosen subcommand; returns the process exit code. Errors become one line on
// stderr: 2 for command-line mistakes, error_exit_code() for library errors.
int run_main(int argc, char** argv);

}  // namespace nlpf::cli
