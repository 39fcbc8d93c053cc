// nlpf inspect: placeholder until the checkpoint and tokenizer land.
#include "cli/commands.h"
#include "core/error.h"

namespace nlpf::cli {

void register_inspect(CLI::App& app, Action& action) {
  CLI::App* sub = app.add_subcommand("inspect", "Load a model and dataset; report config and token statistics");
  sub->callback([&action] {
    action = []() -> int { NLPF_THROW(ErrorCode::UNSUPPORTED, "inspect: not built yet; nothing was run"); };
  });
}

}  // namespace nlpf::cli
