// Models from the Hugging Face hub into $NLPF_HOME/models/<owner--name>/: config.json, vocab.txt,
// tokenizer_config.json (when the repo has one) and model.safetensors or the sharded index and its shards.
// A model-wide lock lets one process fill a directory while others wait and then find it complete.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <set>
#include <system_error>

#include "core/error.h"
#include "core/file_util.h"
#include "fetch/download.h"
#include "fetch/fetch.h"
#include "fetch/file_lock.h"
#include "fetch/sst2.h"

namespace nlpf {
namespace fs = std::filesystem;
namespace {

constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kWeightsIndexFile = "model.safetensors.index.json";

std::string cache_folder_name(std::string_view name) {
  std::string folder;
  for (char c : name) folder += c == '/' ? std::string("--") : std::string(1, c);
  return folder;
}

fs::path model_lock_dir(const FetchSettings& settings, std::string_view name) {
  return settings.home / ".locks" / "models" / cache_folder_name(name);
}

// Something meant as a folder, not a hub name: an absolute or ./ ../ ~ path, or more than one '/'.
bool looks_like_path(std::string_view s) {
  if (s.empty()) return false;
  if (s.front() == '/' || s.front() == '~' || s.substr(0, 2) == "./" || s.substr(0, 3) == "../") return true;
  return std::count(s.begin(), s.end(), '/') > 1 || s.back() == '/';
}

// A shard name from an index file must be a plain file name, or the index could write outside the model.
bool safe_shard_name(std::string_view name) {
  if (name.empty() || name.front() == '.' || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
}

std::vector<std::string> shards_of_index(const fs::path& index_path) {
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_file(index_path));
  } catch (const nlohmann::json::exception& e) {
    NLPF_THROW(ErrorCode::IO, index_path.string(), ": not valid JSON: ", e.what());
  }
  NLPF_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
             ErrorCode::IO, index_path.string(), ": has no \"weight_map\" object");
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    NLPF_CHECK(shard.is_string(), ErrorCode::IO, index_path.string(), ": weight_map[\"", tensor,
               "\"] is not a file name");
    const std::string file = shard.get<std::string>();
    NLPF_CHECK(safe_shard_name(file), ErrorCode::IO, index_path.string(), ": weight_map[\"", tensor,
               "\"] = \"", file, "\" is not a plain file name");
    shards.insert(file);
  }
  NLPF_CHECK(!shards.empty(), ErrorCode::IO, index_path.string(), ": weight_map lists no shard");
  return {shards.begin(), shards.end()};
}

// What a model directory lacks before it can be loaded (tokenizer_config.json is optional).
std::vector<std::string> missing_model_files(const fs::path& dir) {
  std::vector<std::string> missing;
  std::error_code ec;
  for (const char* file : {"config.json", "vocab.txt"}) {
    if (!fs::exists(dir / file, ec)) missing.push_back(file);
  }
  if (fs::exists(dir / kWeightsFile, ec)) return missing;
  if (!fs::exists(dir / kWeightsIndexFile, ec)) {
    missing.push_back(std::string(kWeightsFile) + " (or " + kWeightsIndexFile + " and its shards)");
    return missing;
  }
  try {
    for (const std::string& shard : shards_of_index(dir / kWeightsIndexFile)) {
      if (!fs::exists(dir / shard, ec)) missing.push_back(shard);
    }
  } catch (const Error&) {
    missing.push_back(std::string(kWeightsIndexFile) + " (unreadable)");
  }
  return missing;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string model_advice(const std::string& name) {
  return "run `nlpf fetch model " + name +
         "` where the network is reachable, or pass --model DIR with a local Hugging Face model directory";
}

FetchedFile fetch_one(const FetchSettings& settings, const std::string& name, const fs::path& dir,
                      const std::string& file, bool missing_ok, bool& found) {
  DownloadOptions options;
  options.label = file;
  options.missing_ok = missing_ok;
  const DownloadResult result =
      download_file(hub_file_url(settings, name, file), dir / file,
                    model_lock_dir(settings, name) / (file + ".lock"), settings, options);
  found = result.status != DownloadStatus::NOT_FOUND;
  return {file, result.status == DownloadStatus::INSTALLED, result.bytes, result.sha256};
}

ModelFetchReport fetch_model_files(const std::string& name, const FetchSettings& settings) {
  ModelFetchReport report;
  report.directory = model_cache_dir(settings, name);
  const fs::path marker = report.directory / kModelCompleteMarker;
  FileLock lock(model_lock_dir(settings, name).string() + ".lock", "model " + name);
  std::error_code ec;
  if (fs::exists(marker, ec)) return report;

  bool found = false;
  for (const char* file : {"config.json", "vocab.txt"}) {
    report.files.push_back(fetch_one(settings, name, report.directory, file, false, found));
  }
  FetchedFile tokenizer_config =
      fetch_one(settings, name, report.directory, "tokenizer_config.json", true, found);
  if (found) report.files.push_back(tokenizer_config);
  FetchedFile weights = fetch_one(settings, name, report.directory, kWeightsFile, true, found);
  if (found) {
    report.files.push_back(weights);
  } else {
    FetchedFile index = fetch_one(settings, name, report.directory, kWeightsIndexFile, true, found);
    NLPF_CHECK(found, ErrorCode::UNSUPPORTED, hub_file_url(settings, name, kWeightsFile),
               ": HTTP 404, and no ", kWeightsIndexFile,
               " either; nlpf reads safetensors weights only (not pytorch_model.bin)");
    report.files.push_back(index);
    for (const std::string& shard : shards_of_index(report.directory / kWeightsIndexFile)) {
      report.files.push_back(fetch_one(settings, name, report.directory, shard, false, found));
    }
  }

  nlohmann::json record = {{"repo", name},
                           {"endpoint", settings.endpoint},
                           {"revision", settings.revision},
                           {"fetched_at_unix_s", static_cast<int64_t>(std::time(nullptr))},
                           {"files", nlohmann::json::array()}};
  for (const FetchedFile& file : report.files) {
    record["files"].push_back({{"name", file.name}, {"bytes", file.bytes}, {"sha256", file.sha256}});
  }
  write_file_atomic(marker, record.dump(2) + "\n");
  return report;
}

}  // namespace

void validate_model_name(std::string_view name) {
  const auto bad = [&](const std::string& why) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, "model '", name, "': ", why,
               " (expected a local directory, or a hub name NAME or OWNER/NAME)");
  };
  if (name.empty()) bad("empty name");
  if (name.find("--") != std::string_view::npos || name.find("..") != std::string_view::npos) {
    bad("a hub name may not contain \"--\" or \"..\"");
  }
  const size_t slash = name.find('/');
  if (slash != std::string_view::npos && name.find('/', slash + 1) != std::string_view::npos) {
    bad("a hub name has at most one '/'");
  }
  std::vector<std::string_view> parts = {name.substr(0, slash)};
  if (slash != std::string_view::npos) parts.push_back(name.substr(slash + 1));
  for (std::string_view part : parts) {
    if (part.empty() || part.size() > 96) bad("each part of a hub name has 1 to 96 characters");
    if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.') {
      bad("a hub name part may not start or end with '-' or '.'");
    }
    for (char c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
        bad(std::string("character '") + c + "' is not allowed in a hub name, and no such directory exists");
      }
    }
  }
}

fs::path model_cache_dir(const FetchSettings& settings, std::string_view name) {
  return settings.home / "models" / cache_folder_name(name);
}

std::string hub_file_url(const FetchSettings& settings, std::string_view repo, std::string_view file) {
  return settings.endpoint + "/" + std::string(repo) + "/resolve/" + settings.revision + "/" +
         std::string(file);
}

ModelFetchReport fetch_model(const std::string& name, const FetchSettings& settings) {
  validate_model_name(name);
  const fs::path dir = model_cache_dir(settings, name);
  std::error_code ec;
  if (settings.offline) {
    const std::vector<std::string> missing = missing_model_files(dir);
    NLPF_CHECK(missing.empty(), ErrorCode::IO, "model '", name,
               "' is not in the cache and downloads are off (", settings.offline_reason, "): ", dir.string(),
               " lacks ", join(missing), "; ", model_advice(name));
    return {dir, {}};
  }
  try {
    return fetch_model_files(name, settings);
  } catch (const NetworkUnreachable& e) {
    NLPF_THROW(ErrorCode::IO, "model '", name, "' could not be downloaded (", e.what(), "); ", dir.string(),
               " lacks ", join(missing_model_files(dir)), "; ", model_advice(name));
  }
}

fs::path ensure_model(const std::string& name_or_dir, const FetchSettings& settings) {
  std::error_code ec;
  if (fs::is_directory(name_or_dir, ec)) return name_or_dir;
  NLPF_CHECK(!looks_like_path(name_or_dir), ErrorCode::IO, name_or_dir, ": no such model directory");
  validate_model_name(name_or_dir);
  const fs::path dir = model_cache_dir(settings, name_or_dir);
  if (fs::exists(dir / kModelCompleteMarker, ec)) return dir;
  return fetch_model(name_or_dir, settings).directory;
}

fs::path ensure_model(const std::string& name_or_dir) {
  std::error_code ec;
  if (fs::is_directory(name_or_dir, ec)) return name_or_dir;  // needs no settings (nor a HOME)
  return ensure_model(name_or_dir, fetch_settings_from_environment());
}

fs::path fetch_dataset(const std::string& name, const FetchSettings& settings) {
  NLPF_CHECK(name == "sst2", ErrorCode::INVALID_ARGUMENT, "dataset '", name,
             "': unknown (known: sst2); for other data pass --data-dir DIR or --train-file/--eval-file");
  return ensure_sst2(settings);
}

fs::path ensure_dataset(const std::string& name_or_dir, const FetchSettings& settings) {
  std::error_code ec;
  if (fs::is_directory(name_or_dir, ec)) return name_or_dir;
  return fetch_dataset(name_or_dir, settings);
}

fs::path ensure_dataset(const std::string& name_or_dir) {
  std::error_code ec;
  if (fs::is_directory(name_or_dir, ec)) return name_or_dir;
  return ensure_dataset(name_or_dir, fetch_settings_from_environment());
}

}  // namespace nlpf
