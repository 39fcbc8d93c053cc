// Whole-file reads, atomic writes and staged directories.
#include "core/file_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <system_error>

#include "core/error.h"

namespace nlpf {

std::string read_file(const fs::path& path) {
  std::error_code ec;
  NLPF_CHECK(fs::exists(path, ec), ErrorCode::IO, path.string(), ": no such file");
  NLPF_CHECK(!fs::is_directory(path, ec), ErrorCode::IO, path.string(), ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  NLPF_CHECK(in.good(), ErrorCode::IO, path.string(), ": cannot open: ", std::strerror(errno));
  std::string data;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  NLPF_CHECK(size >= 0, ErrorCode::IO, path.string(), ": cannot determine size");
  data.resize(static_cast<size_t>(size));
  in.seekg(0, std::ios::beg);
  in.read(data.data(), size);
  NLPF_CHECK(in.good() || in.eof(), ErrorCode::IO, path.string(), ": read failed");
  return data;
}

void write_file_atomic(const fs::path& path, std::string_view contents) {
  const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  NLPF_CHECK(f != nullptr, ErrorCode::IO, path.string(), ": cannot write: ", std::strerror(errno));
  const bool ok = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size() &&
                  std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int saved_errno = errno;
  std::fclose(f);
  if (!ok) {
    std::remove(tmp.c_str());
    NLPF_THROW(ErrorCode::IO, path.string(), ": write failed: ", std::strerror(saved_errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    NLPF_THROW(ErrorCode::IO, path.string(), ": cannot rename into place: ", ec.message());
  }
}

StagedDirectory::StagedDirectory(fs::path final_path) : final_path_(std::move(final_path)) {
  std::error_code ec;
  NLPF_CHECK(!fs::exists(final_path_, ec), ErrorCode::IO, final_path_.string(),
             ": already exists; refusing to overwrite it");
  const fs::path parent = final_path_.has_parent_path() ? final_path_.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  NLPF_CHECK(!ec, ErrorCode::IO, parent.string(), ": cannot create directory: ", ec.message());
  std::string staging_name = ".";  // built by appends: GCC 12 warns falsely (-Wrestrict) on "." + string
  staging_name += final_path_.filename().string();
  staging_name += ".partial-" + std::to_string(::getpid());
  staging_path_ = parent / staging_name;
  fs::remove_all(staging_path_, ec);
  fs::create_directory(staging_path_, ec);
  NLPF_CHECK(!ec, ErrorCode::IO, staging_path_.string(), ": cannot create directory: ", ec.message());
}

StagedDirectory::~StagedDirectory() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(staging_path_, ec);
  }
}

void StagedDirectory::commit() {
  std::error_code ec;
  NLPF_CHECK(!fs::exists(final_path_, ec), ErrorCode::IO, final_path_.string(),
             ": appeared while it was being written; leaving the result at ", staging_path_.string());
  fs::rename(staging_path_, final_path_, ec);
  NLPF_CHECK(!ec, ErrorCode::IO, final_path_.string(), ": cannot rename into place: ", ec.message());
  committed_ = true;
}

}  // namespace nlpf
