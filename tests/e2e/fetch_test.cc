// Downloads (src/fetch) against tests/tools/fake_hub.py on 127.0.0.1: hub layout, resume after a drop,
// retries, tokens (also from .env), SHA-256 refusal, 404, offline mode, concurrent fetches, and the SST-2
// zip checks; plus `nlpf fetch` end to end. Nothing leaves the machine: every endpoint is asserted to be
// 127.0.0.1. Without python3 the server tests skip with the reason.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <list>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "fetch/download.h"
#include "fetch/fetch.h"
#include "fetch/settings.h"
#include "fetch/sha256.h"
#include "fetch/sst2.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;

fs::path make_temp_dir() {
  std::string pattern = (fs::path(::testing::TempDir()) / "nlpf_fetch_XXXXXX").string();
  const char* made = ::mkdtemp(pattern.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  return made;
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

bool python3_available() {
  return std::system("python3 --version >/dev/null 2>&1") == 0;
}

// Runs fake_hub.py serving root() and stops it on destruction.
class FakeHub {
 public:
  explicit FakeHub(const fs::path& dir) : dir_(dir) {
    fs::create_directories(root());
    write_text(control_path(), "{}");
    ::setenv("no_proxy", "127.0.0.1", 1);  // a developer's proxy must not see (or swallow) these requests
    ::setenv("NO_PROXY", "127.0.0.1", 1);
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    const std::string script = std::string(NLPF_TEST_DATA) + "/../tools/fake_hub.py";
    const std::string root_arg = root().string(), control_arg = control_path().string(),
                      log_arg = log_path().string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execlp("python3", "python3", script.c_str(), "--root", root_arg.c_str(), "--control",
               control_arg.c_str(), "--log", log_arg.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    FILE* out = ::fdopen(fds[0], "r");
    std::array<char, 256> line{};
    while (std::fgets(line.data(), line.size(), out) != nullptr) {
      if (std::sscanf(line.data(), "PORT %d", &port_) == 1) break;
    }
    std::fclose(out);  // the server's later output (none) has nowhere to go, which is fine
    if (port_ <= 0) throw std::runtime_error("fake_hub.py did not print its port (" + script + ")");
  }
  ~FakeHub() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  fs::path root() const { return dir_ / "root"; }
  fs::path control_path() const { return dir_ / "control.json"; }
  fs::path log_path() const { return dir_ / "requests.log"; }
  void set_control(const nlohmann::json& control) const { write_text(control_path(), control.dump()); }

  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log_path());
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
  int count_requests(const std::string& path) const {
    int n = 0;
    for (const auto& r : requests()) n += r["path"] == path;
    return n;
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = -1;
};

class FetchServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!python3_available())
      GTEST_SKIP() << "python3 not found: the fake hub (tests/tools/fake_hub.py) needs it";
    dir_ = make_temp_dir();
    hub_ = std::make_unique<FakeHub>(dir_);
    settings_.endpoint = hub_->endpoint();
    ASSERT_EQ(settings_.endpoint.rfind("http://127.0.0.1:", 0), 0u) << "tests must stay on this machine";
    settings_.home = dir_ / "home";
    settings_.backoff_ms = 0;
    settings_.show_progress = false;
    settings_.sst2_url = hub_->endpoint() + "/glue/data/SST-2.zip";
    config_ = R"({"model_type": "bert", "hidden_size": 8})";
    vocab_ = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n";
    weights_ = random_bytes(200000, 7);
    write_text(hub_->root() / "tiny/config.json", config_);
    write_text(hub_->root() / "tiny/vocab.txt", vocab_);
    write_text(hub_->root() / "tiny/tokenizer_config.json", R"({"do_lower_case": true})");
    write_text(hub_->root() / "tiny/model.safetensors", weights_);
  }
  void TearDown() override {
    hub_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  fs::path model_dir() const { return settings_.home / "models" / "tiny"; }
  std::string url(const std::string& file) const { return hub_->endpoint() + "/tiny/resolve/main/" + file; }

  fs::path dir_;
  std::unique_ptr<FakeHub> hub_;
  FetchSettings settings_;
  std::string config_, vocab_, weights_;
};

template <typename F>
Error expect_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected an nlpf::Error";
  return Error(ErrorCode::INTERNAL, "no error thrown");
}

bool has_incomplete_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return false;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().string().find(".incomplete") != std::string::npos) return true;
  }
  return false;
}

// ---- pure functions ----

TEST(FetchSettings, DotenvFollowsPythonDotenv) {
  const auto values = parse_dotenv(
      "# a comment\n"
      "HF_TOKEN=\"hf_abc\"  # trailing comment\n"
      "export OTHER = 'single # not a comment'\n"
      "BARE=value with spaces   # comment\n"
      "HASH=abc#def\n"
      "ESC=\"a\\\"b\\nc\"\n"
      "EMPTY=\n"
      "not an assignment\n"
      "BROKEN=\"unterminated\n"
      "CRLF=yes\r\n");
  EXPECT_EQ(values.at("HF_TOKEN"), "hf_abc");
  EXPECT_EQ(values.at("OTHER"), "single # not a comment");
  EXPECT_EQ(values.at("BARE"), "value with spaces");
  EXPECT_EQ(values.at("HASH"), "abc#def");
  EXPECT_EQ(values.at("ESC"), "a\"b\nc");
  EXPECT_EQ(values.at("EMPTY"), "");
  EXPECT_EQ(values.at("CRLF"), "yes");
  EXPECT_EQ(values.count("BROKEN"), 0u);
  EXPECT_EQ(values.size(), 7u);
}

TEST(FetchSettings, EnvironmentTokenBeatsDotenvAndOfflineFlags) {
  const fs::path dir = make_temp_dir();
  write_text(dir / ".env", "HF_TOKEN='from_dotenv'\n");
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HUGGINGFACE_HUB_TOKEN");
  ::unsetenv("NLPF_OFFLINE");
  ::unsetenv("HF_HUB_OFFLINE");
  ::setenv("NLPF_HOME", (dir / "home").c_str(), 1);
  FetchSettings s = fetch_settings_from_environment(dir);
  EXPECT_EQ(s.token, "from_dotenv");
  EXPECT_NE(s.token_source.find(".env"), std::string::npos);
  EXPECT_FALSE(s.offline);
  EXPECT_EQ(s.home, dir / "home");

  ::setenv("HUGGINGFACE_HUB_TOKEN", "from_env", 1);
  ::setenv("HF_HUB_OFFLINE", "True", 1);
  s = fetch_settings_from_environment(dir);
  EXPECT_EQ(s.token, "from_env");
  EXPECT_TRUE(s.offline);
  EXPECT_EQ(s.offline_reason, "HF_HUB_OFFLINE=True");
  ::unsetenv("HUGGINGFACE_HUB_TOKEN");
  ::unsetenv("HF_HUB_OFFLINE");

  ::setenv("HF_ENDPOINT", "ftp://mirror", 1);
  Error e = expect_error([&] { fetch_settings_from_environment(dir); });
  EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.what()).find("HF_ENDPOINT"), std::string::npos) << e.what();
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
  EXPECT_EQ(fetch_settings_from_environment(dir).endpoint, "http://127.0.0.1:9");
  ::unsetenv("HF_ENDPOINT");

  ::setenv("NLPF_FETCH_BACKOFF_MS", "soon", 1);
  e = expect_error([&] { fetch_settings_from_environment(dir); });
  EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.what()).find("NLPF_FETCH_BACKOFF_MS"), std::string::npos) << e.what();
  ::unsetenv("NLPF_FETCH_BACKOFF_MS");
  ::unsetenv("NLPF_HOME");
  fs::remove_all(dir);
}

TEST(FetchSha256, DigestAndEtags) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string hex = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
  EXPECT_EQ(sha256_from_etag("\"" + hex + "\""), sha256_hex("abc"));
  EXPECT_EQ(sha256_from_etag("W/\"" + hex + "\""), sha256_hex("abc"));
  EXPECT_EQ(sha256_from_etag("\"0187f3b09d66cef7911083ad49f890f5a6589589\""), "");  // git blob SHA-1
  EXPECT_EQ(sha256_from_etag("\"8cc1446ebdfb3861dcbf8a6222824e0b-1\""), "");
  EXPECT_EQ(sha256_from_etag(std::string(63, 'a') + "g"), "");
}

TEST(FetchRetry, ExponentialBackoffAndRetryAfter) {
  EXPECT_EQ(retry_delay_ms(1, 100, ""), 100);
  EXPECT_EQ(retry_delay_ms(3, 100, ""), 400);
  EXPECT_EQ(retry_delay_ms(30, 1000, ""), 60000);  // capped
  EXPECT_EQ(retry_delay_ms(1, 1, "2"), 2000);      // the server asks for longer
  EXPECT_EQ(retry_delay_ms(2, 5000, "1"), 10000);  // our backoff is longer already
  EXPECT_EQ(retry_delay_ms(1, 1, "99999"), 300000);
  EXPECT_EQ(retry_delay_ms(1, 7, "Wed, 21 Oct 2015 07:28:00 GMT"), 7);  // a date in the past
  EXPECT_EQ(retry_delay_ms(1, 7, "garbage"), 7);
}

TEST(FetchNames, ValidAndInvalidModelNames) {
  for (const char* name : {"bert-base-uncased", "google/bert_uncased_L-2_H-128_A-2", "a.b"}) {
    EXPECT_NO_THROW(validate_model_name(name)) << name;
  }
  for (const char* name : {"", "a b", "x/y/z", "a--b", "a/../b", "-x", "x/", "na;me", "own/.hidden"}) {
    Error e = expect_error([&] { validate_model_name(name); });
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT) << name;
    EXPECT_NE(std::string(e.what()).find(std::string("'") + name + "'"), std::string::npos) << e.what();
  }
  FetchSettings s;
  s.home = "/cache";
  EXPECT_EQ(model_cache_dir(s, "google/bert"), fs::path("/cache/models/google--bert"));
  s.endpoint = "http://127.0.0.1:1";
  EXPECT_EQ(hub_file_url(s, "google/bert", "config.json"),
            "http://127.0.0.1:1/google/bert/resolve/main/config.json");
}

TEST(FetchNames, LocalDirectoriesAreReturnedUnchanged) {
  const fs::path dir = make_temp_dir();
  FetchSettings s;
  s.home = dir / "home";
  s.offline = true;
  s.offline_reason = "NLPF_OFFLINE=1";
  EXPECT_EQ(ensure_model(dir.string(), s), dir);
  EXPECT_EQ(ensure_dataset(dir.string(), s), dir);
  Error e = expect_error([&] { ensure_model((dir / "absent").string(), s); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  EXPECT_NE(std::string(e.what()).find("absent: no such model directory"), std::string::npos) << e.what();
  e = expect_error([&] { ensure_dataset("imdb", s); });
  EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.what()).find("'imdb'"), std::string::npos) << e.what();
  fs::remove_all(dir);
}

// ---- against the fake hub ----

TEST_F(FetchServerTest, FetchesModelInHubLayoutAndThenUsesTheCache) {
  const fs::path dir = ensure_model("tiny", settings_);
  EXPECT_EQ(dir, model_dir());
  EXPECT_EQ(read_file(dir / "config.json"), config_);
  EXPECT_EQ(read_file(dir / "vocab.txt"), vocab_);
  EXPECT_EQ(read_file(dir / "model.safetensors"), weights_);
  EXPECT_TRUE(fs::exists(dir / "tokenizer_config.json"));
  const auto marker = nlohmann::json::parse(read_file(dir / kModelCompleteMarker));
  bool verified = false;
  for (const auto& f : marker["files"]) {
    if (f["name"] == "model.safetensors") verified = f["sha256"] == sha256_hex(weights_);
  }
  EXPECT_TRUE(verified) << marker.dump();
  EXPECT_FALSE(has_incomplete_files(settings_.home));
  // The LFS file came through the 302 redirect to the "CDN".
  EXPECT_EQ(hub_->count_requests("/cdn/tiny/model.safetensors"), 1);

  const size_t before = hub_->requests().size();
  EXPECT_EQ(ensure_model("tiny", settings_), dir);
  EXPECT_EQ(hub_->requests().size(), before) << "a complete cached model must not be requested again";
}

TEST_F(FetchServerTest, ShardedCheckpointFetchesIndexAndShards) {
  fs::remove(hub_->root() / "tiny/model.safetensors");
  const std::string a = random_bytes(1000, 1), b = random_bytes(2000, 2);
  write_text(hub_->root() / "tiny/model-00001-of-00002.safetensors", a);
  write_text(hub_->root() / "tiny/model-00002-of-00002.safetensors", b);
  write_text(hub_->root() / "tiny/model.safetensors.index.json",
             R"({"metadata": {}, "weight_map": {"w1": "model-00001-of-00002.safetensors",)"
             R"( "w2": "model-00002-of-00002.safetensors", "w3": "model-00001-of-00002.safetensors"}})");
  const fs::path dir = ensure_model("tiny", settings_);
  EXPECT_EQ(read_file(dir / "model-00001-of-00002.safetensors"), a);
  EXPECT_EQ(read_file(dir / "model-00002-of-00002.safetensors"), b);
  EXPECT_TRUE(fs::exists(dir / kModelCompleteMarker));
}

TEST_F(FetchServerTest, ShardIndexNamingAPathIsRefused) {
  fs::remove(hub_->root() / "tiny/model.safetensors");
  write_text(hub_->root() / "tiny/model.safetensors.index.json", R"({"weight_map": {"w": "../../evil"}})");
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  EXPECT_NE(std::string(e.what()).find("../../evil"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(model_dir() / kModelCompleteMarker));
}

TEST_F(FetchServerTest, ModelWithoutSafetensorsIsUnsupported) {
  fs::remove(hub_->root() / "tiny/model.safetensors");
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::UNSUPPORTED);
  EXPECT_NE(std::string(e.what()).find(url("model.safetensors")), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(model_dir() / kModelCompleteMarker));
}

TEST_F(FetchServerTest, ResumesWithRangeAfterADroppedConnection) {
  hub_->set_control({{"faults", {{"/cdn/tiny/model.safetensors", {"drop"}}}}});
  ensure_model("tiny", settings_);
  EXPECT_EQ(read_file(model_dir() / "model.safetensors"), weights_);
  std::vector<std::string> ranges;
  for (const auto& r : hub_->requests()) {
    if (r["path"] == "/cdn/tiny/model.safetensors") ranges.push_back(r["range"]);
  }
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(weights_.size() / 2) + "-");
}

TEST_F(FetchServerTest, KeepsPartialFileAfterGivingUpAndResumesNextTime) {
  settings_.max_attempts = 1;
  hub_->set_control({{"faults", {{"/tiny/resolve/main/vocab.txt", {"drop"}}}}});
  const fs::path target = dir_ / "out" / "vocab.txt";
  Error e = expect_error([&] { download_file(url("vocab.txt"), target, dir_ / "v.lock", settings_, {}); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  EXPECT_NE(std::string(e.what()).find(url("vocab.txt")), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(fs::file_size(target.string() + ".incomplete"), vocab_.size() / 2);
  download_file(url("vocab.txt"), target, dir_ / "v.lock", settings_, {});
  EXPECT_EQ(read_file(target), vocab_);
  EXPECT_EQ(hub_->requests().back()["range"], "bytes=" + std::to_string(vocab_.size() / 2) + "-");
}

TEST_F(FetchServerTest, ServerIgnoringRangeRestartsTheFile) {
  hub_->set_control({{"no_range", true}});
  const fs::path target = dir_ / "out" / "vocab.txt";
  write_text(target.string() + ".incomplete", "garbage");
  download_file(url("vocab.txt"), target, dir_ / "v.lock", settings_, {});
  EXPECT_EQ(read_file(target), vocab_);
}

TEST_F(FetchServerTest, CompletePartialFileIsFinishedBy416) {
  const fs::path target = dir_ / "out" / "model.safetensors";
  write_text(target.string() + ".incomplete", weights_);
  const DownloadResult r = download_file(url("model.safetensors"), target, dir_ / "m.lock", settings_, {});
  EXPECT_EQ(r.sha256, sha256_hex(weights_));
  EXPECT_EQ(read_file(target), weights_);
}

TEST_F(FetchServerTest, RetriesServerErrorsAndTooManyRequests) {
  hub_->set_control(
      {{"faults",
        {{"/tiny/resolve/main/config.json", {"500", "503"}}, {"/tiny/resolve/main/vocab.txt", {"429"}}}}});
  ensure_model("tiny", settings_);
  EXPECT_EQ(read_file(model_dir() / "config.json"), config_);
  EXPECT_EQ(hub_->count_requests("/tiny/resolve/main/config.json"), 3);
  EXPECT_EQ(hub_->count_requests("/tiny/resolve/main/vocab.txt"), 2);
}

TEST_F(FetchServerTest, GivesUpAfterMaxAttemptsNamingUrlAndStatus) {
  settings_.max_attempts = 3;
  hub_->set_control({{"faults", {{"/tiny/resolve/main/config.json", {"500", "500", "500", "500"}}}}});
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  const std::string what = e.what();
  EXPECT_NE(what.find(url("config.json")), std::string::npos) << what;
  EXPECT_NE(what.find("HTTP 500"), std::string::npos) << what;
  EXPECT_EQ(what.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ(hub_->count_requests("/tiny/resolve/main/config.json"), 3);
  EXPECT_FALSE(fs::exists(model_dir() / "config.json"));
}

TEST_F(FetchServerTest, TokenIsSentAsBearerAndMissingTokenGives401) {
  hub_->set_control({{"token", "s3cret"}});
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  EXPECT_NE(std::string(e.what()).find(url("config.json") + ": HTTP 401"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("HF_TOKEN"), std::string::npos) << e.what();

  settings_.token = "wrong";
  settings_.token_source = "HF_TOKEN";
  e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_NE(std::string(e.what()).find("token from HF_TOKEN was refused"), std::string::npos) << e.what();

  settings_.token = "s3cret";
  ensure_model("tiny", settings_);
  EXPECT_EQ(read_file(model_dir() / "model.safetensors"), weights_);
  EXPECT_EQ(hub_->requests().back()["authorization"], "Bearer s3cret");
}

TEST_F(FetchServerTest, WrongChecksumIsRefusedAndNothingInstalled) {
  hub_->set_control({{"bad_etag", {"/tiny/resolve/main/model.safetensors"}}});
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  EXPECT_NE(std::string(e.what()).find(url("model.safetensors") + ": SHA-256 mismatch"), std::string::npos)
      << e.what();
  EXPECT_FALSE(fs::exists(model_dir() / "model.safetensors"));
  EXPECT_FALSE(fs::exists(model_dir() / kModelCompleteMarker));
  EXPECT_FALSE(has_incomplete_files(settings_.home));
}

TEST_F(FetchServerTest, Sha256EtagOnASmallFileIsVerifiedToo) {
  hub_->set_control({{"bad_etag", {"/tiny/resolve/main/config.json"}}});
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_NE(std::string(e.what()).find("SHA-256 mismatch"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(model_dir() / "config.json"));
}

TEST_F(FetchServerTest, MissingFileIs404NamingTheUrl) {
  Error e = expect_error([&] { ensure_model("absent-model", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  const std::string expected = hub_->endpoint() + "/absent-model/resolve/main/config.json: HTTP 404";
  EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
}

TEST_F(FetchServerTest, OfflineListsWhatIsMissingAndMakesNoRequest) {
  settings_.offline = true;
  settings_.offline_reason = "NLPF_OFFLINE=1";
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  const std::string what = e.what();
  for (const char* part :
       {"NLPF_OFFLINE=1", "config.json", "vocab.txt", "model.safetensors", "--model DIR"}) {
    EXPECT_NE(what.find(part), std::string::npos) << part << " in " << what;
  }
  e = expect_error([&] { ensure_dataset("sst2", settings_); });
  EXPECT_NE(std::string(e.what()).find("--data-dir DIR"), std::string::npos) << e.what();
  e = expect_error([&] { download_file(url("config.json"), dir_ / "c", dir_ / "c.lock", settings_, {}); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  EXPECT_TRUE(hub_->requests().empty()) << "offline mode made a request";

  // A model already in the cache is used offline.
  settings_.offline = false;
  ensure_model("tiny", settings_);
  settings_.offline = true;
  const size_t before = hub_->requests().size();
  EXPECT_EQ(ensure_model("tiny", settings_), model_dir());
  EXPECT_EQ(hub_->requests().size(), before);
}

TEST_F(FetchServerTest, UnreachableServerGivesTheOfflineAdvice) {
  settings_.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  settings_.max_attempts = 2;
  Error e = expect_error([&] { ensure_model("tiny", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  const std::string what = e.what();
  EXPECT_NE(what.find("http://127.0.0.1:1/tiny/resolve/main/config.json"), std::string::npos) << what;
  EXPECT_NE(what.find("curl error"), std::string::npos) << what;
  EXPECT_NE(what.find("--model DIR"), std::string::npos) << what;
}

TEST_F(FetchServerTest, ConcurrentFetchesOfOneFileLeaveOneGoodFile) {
  hub_->set_control({{"chunk_delay_ms", 20}});
  const fs::path target = dir_ / "out" / "model.safetensors";
  std::vector<DownloadResult> results(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      try {
        results[i] =
            download_file(url("model.safetensors"), target, dir_ / "locks" / "m.lock", settings_, {});
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  EXPECT_EQ(read_file(target), weights_);
  const int installed =
      (results[0].status == DownloadStatus::INSTALLED) + (results[1].status == DownloadStatus::INSTALLED);
  EXPECT_EQ(installed, 1);
  EXPECT_EQ(hub_->count_requests("/cdn/tiny/model.safetensors"), 1);
  EXPECT_FALSE(has_incomplete_files(dir_ / "out"));

  // Two whole-model fetches at once as well.
  std::thread other([&] { ensure_model("tiny", settings_); });
  ensure_model("tiny", settings_);
  other.join();
  EXPECT_EQ(read_file(model_dir() / "model.safetensors"), weights_);
}

// ---- SST-2 ----

// A zip built with libzip; entries are (name, contents).
void make_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  fs::create_directories(path.parent_path());
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  ASSERT_NE(archive, nullptr);
  std::list<std::string> keep;  // libzip reads the buffers at zip_close
  for (const auto& [name, contents] : entries) {
    keep.push_back(contents);
    zip_source_t* source = zip_source_buffer(archive, keep.back().data(), keep.back().size(), 0);
    ASSERT_NE(source, nullptr);
    ASSERT_GE(zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE), 0) << zip_strerror(archive);
  }
  ASSERT_EQ(zip_close(archive), 0);
}

std::vector<std::pair<std::string, std::string>> small_sst2(const std::string& train_label = "1") {
  return {{"SST-2/train.tsv", "sentence\tlabel\nit 's good \t" + train_label + "\nbad .\t0\nfine\t1\n"},
          {"SST-2/dev.tsv", "sentence\tlabel\nnice .\t1\nawful .\t0\n"},
          {"SST-2/test.tsv", "index\tsentence\n0\tsome text\n1\tmore text\n"},
          {"SST-2/original/README.txt", "readme"}};
}

TEST_F(FetchServerTest, Sst2WithWrongRowCountsIsRefused) {
  make_zip(hub_->root() / "glue/data/SST-2.zip", small_sst2());
  Error e = expect_error([&] { ensure_dataset("sst2", settings_); });
  EXPECT_EQ(e.code(), ErrorCode::IO);
  EXPECT_NE(std::string(e.what()).find("train.tsv has 3 rows, expected 67349"), std::string::npos)
      << e.what();
  EXPECT_NE(std::string(e.what()).find(settings_.sst2_url), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(settings_.home / "datasets" / "sst2"));
  EXPECT_FALSE(fs::exists(settings_.home / "datasets" / ".downloads" / "SST-2.zip"));
}

TEST_F(FetchServerTest, Sst2WithExpectedShapeIsInstalled) {
  make_zip(hub_->root() / "glue/data/SST-2.zip", small_sst2());
  const fs::path dir = ensure_sst2(settings_, Sst2Shape{3, 2, 2});
  EXPECT_EQ(dir, settings_.home / "datasets" / "sst2");
  EXPECT_EQ(read_file(dir / "dev.tsv"), "sentence\tlabel\nnice .\t1\nawful .\t0\n");
  EXPECT_TRUE(fs::exists(dir / "train.tsv"));
  EXPECT_TRUE(fs::exists(dir / "test.tsv"));
  EXPECT_TRUE(fs::exists(dir / "original" / "README.txt"));
  const size_t before = hub_->requests().size();
  EXPECT_EQ(ensure_dataset("sst2", settings_), dir);  // present: no shape check, no request
  EXPECT_EQ(hub_->requests().size(), before);
  for (const auto& r : hub_->requests()) EXPECT_EQ(r["authorization"], "") << "hub token sent to GLUE server";
}

TEST(FetchSst2, BadLabelHeaderAndTraversalAreRefusedNamingTheEntry) {
  const fs::path dir = make_temp_dir();
  const Sst2Shape shape{3, 2, 2};
  struct Case {
    std::vector<std::pair<std::string, std::string>> entries;
    std::string expected;
  };
  auto traversal = small_sst2();
  traversal.push_back({"SST-2/../../evil.tsv", "x"});
  auto bad_header = small_sst2();
  bad_header[1].second = "text\tlabel\nnice .\t1\nawful .\t0\n";
  auto no_test = small_sst2();
  no_test.erase(no_test.begin() + 2);
  const std::vector<Case> cases = {
      {small_sst2("2"), "train.tsv:2: label '2', expected 0 or 1"},
      {traversal, "zip entry 'SST-2/../../evil.tsv' points outside the archive folder"},
      {bad_header, "dev.tsv:1: header is 'text\tlabel'"},
      {no_test, "has no test.tsv"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const fs::path zip = dir / ("case" + std::to_string(i) + ".zip");
    make_zip(zip, cases[i].entries);
    const fs::path out = dir / ("out" + std::to_string(i));
    fs::create_directories(out);
    Error e = expect_error([&] { unpack_sst2_zip(zip, out, shape, "SST-2.zip"); });
    EXPECT_EQ(e.code(), ErrorCode::IO);
    EXPECT_NE(std::string(e.what()).find("SST-2.zip: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(cases[i].expected), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "evil.tsv"));
  EXPECT_FALSE(fs::exists(dir.parent_path() / "evil.tsv"));
  EXPECT_TRUE(fs::is_empty(dir / "out1")) << "nothing may be written from an archive with a bad entry";

  write_text(dir / "not.zip", "plain text");
  fs::create_directories(dir / "out_plain");
  Error e = expect_error([&] { unpack_sst2_zip(dir / "not.zip", dir / "out_plain", shape, "SST-2.zip"); });
  EXPECT_NE(std::string(e.what()).find("not a readable zip archive"), std::string::npos) << e.what();
  fs::remove_all(dir);
}

// ---- the nlpf binary ----

struct RunResult {
  int exit_code;
  std::string output;
};

RunResult run_command(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), output};
}

class FetchBinaryTest : public FetchServerTest {
 protected:
  // `nlpf ARGS` run in dir_/cwd with only our variables set (no token or offline flag of the developer's).
  RunResult nlpf(const std::string& args, const std::string& extra_env = "") {
    fs::create_directories(dir_ / "cwd");
    return run_command("cd '" + (dir_ / "cwd").string() +
                       "' && env -u HF_TOKEN -u HUGGINGFACE_HUB_TOKEN -u NLPF_OFFLINE -u HF_HUB_OFFLINE "
                       "no_proxy=127.0.0.1 NO_PROXY=127.0.0.1 NLPF_FETCH_BACKOFF_MS=0 HF_ENDPOINT=" +
                       hub_->endpoint() + " NLPF_HOME='" + settings_.home.string() + "' NLPF_SST2_URL=" +
                       settings_.sst2_url + " " + extra_env + " '" + NLPF_BINARY + "' " + args);
  }
};

TEST_F(FetchBinaryTest, FetchModelEndToEnd) {
  RunResult r = nlpf("fetch model tiny");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(model_dir().string()), std::string::npos) << r.output;
  EXPECT_EQ(read_file(model_dir() / "model.safetensors"), weights_);
  EXPECT_TRUE(fs::exists(model_dir() / kModelCompleteMarker));
}

TEST_F(FetchBinaryTest, QuietPrintsOnlyTheDirectoryBeforeOrAfterTheSubcommand) {
  for (const std::string args : {"fetch model tiny --quiet", "fetch -q model tiny", "fetch model -q tiny"}) {
    RunResult r = nlpf(args);
    ASSERT_EQ(r.exit_code, 0) << args << ": " << r.output;
    EXPECT_EQ(r.output, model_dir().string() + "\n") << args;
  }
  make_zip(hub_->root() / "glue/data/SST-2.zip", small_sst2());
  RunResult r = nlpf("fetch dataset sst2 --quiet");
  EXPECT_NE(r.exit_code, 2) << "--quiet must be accepted: " << r.output;
  EXPECT_EQ(r.output.find("not expected"), std::string::npos) << r.output;
}

TEST_F(FetchBinaryTest, DotenvTokenIsUsed) {
  hub_->set_control({{"token", "from-dotenv"}});
  RunResult r = nlpf("fetch model tiny");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("HTTP 401"), std::string::npos) << r.output;
  write_text(dir_ / "cwd" / ".env", "# token for the fake hub\nHF_TOKEN=\"from-dotenv\"  # quoted\n");
  r = nlpf("fetch model tiny");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(hub_->requests().back()["authorization"], "Bearer from-dotenv");
}

TEST_F(FetchBinaryTest, OfflineBinaryMakesNoRequestAndExitsNonZero) {
  RunResult r = nlpf("fetch model tiny", "HF_HUB_OFFLINE=1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("HF_HUB_OFFLINE=1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--model DIR"), std::string::npos) << r.output;
  EXPECT_TRUE(hub_->requests().empty());
}

TEST_F(FetchBinaryTest, FetchDatasetRefusesWrongShape) {
  make_zip(hub_->root() / "glue/data/SST-2.zip", small_sst2());
  RunResult r = nlpf("fetch dataset sst2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("train.tsv has 3 rows, expected 67349"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(settings_.home / "datasets" / "sst2"));
  r = nlpf("fetch model 'bad name'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("'bad name'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace nlpf
