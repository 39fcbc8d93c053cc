// Dropout on CUDA (dropout_cuda.h): the Philox keep mask and the masked scale, f32. The mask kernel gives
// each thread one Philox block (four consecutive stream elements), as the CPU kernel does per iteration, and
// uses the CPU's keep rule in integers (backend/cuda/philox.cuh), so masks agree bit for bit. The scale
// kernel is element-wise (16-byte vectors where every pointer allows), in place allowed.
#include "ops/dropout_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "backend/cuda/philox.cuh"
#include "ops/dropout_keep.cuh"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 16;  // grid-stride loops over at most this many blocks per SM

// Blocks for `items` grid-stride steps: enough to cover them, at most kBlocksPerSm per SM (items > 0).
unsigned grid_size(const CudaContext& ctx, int64_t items) {
  return static_cast<unsigned>(std::min<int64_t>(
      (items + kThreads - 1) / kThreads, static_cast<int64_t>(ctx.multiprocessor_count()) * kBlocksPerSm));
}

// out [N] = x [N] * keep [N] * scale, multiplied in that order as the CPU. Vectors [0, vectors) are float4
// (vectors = 0 unless every pointer is 16-byte aligned), then the tail element by element. out may be x: each
// element is read before it is written, by the same thread.
__global__ void __launch_bounds__(kThreads)
    dropout_forward_kernel(float* out, const float* x, const float* keep, float scale, int64_t vectors,
                           int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    const float4 xv = reinterpret_cast<const float4*>(x)[i];
    const float4 kv = reinterpret_cast<const float4*>(keep)[i];
    reinterpret_cast<float4*>(out)[i] =
        make_float4(xv.x * kv.x * scale, xv.y * kv.y * scale, xv.z * kv.z * scale, xv.w * kv.w * scale);
  }
  for (int64_t i = vectors * 4 + first; i < N; i += stride) out[i] = x[i] * keep[i] * scale;
}

// out [N] = x [N] * keep(i) * scale (+ residual[i] where residual is given) with the keep values of a
// KeepSource (the drawn form: one Philox block per element, whose other three words other threads use;
// compute is cheap next to a mask's write and read). __fmul_rn / __fadd_rn: the product is rounded before the
// add, as dropout_forward then add_forward round it (nvcc would otherwise contract the two into an fma). Out:
// float, or a 16-bit dtype (the f32 value rounded once: a mixed-precision GEMM operand); twin, unless
// nullptr, also receives the value rounded to Twin beside a float out.
template <typename Out, typename Twin>
__global__ void __launch_bounds__(kThreads)
    dropout_keep_forward_kernel(Out* out, const float* x, const KeepSource keep, float scale, int64_t N,
                                const float* residual, Twin* twin) {
  const KeepReader reader(keep);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < N; i += stride) {
    const float y = __fmul_rn(__fmul_rn(x[i], reader(i)), scale);
    const float v = residual != nullptr ? __fadd_rn(y, residual[i]) : y;
    out[i] = from_float<Out>(v);
    if (twin != nullptr) twin[i] = from_float<Twin>(v);
  }
}

// keep [N]: thread step j draws Philox block first_block + j (blocks [first_block, end_block)) and writes
// its lanes whose stream index offset + i lies in [offset, offset + N). With step (device memory), offset
// and first_block move by *step * step_stride (a multiple of 4: the same number of blocks).
__global__ void __launch_bounds__(kThreads)
    dropout_mask_kernel(float* keep, uint64_t seed, uint64_t offset, uint64_t first_block, uint64_t blocks,
                        uint32_t threshold, int64_t N, const int64_t* step, uint64_t step_stride) {
  if (step != nullptr) {
    const uint64_t shift = static_cast<uint64_t>(*step) * step_stride;
    offset += shift;
    first_block += shift / 4;
  }
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * kThreads;
  const uint64_t end = offset + static_cast<uint64_t>(N);
  for (uint64_t j = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x; j < blocks; j += stride) {
    const uint64_t block = first_block + j;
    const uint4 x = philox_block(seed, block);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const uint64_t index = block * 4 + static_cast<uint64_t>(lane);
      if (index < offset || index >= end) continue;
      keep[index - offset] = dropout_keep(philox_lane(x, lane), threshold) ? 1.0f : 0.0f;
    }
  }
}

}  // namespace

void dropout_forward(ExecutionContext& ctx, float* out, const float* x, const float* keep, float scale,
                     int64_t N) {
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "dropout_forward (cuda): N = ", N);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t vectors = aligned16(out) && aligned16(x) && aligned16(keep) ? N / 4 : 0;
  const unsigned blocks = grid_size(cuda, std::max(vectors, N - vectors * 4));
  dropout_forward_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(out, x, keep, scale, vectors, N);
  NLPF_CUDA_CHECK_LAUNCH();
}

namespace {

template <typename Out, typename Twin>
void launch_keep_forward(CudaContext& ctx, void* out, const float* x, const KeepSource& keep, float scale,
                         int64_t N, const float* residual, void* twin) {
  dropout_keep_forward_kernel<Out, Twin><<<grid_size(ctx, N), kThreads, 0, ctx.stream()>>>(
      static_cast<Out*>(out), x, keep, scale, N, residual, static_cast<Twin*>(twin));
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace

void dropout_forward(ExecutionContext& ctx, float* out, const float* x, const KeepSource& keep, float scale,
                     int64_t N, const float* residual) {
  dropout_forward(ctx, out, DType::F32, x, keep, scale, N, residual, nullptr, DType::BF16);
}

void dropout_forward(ExecutionContext& ctx, void* out, DType out_dtype, const float* x,
                     const KeepSource& keep, float scale, int64_t N, const float* residual, void* twin,
                     DType twin_dtype) {
  NLPF_CHECK(N >= 0 && keep.active(), ErrorCode::INVALID_ARGUMENT, "dropout_forward (cuda): N = ", N,
             ", or neither a mask nor a draw");
  if (N == 0) return;
  NLPF_CHECK(keep.mask == nullptr || (residual == nullptr && out_dtype == DType::F32 && twin == nullptr),
             ErrorCode::INVALID_ARGUMENT,
             "dropout_forward (cuda): a residual, a 16-bit output or a copy with a stored mask");
  NLPF_CHECK((out_dtype == DType::F32 || dtype_is_16bit(out_dtype)) &&
                 (twin == nullptr || (out_dtype == DType::F32 && dtype_is_16bit(twin_dtype))),
             ErrorCode::UNSUPPORTED, "dropout_forward (cuda): out ", dtype_name(out_dtype), ", copy ",
             twin != nullptr ? dtype_name(twin_dtype) : "none",
             " (expected f32, bf16 or f16 out; a bf16 or f16 copy beside an f32 out)");
  if (keep.mask != nullptr) {
    dropout_forward(ctx, static_cast<float*>(out), x, keep.mask, scale, N);
    return;
  }
  CudaContext& cuda = cuda_context(ctx);
  if (out_dtype == DType::BF16) {
    launch_keep_forward<__nv_bfloat16, __nv_bfloat16>(cuda, out, x, keep, scale, N, residual, nullptr);
  } else if (out_dtype == DType::F16) {
    launch_keep_forward<__half, __nv_bfloat16>(cuda, out, x, keep, scale, N, residual, nullptr);
  } else if (twin != nullptr && twin_dtype == DType::F16) {
    launch_keep_forward<float, __half>(cuda, out, x, keep, scale, N, residual, twin);
  } else {
    launch_keep_forward<float, __nv_bfloat16>(cuda, out, x, keep, scale, N, residual, twin);
  }
}

void dropout_mask(ExecutionContext& ctx, float* keep, double p, uint64_t seed, uint64_t offset, int64_t N) {
  dropout_mask(ctx, keep, p, seed, offset, N, nullptr, 0);
}

void dropout_mask(ExecutionContext& ctx, float* keep, double p, uint64_t seed, uint64_t offset, int64_t N,
                  const int64_t* step, uint64_t step_stride) {
  NLPF_CHECK(step == nullptr || (offset % 4 == 0 && step_stride % 4 == 0), ErrorCode::INVALID_ARGUMENT,
             "dropout_mask (cuda): offset ", offset, " and step stride ", step_stride,
             " must be multiples of 4 with a step in device memory");
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "dropout_mask (cuda): N = ", N);
  NLPF_CHECK(p >= 0 && p < 1, ErrorCode::INVALID_ARGUMENT, "dropout_mask (cuda): p = ", p,
             " is outside [0, 1)");
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  // The CPU's keep probability, rounded to float the same way (cpu::dropout_mask).
  const uint32_t threshold = dropout_keep_threshold(static_cast<float>(1.0 - p));
  const uint64_t first_block = offset / 4, end_block = (offset + static_cast<uint64_t>(N) + 3) / 4;
  const uint64_t blocks = end_block - first_block;
  dropout_mask_kernel<<<grid_size(cuda, static_cast<int64_t>(blocks)), kThreads, 0, cuda.stream()>>>(
      keep, seed, offset, first_block, blocks, threshold, N, step, step_stride);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
