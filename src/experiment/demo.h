// `nlpf demo`: the whole pipeline offline on the built-in synthetic task (experiment/synthetic_task.h): a
// tiny BERT trained from random initialisation (Phase 1), the three Phase 2 sweeps from its best model,
// and one frontier merged from all of them, every file as a real run writes it, with a shortened
// measurement protocol. Everything lives in runs/<timestamp>_demo/, staged until complete.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <iosfwd>
#include <string>

namespace nlpf {

struct DemoSettings {
  std::string runs_dir = "runs";
  uint64_t seed = 42;
  bool quiet = false;
  std::ostream* out = nullptr;  // nullptr: std::cout
  std::ostream* log = nullptr;  // nullptr: std::cerr
};

// Returns the demo's directory: task/ (data and model config), the phase 1 run, three phase 2 runs and a
// frontier run. Errors as phase1/phase2; INTERRUPTED on Ctrl-C leaves nothing.
std::filesystem::path run_demo(const DemoSettings& settings);

std::string demo_run_name(std::time_t time);

}  // namespace nlpf
