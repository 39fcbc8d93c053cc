// The nlpf command line: subcommands, --version with the git commit, and the one-line error policy.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "nlpf/build_info.h"

namespace nlpf::cli {

void build_app(CLI::App& app, Action& action) {
  app.set_version_flag("--version", std::string("nlpf ") + kVersion + " (commit " + kGitCommit + ")");
  app.require_subcommand(1);
  app.fallthrough(false);
  register_phase1(app, action);
  register_phase2(app, action);
  register_status(app, action);
  register_frontier(app, action);
  register_plot(app, action);
  register_fetch(app, action);
  register_demo(app, action);
  register_inspect(app, action);
}

int run_main(int argc, char** argv) {
  CLI::App app{"nlpf: fine-tune BERT classifiers and measure their energy-accuracy frontiers", "nlpf"};
  Action action;
  try {
    build_app(app, action);
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    if (message.empty()) message = "invalid command line";
    std::fprintf(stderr, "nlpf: error: %s (see nlpf --help)\n", message.c_str());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "nlpf: %s: %s\n", error_code_name(e.code()), e.what());
    return error_exit_code(e.code());
  }
  if (!action) {
    std::fprintf(stderr, "nlpf: error: no subcommand given (see nlpf --help)\n");
    return 2;
  }
  try {
    return action();
  } catch (const Error& e) {
    std::fprintf(stderr, "nlpf: %s: %s\n", error_code_name(e.code()), e.what());
    return error_exit_code(e.code());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "nlpf: out of memory\n");
    return error_exit_code(ErrorCode::IO);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nlpf: internal error: %s\n", e.what());
    return error_exit_code(ErrorCode::INTERNAL);
  }
}

}  // namespace nlpf::cli
