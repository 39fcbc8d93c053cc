// Fetch settings from the environment and .env; the .env reader follows python-dotenv's rules.
#include "fetch/settings.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <system_error>

#include "core/error.h"
#include "core/file_util.h"

namespace nlpf {
namespace {

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

// The value after '=' (already left-trimmed): quoted or bare, with a trailing comment removed.
std::string parse_value(std::string_view raw) {
  if (!raw.empty() && (raw.front() == '\'' || raw.front() == '"')) {
    const char quote = raw.front();
    std::string value;
    for (size_t i = 1; i < raw.size(); ++i) {
      const char c = raw[i];
      if (c == quote) return value;
      if (quote == '"' && c == '\\' && i + 1 < raw.size()) {
        const char next = raw[++i];
        switch (next) {
          case 'n':
            value += '\n';
            break;
          case 't':
            value += '\t';
            break;
          case 'r':
            value += '\r';
            break;
          default:
            value += next;  // \" \\ \' and anything else: the character itself
        }
        continue;
      }
      value += c;
    }
    // An unterminated quote: python-dotenv rejects the line; so do we (the caller skips empty keys).
    return std::string();
  }
  // Bare value: a '#' starts a comment only after whitespace, so tokens like "abc#def" survive.
  size_t end = raw.size();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '#' && i > 0 && (raw[i - 1] == ' ' || raw[i - 1] == '\t')) {
      end = i;
      break;
    }
  }
  return std::string(trim(raw.substr(0, end)));
}

bool unterminated_quote(std::string_view raw) {
  if (raw.empty() || (raw.front() != '\'' && raw.front() != '"')) return false;
  for (size_t i = 1; i < raw.size(); ++i) {
    if (raw.front() == '"' && raw[i] == '\\') {
      ++i;
      continue;
    }
    if (raw[i] == raw.front()) return false;
  }
  return true;
}

}  // namespace

bool env_flag_is_true(std::string_view value) {
  std::string lower(trim(value));
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower == "1" || lower == "true" || lower == "yes" || lower == "on";
}

std::map<std::string, std::string> parse_dotenv(std::string_view contents) {
  std::map<std::string, std::string> values;
  size_t pos = 0;
  while (pos <= contents.size()) {
    const size_t newline = contents.find('\n', pos);
    std::string_view line =
        contents.substr(pos, newline == std::string_view::npos ? std::string_view::npos : newline - pos);
    pos = newline == std::string_view::npos ? contents.size() + 1 : newline + 1;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = trim(line.substr(0, eq));
    if (key.empty() || !std::all_of(key.begin(), key.end(), is_key_char)) continue;
    const std::string_view raw = trim(line.substr(eq + 1));
    if (unterminated_quote(raw)) continue;
    values[std::string(key)] = parse_value(raw);
  }
  return values;
}

std::filesystem::path nlpf_home() {
  const std::string home = env_or_empty("NLPF_HOME");
  if (!home.empty()) return home;
  const std::string xdg = env_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty()) return std::filesystem::path(xdg) / "nlpfrontiers";
  std::string user_home = env_or_empty("HOME");
  if (user_home.empty()) {
    const passwd* entry = ::getpwuid(::getuid());
    if (entry && entry->pw_dir) user_home = entry->pw_dir;
  }
  NLPF_CHECK(!user_home.empty(), ErrorCode::IO,
             "cannot locate the download cache: neither NLPF_HOME nor HOME is set (set NLPF_HOME=DIR)");
  return std::filesystem::path(user_home) / ".cache" / "nlpfrontiers";
}

FetchSettings fetch_settings_from_environment(const std::filesystem::path& working_dir) {
  FetchSettings settings;
  std::map<std::string, std::string> dotenv;
  const std::filesystem::path dotenv_path = working_dir / ".env";
  std::error_code ec;
  if (std::filesystem::is_regular_file(dotenv_path, ec)) dotenv = parse_dotenv(read_file(dotenv_path));

  std::string endpoint = env_or_empty("HF_ENDPOINT");
  if (!endpoint.empty()) {
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    NLPF_CHECK(endpoint.rfind("http://", 0) == 0 || endpoint.rfind("https://", 0) == 0,
               ErrorCode::INVALID_ARGUMENT, "HF_ENDPOINT=", endpoint,
               ": expected an http:// or https:// URL");
    settings.endpoint = endpoint;
  }
  // The real environment first, then .env: python-dotenv's load_dotenv() does not override.
  for (const char* name : {"HF_TOKEN", "HUGGINGFACE_HUB_TOKEN"}) {
    const std::string value = env_or_empty(name);
    if (!value.empty()) {
      settings.token = value;
      settings.token_source = name;
      break;
    }
  }
  if (settings.token.empty()) {
    for (const char* name : {"HF_TOKEN", "HUGGINGFACE_HUB_TOKEN"}) {
      auto it = dotenv.find(name);
      if (it != dotenv.end() && !it->second.empty()) {
        settings.token = it->second;
        settings.token_source = dotenv_path.string() + " (" + name + ")";
        break;
      }
    }
  }
  for (const char* name : {"NLPF_OFFLINE", "HF_HUB_OFFLINE"}) {
    const std::string value = env_or_empty(name);
    if (env_flag_is_true(value)) {
      settings.offline = true;
      settings.offline_reason = std::string(name) + "=" + value;
      break;
    }
  }
  settings.home = nlpf_home();
  const std::string sst2_url = env_or_empty("NLPF_SST2_URL");
  if (!sst2_url.empty()) settings.sst2_url = sst2_url;
  const std::string backoff = env_or_empty("NLPF_FETCH_BACKOFF_MS");
  if (!backoff.empty()) {
    char* end = nullptr;
    const long long ms = std::strtoll(backoff.c_str(), &end, 10);
    NLPF_CHECK(end && *end == '\0' && ms >= 0, ErrorCode::INVALID_ARGUMENT, "NLPF_FETCH_BACKOFF_MS=", backoff,
               ": expected a non-negative integer (milliseconds)");
    settings.backoff_ms = ms;
  }
  return settings;
}

FetchSettings fetch_settings_from_environment() {
  std::error_code ec;
  std::filesystem::path cwd = std::filesystem::current_path(ec);
  return fetch_settings_from_environment(ec ? std::filesystem::path(".") : cwd);
}

}  // namespace nlpf
