// Models and datasets in the download cache: ensure_model / ensure_dataset give a local directory for a
// hub name or dataset name, downloading what is missing (Phase 1 calls them before it starts), and return
// a local directory argument unchanged. Cache layout: $NLPF_HOME/models/<owner--name>/ (complete when its
// .nlpf-complete.json marker exists) and $NLPF_HOME/datasets/sst2/ (complete when it exists: it is built
// under a temporary name and renamed). Offline (NLPF_OFFLINE=1, HF_HUB_OFFLINE=1) nothing touches the
// network, and what is missing is listed together with how to provide it (--model DIR, --data-dir DIR).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "fetch/settings.h"

namespace nlpf {

inline constexpr const char* kModelCompleteMarker = ".nlpf-complete.json";

// A local directory: returned as given. A hub name (bert-base-uncased, owner/name): its cache directory,
// fetched first unless complete. Throws Error(INVALID_ARGUMENT) for a name that is neither, Error(IO)
// for network and file problems and offline misses, Error(UNSUPPORTED) for a model without safetensors.
std::filesystem::path ensure_model(const std::string& name_or_dir, const FetchSettings& settings);
std::filesystem::path ensure_model(const std::string& name_or_dir);  // settings from the environment

// A local directory: returned as given. "sst2": the cache's GLUE SST-2 folder (train.tsv, dev.tsv,
// test.tsv), fetched and checked first unless present. Other names: Error(INVALID_ARGUMENT).
std::filesystem::path ensure_dataset(const std::string& name_or_dir, const FetchSettings& settings);
std::filesystem::path ensure_dataset(const std::string& name_or_dir);

struct FetchedFile {
  std::string name;
  bool downloaded = false;  // false: it was in the cache already
  int64_t bytes = 0;
  std::string sha256;  // verified digest; empty when the hub gave none (small non-LFS files)
};

struct ModelFetchReport {
  std::filesystem::path directory;
  std::vector<FetchedFile> files;
};

// `nlpf fetch model NAME`: always a hub name (a local folder of that name does not count).
ModelFetchReport fetch_model(const std::string& name, const FetchSettings& settings);
// `nlpf fetch dataset NAME`: the dataset's cache directory.
std::filesystem::path fetch_dataset(const std::string& name, const FetchSettings& settings);

// Throws Error(INVALID_ARGUMENT) unless `name` is NAME or OWNER/NAME of letters, digits, '-', '_', '.'
// (no "--" or "..", as the hub requires), so it maps to one cache folder and one URL path.
void validate_model_name(std::string_view name);
std::filesystem::path model_cache_dir(const FetchSettings& settings, std::string_view name);
// {endpoint}/{repo}/resolve/{revision}/{file}
std::string hub_file_url(const FetchSettings& settings, std::string_view repo, std::string_view file);

}  // namespace nlpf
