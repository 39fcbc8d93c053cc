// Helpers shared by the tests under tests/: TempDir, a fresh empty directory under the system temp dir that
// lives as long as the object (mkdtemp makes the name unique per process and per instance, so tests that
// ctest runs in parallel, and several TempDirs in one test, never share or delete each other's files); and
// run_nlpf, the binary under test run through the shell.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "core/error.h"

namespace nlpf::testing_util {

class TempDir {
 public:
  // `label` only makes a directory left behind by a crashed test recognisable: nlpf_<label>_XXXXXX.
  explicit TempDir(std::string_view label = "test") {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("nlpf_" + std::string(label) + "_XXXXXX")).string();
    NLPF_CHECK(::mkdtemp(pattern.data()) != nullptr, ErrorCode::IO, "cannot create a temporary directory ",
               pattern);
    path_ = pattern;
  }
  ~TempDir() {
    // A test may have taken the write permission off the directory itself; give it back so that the
    // removal goes through. Errors are ignored: a destructor must not throw.
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add,
                                 ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& relative) const { return path_ / relative; }

  // Writes `contents` byte for byte to path() / name and returns that path.
  std::filesystem::path write(const std::filesystem::path& name, std::string_view contents) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    NLPF_CHECK(out.good(), ErrorCode::IO, "cannot write ", file.string());
    return file;
  }

 private:
  std::filesystem::path path_;
};

// `nlpf <args>` through the shell (NLPF_BINARY, the build's binary), stdout and stderr together.
struct CommandResult {
  int exit_code;       // -1 when the command did not exit normally (a signal) or could not start
  std::string output;  // stdout and stderr together
};

inline CommandResult run_nlpf(const std::string& args) {
  const std::string command = std::string(NLPF_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed: " + command};
  std::string output;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace nlpf::testing_util
