// Entry point of the nlpf binary; all logic lives in src/cli/app.cc and the subcommand files.
#include "cli/commands.h"

int main(int argc, char** argv) {
  return nlpf::cli::run_main(argc, argv);
}
