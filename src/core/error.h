// nlpf::Error: the one exception type of the library, with a code and a message that names the file,
// option or tensor at fault. The library never exits; src/cli/main.cc turns an Error into one line and
// the exit code of its code. NLPF_CHECK is always on (also in Release).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nlpf {

enum class ErrorCode {
  INVALID_ARGUMENT,  // a bad option value, malformed input file, shape mismatch
  UNSUPPORTED,       // valid request that this build or device cannot run (precision, dtype)
  IO,                // missing, unreadable or unwritable file
  CUDA,
  CUBLAS,
  NVML,
  OUT_OF_MEMORY,  // a device (or host) allocation failed: the message names the size asked for
  NUMERIC,        // NaN/Inf where a finite value is required
  INTERRUPTED,    // Ctrl-C
  INTERNAL,       // a broken invariant (a bug)
};

const char* error_code_name(ErrorCode code);
// Exit code of the nlpf binary for an Error of this code (2 is reserved for command-line usage errors).
int error_exit_code(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

}  // namespace nlpf

// Throws nlpf::Error(code, message parts...) when cond is false.
#define NLPF_CHECK(cond, code, ...)                                              \
  do {                                                                           \
    if (!(cond)) throw ::nlpf::Error((code), ::nlpf::detail::concat(__VA_ARGS__)); \
  } while (0)

#define NLPF_THROW(code, ...) throw ::nlpf::Error((code), ::nlpf::detail::concat(__VA_ARGS__))
