// Option registration shared by the subcommands (DESIGN §2). Options bind straight into the library's
// settings structs (no CLI-side copies); every long flag also accepts the study's underscore spelling.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "experiment/data_settings.h"
#include "measure/protocol.h"

namespace nlpf::cli {

// Adds "--name" together with the study's "--name_with_underscores" spelling.
std::string flag_names(const std::string& dashed);

// --max-train-examples, --max-eval-examples, --trials, --min-trial-seconds, --idle-seconds,
// --warmup-seconds, --cooldown-seconds, --quiet, bound straight into the library's settings.
void add_common_options(CLI::App& app, DataSettings& data, ProtocolOptions& protocol, bool& quiet);
// --padding max-length|longest|bucketed: how every measured evaluation pads its batches.
void add_padding_option(CLI::App& app, std::string& padding);
// --data-dir, --train-file, --eval-file, --task, --text-column, --label-column.
void add_data_options(CLI::App& app, DataSettings& data);
// Validator for --device: auto, cpu, cuda or cuda:N.
const CLI::Validator& device_validator();
// Validator for counts and rates that must be > 0, with a message naming the value.
const CLI::Validator& positive();

}  // namespace nlpf::cli
