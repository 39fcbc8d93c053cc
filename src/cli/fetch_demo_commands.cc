// nlpf fetch (prints the cache directory it filled on stdout) and nlpf demo (the whole pipeline offline).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "experiment/demo.h"
#include "fetch/fetch.h"

namespace nlpf::cli {

namespace {

// The notes `nlpf fetch model` writes to stderr: one line per file, or that all was cached already.
void print_fetch_report(const std::string& name, const ModelFetchReport& report) {
  if (report.files.empty()) std::fprintf(stderr, "%s: complete in the cache already\n", name.c_str());
  for (const FetchedFile& file : report.files) {
    std::fprintf(stderr, "%s: %s (%lld bytes%s%s)\n", file.name.c_str(),
                 file.downloaded ? "downloaded" : "already in the cache", static_cast<long long>(file.bytes),
                 file.sha256.empty() ? "" : ", SHA-256 ", file.sha256.c_str());
  }
}

}  // namespace

void register_fetch(CLI::App& app, Action& action) {
  CLI::App* fetch = app.add_subcommand("fetch", "Download a model or dataset into the cache ($NLPF_HOME)");
  fetch->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  // --quiet is accepted before or after the subcommand (`nlpf fetch --quiet model X`, `nlpf fetch model X
  // -q`).
  fetch->add_flag("--quiet,-q", *quiet, "No progress output or notes; only the cache directory on stdout");
  CLI::App* model = fetch->add_subcommand("model", "Fetch a Hugging Face model (e.g. bert-base-uncased)");
  model->add_option("name", *name, "Hub model name")->required();
  CLI::App* dataset = fetch->add_subcommand("dataset", "Fetch a dataset (sst2)");
  dataset->add_option("name", *name, "Dataset name")->required()->check(CLI::IsMember({"sst2"}));
  for (CLI::App* sub : {model, dataset}) {
    sub->add_flag("--quiet,-q", *quiet, "No progress output or notes; only the cache directory on stdout");
  }
  const auto settings = [quiet] {
    FetchSettings settings = fetch_settings_from_environment();
    settings.show_progress = !*quiet;
    return settings;
  };
  // The path goes to stdout (scripts capture it); progress and notes go to stderr.
  model->callback([&action, name, quiet, settings] {
    action = [name, quiet, settings]() -> int {
      const ModelFetchReport report = fetch_model(*name, settings());
      if (!*quiet) print_fetch_report(*name, report);
      std::printf("%s\n", report.directory.c_str());
      return 0;
    };
  });
  dataset->callback([&action, name, settings] {
    action = [name, settings]() -> int {
      const std::filesystem::path dir = fetch_dataset(*name, settings());
      std::printf("%s\n", dir.c_str());
      return 0;
    };
  });
}

void register_demo(CLI::App& app, Action& action) {
  auto settings = std::make_shared<DemoSettings>();
  CLI::App* sub = app.add_subcommand(
      "demo", "Whole pipeline on a built-in synthetic task: phase 1, three sweeps, a frontier; offline, CPU");
  sub->add_option("--runs-dir", settings->runs_dir, "Where the demo directory is created")
      ->capture_default_str();
  sub->add_option("--seed", settings->seed, "Seed of the task and the training")->capture_default_str();
  sub->add_flag("--quiet,-q", settings->quiet, "No progress output");
  sub->callback([&action, settings] {
    action = [settings]() -> int {
      run_demo(*settings);
      return 0;
    };
  });
}

}  // namespace nlpf::cli
