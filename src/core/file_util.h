// File helpers shared by every reader and writer: whole-file reads with errors that name the path, and
// writes that never leave a partial file under the final name (temporary name, fsync, rename).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace nlpf {

namespace fs = std::filesystem;

// Reads a whole file; throws Error(IO) naming the path when it is missing, a directory or unreadable.
std::string read_file(const fs::path& path);

// Writes `contents` to `path` through `path`.tmp-<pid> and a rename; throws Error(IO) naming the path.
void write_file_atomic(const fs::path& path, std::string_view contents);

// A directory built under a temporary sibling name (".<name>.partial-<pid>") and renamed to its final
// name by commit(); destroyed with its contents when the object dies uncommitted. Refuses to replace an
// existing directory (nothing the user had is overwritten).
class StagedDirectory {
 public:
  explicit StagedDirectory(fs::path final_path);
  ~StagedDirectory();
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;
  const fs::path& path() const { return staging_path_; }
  const fs::path& final_path() const { return final_path_; }
  void commit();

 private:
  fs::path final_path_;
  fs::path staging_path_;
  bool committed_ = false;
};

}  // namespace nlpf
