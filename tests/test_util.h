// Helpers shared by the tests under tests/: TempDir, a fresh empty directory under the system temp dir that
// lives as long as the object. mkdtemp makes the name unique per process and per instance, so tests that
// ctest runs in parallel (and several TempDirs in one test) never share or delete each other's files.
#pragma once

#include <stdlib.h>

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

}  // namespace nlpf::testing_util
