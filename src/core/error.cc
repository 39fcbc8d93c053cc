// Names and exit codes of nlpf::ErrorCode.
#include "core/error.h"

namespace nlpf {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::INVALID_ARGUMENT: return "invalid argument";
    case ErrorCode::UNSUPPORTED: return "unsupported";
    case ErrorCode::IO: return "i/o error";
    case ErrorCode::CUDA: return "CUDA error";
    case ErrorCode::CUBLAS: return "cuBLAS error";
    case ErrorCode::NVML: return "NVML error";
    case ErrorCode::OUT_OF_MEMORY:
      return "out of memory";
    case ErrorCode::NUMERIC: return "numeric error";
    case ErrorCode::INTERRUPTED: return "interrupted";
    case ErrorCode::INTERNAL: return "internal error";
  }
  return "error";
}

int error_exit_code(ErrorCode code) {
  switch (code) {
    case ErrorCode::INVALID_ARGUMENT: return 3;
    case ErrorCode::UNSUPPORTED: return 4;
    case ErrorCode::IO: return 5;
    case ErrorCode::CUDA:
    case ErrorCode::CUBLAS: return 6;
    case ErrorCode::NVML: return 7;
    case ErrorCode::OUT_OF_MEMORY:
      return 9;
    case ErrorCode::NUMERIC: return 8;
    case ErrorCode::INTERRUPTED: return 130;
    case ErrorCode::INTERNAL: return 70;
  }
  return 1;
}

}  // namespace nlpf
