// quantize_e4m3_forward on CUDA (quantize_cuda.h): one element per thread-step, the conversion by the
// hardware's cvt (__nv_cvt_float_to_fp8 with __NV_SATFINITE: round to nearest even, saturating), which the
// host's core/fp8.h reproduces bit for bit (tests/ops/quantize_cuda_test.cc). Memory-bound; the fused
// producers of GEMM inputs will do this in their epilogues.
#include "ops/quantize_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 16;

template <typename T>
__global__ void __launch_bounds__(kThreads)
    quantize_e4m3_kernel(uint8_t* __restrict__ codes, const T* __restrict__ x,
                         const float* __restrict__ scale, int64_t N) {
  const float s = *scale;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < N; i += stride) {
    // x / s rounded to f32 as the host does, then to E4M3.
    codes[i] =
        static_cast<uint8_t>(__nv_cvt_float_to_fp8(__fdiv_rn(to_float(x[i]), s), __NV_SATFINITE, __NV_E4M3));
  }
}

}  // namespace

void quantize_e4m3_forward(ExecutionContext& ctx, uint8_t* codes, const void* x, DType x_dtype,
                           const float* scale, int64_t N) {
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "quantize_e4m3_forward (cuda): N = ", N);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(
      (N + kThreads - 1) / kThreads, static_cast<int64_t>(cuda.multiprocessor_count()) * kBlocksPerSm));
  switch (x_dtype) {
    case DType::F32:
      quantize_e4m3_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(codes, static_cast<const float*>(x), scale,
                                                                   N);
      break;
    case DType::BF16:
      quantize_e4m3_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(
          codes, static_cast<const __nv_bfloat16*>(x), scale, N);
      break;
    case DType::F16:
      quantize_e4m3_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(codes, static_cast<const __half*>(x),
                                                                   scale, N);
      break;
    default:
      NLPF_THROW(ErrorCode::UNSUPPORTED, "quantize_e4m3_forward (cuda): x dtype ", dtype_name(x_dtype));
  }
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
