// flock()-based FileLock.
#include "fetch/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "core/error.h"

namespace nlpf {

FileLock::FileLock(const std::filesystem::path& lock_path, const std::string& what) {
  std::error_code ec;
  std::filesystem::create_directories(lock_path.parent_path(), ec);
  NLPF_CHECK(!ec, ErrorCode::IO, lock_path.parent_path().string(),
             ": cannot create directory: ", ec.message());
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  NLPF_CHECK(fd_ >= 0, ErrorCode::IO, lock_path.string(), ": cannot open lock file: ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  if (errno == EWOULDBLOCK) {
    std::fprintf(stderr, "nlpf: waiting for another download of %s (lock %s)\n", what.c_str(),
                 lock_path.c_str());
  }
  int rc;
  do {
    rc = ::flock(fd_, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int saved_errno = errno;
    ::close(fd_);
    fd_ = -1;
    NLPF_THROW(ErrorCode::IO, lock_path.string(), ": cannot lock: ", std::strerror(saved_errno));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace nlpf
