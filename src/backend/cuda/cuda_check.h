// NLPF_CUDA_CHECK: the one check for every CUDA runtime and cuBLASLt call in the project (STYLE "Errors"),
// throwing nlpf::Error(CUDA or CUBLAS) with the call, its status string, file and line.
// NLPF_CUDA_CHECK_LAUNCH follows every kernel launch (launch errors surface at once; errors inside the kernel
// at the next sync). Included by *.cu files and by backend/cuda headers only.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace nlpf::cuda::detail {

inline void check_status(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clears a sticky-free error so the next call does not report it again
    NLPF_THROW(status == cudaErrorMemoryAllocation ? ErrorCode::OUT_OF_MEMORY : ErrorCode::CUDA, call, ": ",
               cudaGetErrorName(status), " (", cudaGetErrorString(status), ") at ", file, ":", line);
  }
}

inline void check_status(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    NLPF_THROW(status == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::OUT_OF_MEMORY : ErrorCode::CUBLAS, call,
               ": ", cublasLtGetStatusName(status), " (", cublasLtGetStatusString(status), ") at ", file, ":",
               line);
  }
}

}  // namespace nlpf::cuda::detail

#define NLPF_CUDA_CHECK(call) ::nlpf::cuda::detail::check_status((call), #call, __FILE__, __LINE__)
#define NLPF_CUDA_CHECK_LAUNCH() NLPF_CUDA_CHECK(cudaGetLastError())
