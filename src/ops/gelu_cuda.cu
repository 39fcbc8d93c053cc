// Exact (erf) GELU on CUDA (gelu_cuda.h), element-wise in fp32 over the storage dtype: 16-byte vectors where
// both pointers are 16-byte aligned, single elements for the tail and for unaligned buffers. In place
// allowed. It runs on the feed-forward intermediate [B T, I] right after its GEMM: memory-bound, one read and
// one write; in f32 inference it also adds the GEMM's bias, row by row, and leaves the rows of padded tokens
// untouched (ops/padded_rows.h). The f32 backward (training) has the same layout: dx (=) from dout and the
// saved input x.
#include "ops/gelu_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "ops/padded_rows.cuh"

namespace nlpf::cuda {
namespace {

template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte vector

constexpr int kThreads = 256;
constexpr int kBlocksPerSm =
    16;  // a grid-stride loop over at most this many blocks per SM (8 resident, 2 rounds)

// 0.5 x (1 + erf(x / sqrt 2)), HF's "gelu"; erff is within 2 ulp.
__device__ __forceinline__ float gelu(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.707106781186547524f));
}

// GELU of the 16 bytes `raw` holds, in place. Pairs of 16-bit values go through their float2 conversions.
template <typename T>
__device__ __forceinline__ uint4 gelu_vec(uint4 raw) {
  if constexpr (std::is_same_v<T, float>) {
    return make_uint4(
        __float_as_uint(gelu(__uint_as_float(raw.x))), __float_as_uint(gelu(__uint_as_float(raw.y))),
        __float_as_uint(gelu(__uint_as_float(raw.z))), __float_as_uint(gelu(__uint_as_float(raw.w))));
  } else {
    using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    T2 h[4];
    memcpy(h, &raw,
           sizeof h);  // type punning by memcpy: writing through a cast pointer broke strict aliasing
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (std::is_same_v<T, __half>) {
        const float2 f = __half22float2(h[i]);
        h[i] = __floats2half2_rn(gelu(f.x), gelu(f.y));
      } else {
        const float2 f = __bfloat1622float2(h[i]);
        h[i] = __floats2bfloat162_rn(gelu(f.x), gelu(f.y));
      }
    }
    memcpy(&raw, h, sizeof raw);
    return raw;
  }
}

// out [N] = gelu(x [N]); out may be x (each element is read before it is written, by the same thread).
// Vectors [0, vectors) are 16 bytes each (vectors = 0 when a pointer is unaligned); elements from vectors V
// on, the tail, one at a time. Grid-stride loops over a 1-D grid of kThreads-thread blocks.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    gelu_forward_kernel(T* out, const T* x, int64_t vectors, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    const uint4 raw = *reinterpret_cast<const uint4*>(x + i * kVec<T>);
    __stwb(reinterpret_cast<uint4*>(out + i * kVec<T>), gelu_vec<T>(raw));
  }
  for (int64_t i = vectors * kVec<T> + first; i < N; i += stride)
    out[i] = from_float<T>(gelu(to_float(x[i])));
}

// y [rows, C] (=) = gelu(y + bias [C]): a block per row at a time (grid-stride over rows), so a padded row is
// one uniform test and costs nothing; its threads over the row's float4 vectors when y and bias are 16-byte
// aligned and C % 4 == 0, else over its elements.
__global__ void __launch_bounds__(kThreads)
    bias_gelu_forward_kernel(float* y, const float* bias, int64_t rows, int64_t C, bool vectors,
                             const PaddedRows padded) {
  for (int64_t n = blockIdx.x; n < rows; n += gridDim.x) {
    if (padded_row(padded, n)) continue;
    float* row = y + n * C;
    if (vectors) {
      for (int64_t v = threadIdx.x; v < C / 4; v += kThreads) {
        const float4 x = reinterpret_cast<const float4*>(row)[v];
        const float4 b = reinterpret_cast<const float4*>(bias)[v];
        reinterpret_cast<float4*>(row)[v] =
            make_float4(gelu(x.x + b.x), gelu(x.y + b.y), gelu(x.z + b.z), gelu(x.w + b.w));
      }
    } else {
      for (int64_t c = threadIdx.x; c < C; c += kThreads) row[c] = gelu(row[c] + bias[c]);
    }
  }
}

// Phi(x) + x phi(x), the derivative of x Phi(x); erff within 2 ulp, expf within 2 ulp.
__device__ __forceinline__ float gelu_derivative(float x) {
  const float cdf = 0.5f * (1.0f + erff(x * 0.707106781186547524f));
  const float pdf = 0.398942280401432678f * expf(-0.5f * x * x);  // 1 / sqrt(2 pi)
  return cdf + x * pdf;
}

// dx [N] (=) = dout [N] gelu'(x [N]), dx of Out (float, or 16-bit: the f32 value rounded once); float4
// vectors [0, vectors) (0 unless dout and x are 16-byte aligned and dx 4-element aligned), then the tail. dx
// may be dout (float): each element is read before it is written, by the same thread.
template <typename Out>
__global__ void __launch_bounds__(kThreads)
    gelu_backward_kernel(Out* dx, const float* dout, const float* x, int64_t vectors, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    const float4 d = reinterpret_cast<const float4*>(dout)[i];
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    store4(dx + 4 * i, make_float4(d.x * gelu_derivative(v.x), d.y * gelu_derivative(v.y),
                                   d.z * gelu_derivative(v.z), d.w * gelu_derivative(v.w)));
  }
  for (int64_t i = vectors * 4 + first; i < N; i += stride)
    dx[i] = from_float<Out>(dout[i] * gelu_derivative(x[i]));
}

// out [N] (Out, 16-bit) = gelu(x [N], f32) rounded once: the feed-forward GEMM's operand in mixed precision.
// Vectors as gelu_backward_kernel's.
template <typename Out>
__global__ void __launch_bounds__(kThreads)
    gelu_forward_rounded_kernel(Out* out, const float* x, int64_t vectors, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    store4(out + 4 * i, make_float4(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w)));
  }
  for (int64_t i = vectors * 4 + first; i < N; i += stride) out[i] = from_float<Out>(gelu(x[i]));
}

// Blocks for `items` grid-stride steps (items > 0): enough to cover them, at most kBlocksPerSm per SM.
unsigned grid_size(const CudaContext& ctx, int64_t items) {
  return static_cast<unsigned>(std::min<int64_t>(
      (items + kThreads - 1) / kThreads, static_cast<int64_t>(ctx.multiprocessor_count()) * kBlocksPerSm));
}

template <typename T>
void launch(CudaContext& ctx, void* out, const void* x, int64_t N) {
  const int64_t vectors = aligned16(out) && aligned16(x) ? N / kVec<T> : 0;
  const unsigned blocks = grid_size(ctx, std::max(vectors, N - vectors * kVec<T>));
  gelu_forward_kernel<T>
      <<<blocks, kThreads, 0, ctx.stream()>>>(static_cast<T*>(out), static_cast<const T*>(x), vectors, N);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace

void gelu_forward(ExecutionContext& ctx, void* out, const void* x, DType dtype, int64_t N) {
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "gelu_forward (cuda): N = ", N);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  with_float_type("gelu_forward", dtype, [&]<typename T>(T*) { launch<T>(cuda, out, x, N); });
}

void bias_gelu_forward(ExecutionContext& ctx, float* y, const float* bias, int64_t rows, int64_t C,
                       const PaddedRows& padded) {
  NLPF_CHECK(rows >= 0 && C > 0, ErrorCode::INVALID_ARGUMENT, "bias_gelu_forward (cuda): ", rows, " rows of ",
             C);
  check_padded_rows("bias_gelu_forward", padded, rows);
  if (rows == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const bool vectors = aligned16(y) && aligned16(bias) && C % 4 == 0;
  const auto blocks = static_cast<unsigned>(
      std::min<int64_t>(rows, static_cast<int64_t>(cuda.multiprocessor_count()) * kBlocksPerSm));
  bias_gelu_forward_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(y, bias, rows, C, vectors, padded);
  NLPF_CUDA_CHECK_LAUNCH();
}

void gelu_backward(ExecutionContext& ctx, float* dx, const float* dout, const float* x, int64_t N) {
  gelu_backward(ctx, dx, DType::F32, dout, x, N);
}

void gelu_backward(ExecutionContext& ctx, void* dx, DType dx_dtype, const float* dout, const float* x,
                   int64_t N) {
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "gelu_backward (cuda): N = ", N);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t vectors = aligned4(dx, dx_dtype) && aligned16(dout) && aligned16(x) ? N / 4 : 0;
  const unsigned blocks = grid_size(cuda, std::max(vectors, N - vectors * 4));
  with_float_type("gelu_backward", dx_dtype, [&]<typename Out>(Out*) {
    gelu_backward_kernel<Out>
        <<<blocks, kThreads, 0, cuda.stream()>>>(static_cast<Out*>(dx), dout, x, vectors, N);
    NLPF_CUDA_CHECK_LAUNCH();
  });
}

void gelu_forward_rounded(ExecutionContext& ctx, void* out, DType out_dtype, const float* x, int64_t N) {
  NLPF_CHECK(N >= 0 && out_dtype != DType::F32, ErrorCode::INVALID_ARGUMENT,
             "gelu_forward_rounded (cuda): N = ", N, ", out ", dtype_name(out_dtype));
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t vectors = aligned4(out, out_dtype) && aligned16(x) ? N / 4 : 0;
  const unsigned blocks = grid_size(cuda, std::max(vectors, N - vectors * 4));
  with_float_type("gelu_forward", out_dtype, [&]<typename Out>(Out*) {
    gelu_forward_rounded_kernel<Out>
        <<<blocks, kThreads, 0, cuda.stream()>>>(static_cast<Out*>(out), x, vectors, N);
    NLPF_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace nlpf::cuda
