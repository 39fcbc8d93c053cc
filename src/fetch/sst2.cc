// SST-2: download the GLUE zip, unpack it with libzip into a staged folder, check its shape, rename the
// folder into the cache. The zip itself is removed afterwards (success or refusal), so a refused archive
// is fetched afresh next time rather than re-checked forever.
#include "fetch/sst2.h"

#include <zip.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "fetch/download.h"
#include "fetch/file_lock.h"

namespace nlpf {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kMaxUnpackedBytes = 1ull << 30;  // SST-2 unpacks to ~10 MB; refuse zip bombs

// A relative path inside the archive: no absolute path, no backslash, no drive letter, no "..".
bool safe_entry_name(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.find('\\') != std::string_view::npos ||
      name.find(':') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('/', start), name.size());
    if (name.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

struct ZipCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct ZipFileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

void extract_entry(zip_t* archive, zip_uint64_t index, const fs::path& target, const std::string& where) {
  std::unique_ptr<zip_file_t, ZipFileCloser> entry(zip_fopen_index(archive, index, 0));
  NLPF_CHECK(entry != nullptr, ErrorCode::IO, where, ": cannot open: ", zip_strerror(archive));
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  NLPF_CHECK(!ec, ErrorCode::IO, target.parent_path().string(), ": cannot create directory: ", ec.message());
  std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(target.c_str(), "wb"), std::fclose);
  NLPF_CHECK(out != nullptr, ErrorCode::IO, target.string(), ": cannot write: ", std::strerror(errno));
  std::vector<char> buffer(1 << 16);
  zip_int64_t n;
  while ((n = zip_fread(entry.get(), buffer.data(), buffer.size())) > 0) {
    NLPF_CHECK(std::fwrite(buffer.data(), 1, static_cast<size_t>(n), out.get()) == static_cast<size_t>(n),
               ErrorCode::IO, target.string(), ": write failed: ", std::strerror(errno));
  }
  NLPF_CHECK(n == 0, ErrorCode::IO, where, ": cannot decompress: ", zip_file_strerror(entry.get()));
}

// Checks one split's header, row shape, labels and row count; every message names the file and line.
void check_split(const fs::path& path, const std::string& source, std::string_view header, bool labelled,
                 int64_t expected_rows) {
  const std::string name = path.filename().string();
  const std::string where = source + ": " + name;
  std::error_code ec;
  NLPF_CHECK(fs::is_regular_file(path, ec), ErrorCode::IO, source, ": has no ", name,
             " (not GLUE's SST-2); nothing installed");
  const std::string text = read_file(path);
  int64_t rows = 0;
  int64_t line_number = 0;
  bool blank_seen = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_number == 1) {
      NLPF_CHECK(line == header, ErrorCode::IO, where, ":1: header is '", line, "', expected '", header,
                 "' (not GLUE's SST-2); nothing installed");
      continue;
    }
    if (line.empty()) {
      blank_seen = true;
      continue;
    }
    NLPF_CHECK(!blank_seen, ErrorCode::IO, where, ":", line_number,
               ": row after a blank line; nothing installed");
    const size_t tab = line.find('\t');
    NLPF_CHECK(tab != std::string_view::npos && line.find('\t', tab + 1) == std::string_view::npos,
               ErrorCode::IO, where, ":", line_number,
               ": expected 2 tab-separated fields; nothing installed");
    if (labelled) {
      const std::string_view label = line.substr(tab + 1);
      NLPF_CHECK(label == "0" || label == "1", ErrorCode::IO, where, ":", line_number, ": label '", label,
                 "', expected 0 or 1; nothing installed");
    } else {
      const std::string_view index = line.substr(0, tab);
      NLPF_CHECK(!index.empty() && index.find_first_not_of("0123456789") == std::string_view::npos,
                 ErrorCode::IO, where, ":", line_number, ": index '", index,
                 "' is not a number; nothing installed");
    }
    ++rows;
  }
  NLPF_CHECK(line_number >= 1, ErrorCode::IO, where, ": is empty (not GLUE's SST-2); nothing installed");
  NLPF_CHECK(rows == expected_rows, ErrorCode::IO, where, " has ", rows, " rows, expected ", expected_rows,
             " (not GLUE's SST-2); nothing installed");
}

std::string offline_advice() {
  return "run `nlpf fetch dataset sst2` where the network is reachable, or pass --data-dir DIR holding "
         "train.tsv and dev.tsv";
}

}  // namespace

void unpack_sst2_zip(const fs::path& zip_path, const fs::path& destination, const Sst2Shape& shape,
                     const std::string& source) {
  int error_code = 0;
  std::unique_ptr<zip_t, ZipCloser> archive(zip_open(zip_path.c_str(), ZIP_RDONLY, &error_code));
  if (!archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, error_code);
    const std::string message = zip_error_strerror(&error);
    zip_error_fini(&error);
    NLPF_THROW(ErrorCode::IO, source, ": not a readable zip archive (", zip_path.string(), "): ", message);
  }
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  NLPF_CHECK(count > 0, ErrorCode::IO, source, ": the zip archive is empty; nothing installed");

  // All names are checked before anything is written: one bad entry refuses the whole archive.
  std::vector<std::string> names;
  bool all_under_sst2 = true;
  uint64_t total_bytes = 0;
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    NLPF_CHECK(zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &stat) == 0 &&
                   (stat.valid & ZIP_STAT_NAME),
               ErrorCode::IO, source, ": entry ", i,
               " of the zip archive is unreadable: ", zip_strerror(archive.get()));
    const std::string name = stat.name;
    NLPF_CHECK(safe_entry_name(name), ErrorCode::IO, source, ": zip entry '", name,
               "' points outside the archive folder (path traversal); nothing installed");
    if (stat.valid & ZIP_STAT_SIZE) total_bytes += stat.size;
    NLPF_CHECK(total_bytes <= kMaxUnpackedBytes, ErrorCode::IO, source, ": unpacks to more than ",
               kMaxUnpackedBytes, " bytes (not GLUE's SST-2); nothing installed");
    all_under_sst2 = all_under_sst2 && name.rfind("SST-2/", 0) == 0;
    names.push_back(name);
  }
  for (zip_int64_t i = 0; i < count; ++i) {
    std::string relative = names[static_cast<size_t>(i)];
    if (all_under_sst2) relative = relative.substr(6);
    if (relative.empty()) continue;
    const fs::path target = destination / relative;
    if (relative.back() == '/') {
      std::error_code ec;
      fs::create_directories(target, ec);
      NLPF_CHECK(!ec, ErrorCode::IO, target.string(), ": cannot create directory: ", ec.message());
      continue;
    }
    extract_entry(archive.get(), static_cast<zip_uint64_t>(i), target, source + ": " + relative);
  }
  check_split(destination / "train.tsv", source, "sentence\tlabel", true, shape.train_rows);
  check_split(destination / "dev.tsv", source, "sentence\tlabel", true, shape.dev_rows);
  check_split(destination / "test.tsv", source, "index\tsentence", false, shape.test_rows);
}

fs::path ensure_sst2(const FetchSettings& settings, const Sst2Shape& shape) {
  const fs::path dir = settings.home / "datasets" / "sst2";
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return dir;
  NLPF_CHECK(!settings.offline, ErrorCode::IO, "dataset sst2 is not in the cache and downloads are off (",
             settings.offline_reason, "): ", dir.string(), " does not exist; ", offline_advice());
  const fs::path locks = settings.home / ".locks" / "datasets";
  FileLock lock(locks / "sst2.lock", "dataset sst2");
  if (fs::is_directory(dir, ec)) return dir;  // another process finished it while we waited

  const fs::path zip_path = settings.home / "datasets" / ".downloads" / "SST-2.zip";
  DownloadOptions options;
  options.label = "SST-2.zip";
  options.send_token = false;  // the hub token is for the hub only
  try {
    download_file(settings.sst2_url, zip_path, locks / "SST-2.zip.lock", settings, options);
  } catch (const NetworkUnreachable& e) {
    NLPF_THROW(ErrorCode::IO, "dataset sst2 could not be downloaded (", e.what(), "); ", offline_advice());
  }
  try {
    StagedDirectory staged(dir);
    unpack_sst2_zip(zip_path, staged.path(), shape, settings.sst2_url);
    staged.commit();
  } catch (...) {
    fs::remove(zip_path, ec);
    throw;
  }
  fs::remove(zip_path, ec);
  return dir;
}

}  // namespace nlpf
