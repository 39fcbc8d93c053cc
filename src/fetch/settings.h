// Where downloads come from and go to, read from the environment as the Hugging Face tools read it:
// HF_ENDPOINT, HF_TOKEN / HUGGINGFACE_HUB_TOKEN (also from a .env file in the working directory, which
// never overrides the real environment, as python-dotenv does), NLPF_OFFLINE / HF_HUB_OFFLINE, NLPF_HOME.
// NLPF_FETCH_BACKOFF_MS and NLPF_SST2_URL exist so tests can keep retries fast and stay on 127.0.0.1.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace nlpf {

inline constexpr const char* kDefaultHubEndpoint = "https://huggingface.co";
inline constexpr const char* kDefaultSst2Url = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip";

struct FetchSettings {
  std::string endpoint = kDefaultHubEndpoint;  // without a trailing '/'
  std::string revision = "main";
  std::string token;           // empty: requests carry no Authorization header
  std::string token_source;    // "HF_TOKEN", ".env (HF_TOKEN)", ...: named in 401 messages
  std::filesystem::path home;  // the cache root ($NLPF_HOME)
  bool offline = false;
  std::string offline_reason;  // "NLPF_OFFLINE=1": named in the offline error
  std::string sst2_url = kDefaultSst2Url;
  int max_attempts = 5;       // per file, counted afresh whenever an attempt made progress
  int64_t backoff_ms = 1000;  // first retry delay; doubles per attempt
  bool show_progress = true;  // drawn only when stderr is a terminal as well
};

// Reads the settings from the environment and from `working_dir`/.env (when it exists).
FetchSettings fetch_settings_from_environment(const std::filesystem::path& working_dir);
FetchSettings fetch_settings_from_environment();  // working directory: the current one

// $NLPF_HOME, else $XDG_CACHE_HOME/nlpfrontiers, else ~/.cache/nlpfrontiers.
std::filesystem::path nlpf_home();

// KEY=VALUE lines as python-dotenv reads them: optional "export ", whitespace around key and value,
// '#' comment lines and " #" comments after unquoted values, single quotes literal, double quotes with
// \n \t \" \\ escapes. Lines that are not assignments are skipped, as python-dotenv does (with a warning).
std::map<std::string, std::string> parse_dotenv(std::string_view contents);

// True for 1/true/yes/on in any case (HF's reading of its boolean variables).
bool env_flag_is_true(std::string_view value);

}  // namespace nlpf
