// An exclusive flock() on a lock file, held for the object's lifetime: two nlpf processes (or threads,
// since each lock opens its own file description) fetching the same file take turns. Lock files stay in
// place after use, because deleting one while another process waits on it would let a third lock a new
// inode and run concurrently with the waiter.
#pragma once

#include <filesystem>
#include <string>

namespace nlpf {

class FileLock {
 public:
  // Blocks until the lock is ours; says once on stderr what it waits for when another holder has it.
  // Creates the lock file and its parent folders; throws Error(IO) naming the lock file on failure.
  FileLock(const std::filesystem::path& lock_path, const std::string& what);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace nlpf
