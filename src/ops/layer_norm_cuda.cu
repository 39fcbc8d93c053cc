// LayerNorm for inference on CUDA (layer_norm_cuda.h): layer_norm_forward, and the BERT embeddings fused with
// their LayerNorm (the gathered sum never reaches device memory). One warp per row holds the row in registers
// (16-byte accesses, fp32 two-pass statistics); a row too long for that or not 16-byte aligned takes one
// block that reads it three times. x, out [N,C] (N = B T rows) of the storage dtype, weight and bias f32 [C];
// biased variance as torch.nn.LayerNorm; nothing is saved for backward.
#include "ops/layer_norm_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/float_convert.cuh"
#include "backend/cuda/cuda_context.h"

namespace nlpf::cuda {
namespace {

// ---- 16-byte accesses of the storage dtype, converted to and from fp32 ----

template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte vector

template <typename T>
__device__ __forceinline__ void load_vec(const T* p, float (&f)[kVec<T>]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  if constexpr (std::is_same_v<T, float>) {
    f[0] = __uint_as_float(raw.x), f[1] = __uint_as_float(raw.y), f[2] = __uint_as_float(raw.z),
    f[3] = __uint_as_float(raw.w);
  } else {
    using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    T2 h[4];
    memcpy(h, &raw, sizeof h);  // type punning by memcpy: a pointer cast would break strict aliasing
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 t;
      if constexpr (std::is_same_v<T, __half>) {
        t = __half22float2(h[i]);
      } else {
        t = __bfloat1622float2(h[i]);
      }
      f[2 * i] = t.x, f[2 * i + 1] = t.y;
    }
  }
}

// Round to nearest even, as the host's f32_to_bf16 / f32_to_f16.
__device__ __forceinline__ uint32_t pack2(const __nv_bfloat16*, float a, float b) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  uint32_t u;
  memcpy(&u, &h, sizeof u);
  return u;
}
__device__ __forceinline__ uint32_t pack2(const __half*, float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  uint32_t u;
  memcpy(&u, &h, sizeof u);
  return u;
}

// __stwb (an ordinary write-back store) keeps the 16 bytes one instruction; plain vector-type stores were
// seen split into 4-byte ones.
template <typename T>
__device__ __forceinline__ void store_vec(T* p, const float (&f)[kVec<T>]) {
  if constexpr (std::is_same_v<T, float>) {
    __stwb(reinterpret_cast<float4*>(p), make_float4(f[0], f[1], f[2], f[3]));
  } else {
    __stwb(reinterpret_cast<uint4*>(p), make_uint4(pack2(p, f[0], f[1]), pack2(p, f[2], f[3]),
                                                   pack2(p, f[4], f[5]), pack2(p, f[6], f[7])));
  }
}

// ---- where a row's values come from ----

// Rows of x [N,C]. x may be the output (in place): every kernel reads an element before writing it, in the
// same thread.
template <typename T>
struct XRows {
  const T* x;
  int64_t C;
  struct Row {
    const T* x;
    __device__ void load(int64_t c, float (&f)[kVec<T>]) const { load_vec(x + c, f); }
    __device__ float at(int64_t c) const { return to_float(x[c]); }
  };
  __device__ Row row(int64_t n) const { return {x + n * C}; }
};

// Row n = b T + t of the embeddings: word[input_ids[n]] + position[t] + token_type[token_type_ids[n]], summed
// in fp32 in that order (as the CPU embeddings_forward) from the table entries of the storage dtype.
template <typename T>
struct EmbeddingRows {
  const int32_t* input_ids;
  const int32_t* token_type_ids;
  const T* word;
  const T* position;
  const T* token_type;
  int64_t T_len, C;
  struct Row {
    const T *word, *position, *token_type;
    __device__ void load(int64_t c, float (&f)[kVec<T>]) const {
      float p[kVec<T>], tt[kVec<T>];
      load_vec(word + c, f);
      load_vec(position + c, p);
      load_vec(token_type + c, tt);
#pragma unroll
      for (int e = 0; e < kVec<T>; ++e) f[e] = f[e] + p[e] + tt[e];
    }
    __device__ float at(int64_t c) const {
      return to_float(word[c]) + to_float(position[c]) + to_float(token_type[c]);
    }
  };
  __device__ Row row(int64_t n) const {
    return {word + input_ids[n] * C, position + (n % T_len) * C, token_type + token_type_ids[n] * C};
  }
};

// ---- kernels ----

constexpr int kWarpsPerBlock = 4;  // rows per block of the warp kernel: N / 4 blocks fill the SMs at N = 4096
constexpr int kGenericThreads = 256;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// out [N,C] = LayerNorm(rows), weight, bias [C]; one warp per row, kWarpsPerBlock rows per block, grid
// ceil(N / kWarpsPerBlock). Lane l holds the 16-byte vectors l + 32 k (k < NV) of the row, so C <= 32 NV V
// with V = 16 / sizeof(T), C a multiple of V and every row 16-byte aligned. Two passes over the registers:
// the centred sum of squares does not cancel like E[x^2] - mean^2 would in fp32.
template <typename T, int NV, typename Rows>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    layer_norm_rows_kernel(T* out, Rows rows, const float* __restrict__ weight,
                           const float* __restrict__ bias, int64_t N, int C, float eps) {
  constexpr int V = kVec<T>;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave: the shuffles below see full warps
  const int lane = threadIdx.x % 32, vectors = C / V;
  const typename Rows::Row row = rows.row(n);
  float v[NV][V];
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int i = lane + 32 * k;
    if (i < vectors) {
      row.load(i * V, v[k]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) v[k][e] = 0.0f;
    }
  }
  const float inv_c = 1.0f / static_cast<float>(C);
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
#pragma unroll
    for (int e = 0; e < V; ++e) sum += v[k][e];
  }
  const float mean = warp_sum(sum) * inv_c;
  float sq = 0.0f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    if (lane + 32 * k < vectors) {
#pragma unroll
      for (int e = 0; e < V; ++e) sq += (v[k][e] - mean) * (v[k][e] - mean);
    }
  }
  const float rstd = rsqrtf(warp_sum(sq) * inv_c + eps);
  T* out_row = out + n * C;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int i = lane + 32 * k;
    if (i >= vectors) continue;
    float w[V], b[V], y[V];
#pragma unroll
    for (int e = 0; e < V; e += 4) {
      const float4 w4 = *reinterpret_cast<const float4*>(weight + i * V + e);
      const float4 b4 = *reinterpret_cast<const float4*>(bias + i * V + e);
      w[e] = w4.x, w[e + 1] = w4.y, w[e + 2] = w4.z, w[e + 3] = w4.w;
      b[e] = b4.x, b[e + 1] = b4.y, b[e + 2] = b4.z, b[e + 3] = b4.w;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) y[e] = (v[k][e] - mean) * rstd * w[e] + b[e];
    store_vec(out_row + i * V, y);
  }
}

// Sum over the block (kGenericThreads threads), returned to every thread; `scratch` holds a value per warp
// and is free again on return.
__device__ float block_sum(float v, float* scratch) {
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kGenericThreads / 32; ++w) total += scratch[w];
  __syncthreads();
  return total;
}

// The same for any C and alignment: one block of kGenericThreads per row, grid N, scalar accesses, the row
// read three times (from L1/L2 after the first).
template <typename T, typename Rows>
__global__ void __launch_bounds__(kGenericThreads)
    layer_norm_rows_generic_kernel(T* out, Rows rows, const float* __restrict__ weight,
                                   const float* __restrict__ bias, int C, float eps) {
  __shared__ float scratch[kGenericThreads / 32];
  const int64_t n = blockIdx.x;
  const typename Rows::Row row = rows.row(n);
  const float inv_c = 1.0f / static_cast<float>(C);
  float sum = 0.0f;
  for (int c = threadIdx.x; c < C; c += kGenericThreads) sum += row.at(c);
  const float mean = block_sum(sum, scratch) * inv_c;
  float sq = 0.0f;
  for (int c = threadIdx.x; c < C; c += kGenericThreads) sq += (row.at(c) - mean) * (row.at(c) - mean);
  const float rstd = rsqrtf(block_sum(sq, scratch) * inv_c + eps);
  T* out_row = out + n * C;
  for (int c = threadIdx.x; c < C; c += kGenericThreads) {
    out_row[c] = from_float<T>((row.at(c) - mean) * rstd * weight[c] + bias[c]);
  }
}

template <typename T, int NV, typename Rows>
void launch_warp_rows(CudaContext& ctx, T* out, const Rows& rows, const float* weight, const float* bias,
                      int64_t N, int64_t C, float eps) {
  const auto blocks = static_cast<unsigned>((N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  layer_norm_rows_kernel<T, NV, Rows><<<blocks, kWarpsPerBlock * 32, 0, ctx.stream()>>>(
      out, rows, weight, bias, N, static_cast<int>(C), eps);
  NLPF_CUDA_CHECK_LAUNCH();
}

// The warp kernel when the rows fit it (vectors per lane NV in {1, 2, 3, 4, 6, 8}: C = 768 is 3 at 16 bits
// and 6 at f32, with no idle lanes), else the block kernel.
template <typename T, typename Rows>
void launch_rows(CudaContext& ctx, T* out, const Rows& rows, const float* weight, const float* bias,
                 int64_t N, int64_t C, double eps, bool aligned) {
  constexpr int V = kVec<T>;
  NLPF_CHECK(C > 0 && C <= 0x7fffffff && N <= 0x7fffffff, ErrorCode::UNSUPPORTED,
             "layer_norm (cuda): N = ", N, ", C = ", C);
  if (N == 0) return;
  const auto eps_f = static_cast<float>(eps);
  const int64_t per_lane = (C / V + 31) / 32;
  if (aligned && C % V == 0 && per_lane <= 8) {
    switch (per_lane) {
      case 1:
        return launch_warp_rows<T, 1>(ctx, out, rows, weight, bias, N, C, eps_f);
      case 2:
        return launch_warp_rows<T, 2>(ctx, out, rows, weight, bias, N, C, eps_f);
      case 3:
        return launch_warp_rows<T, 3>(ctx, out, rows, weight, bias, N, C, eps_f);
      case 4:
        return launch_warp_rows<T, 4>(ctx, out, rows, weight, bias, N, C, eps_f);
      case 5:
      case 6:
        return launch_warp_rows<T, 6>(ctx, out, rows, weight, bias, N, C, eps_f);
      default:
        return launch_warp_rows<T, 8>(ctx, out, rows, weight, bias, N, C, eps_f);
    }
  }
  layer_norm_rows_generic_kernel<T, Rows><<<static_cast<unsigned>(N), kGenericThreads, 0, ctx.stream()>>>(
      out, rows, weight, bias, static_cast<int>(C), eps_f);
  NLPF_CUDA_CHECK_LAUNCH();
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <typename T>
void layer_norm_typed(CudaContext& ctx, void* out, const void* x, const float* weight, const float* bias,
                      int64_t N, int64_t C, double eps) {
  const bool aligned = aligned16(out) && aligned16(x) && aligned16(weight) && aligned16(bias);
  launch_rows(ctx, static_cast<T*>(out), XRows<T>{static_cast<const T*>(x), C}, weight, bias, N, C, eps,
              aligned);
}

template <typename T>
void embeddings_layer_norm_typed(CudaContext& ctx, void* out, const int32_t* input_ids,
                                 const int32_t* token_type_ids, const void* word, const void* position,
                                 const void* token_type, const float* weight, const float* bias, int64_t B,
                                 int64_t T_len, int64_t C, double eps) {
  const bool aligned = aligned16(out) && aligned16(word) && aligned16(position) && aligned16(token_type) &&
                       aligned16(weight) && aligned16(bias);
  const EmbeddingRows<T> rows{input_ids,
                              token_type_ids,
                              static_cast<const T*>(word),
                              static_cast<const T*>(position),
                              static_cast<const T*>(token_type),
                              T_len,
                              C};
  launch_rows(ctx, static_cast<T*>(out), rows, weight, bias, B * T_len, C, eps, aligned);
}

[[noreturn]] void unsupported_dtype(const char* op, DType dtype) {
  NLPF_THROW(ErrorCode::UNSUPPORTED, op, " (cuda): dtype ", dtype_name(dtype), ", expected f32, bf16 or f16");
}

}  // namespace

void layer_norm_forward(ExecutionContext& ctx, void* out, const void* x, const float* weight,
                        const float* bias, DType dtype, int64_t N, int64_t C, double eps) {
  CudaContext& cuda = cuda_context(ctx);
  switch (dtype) {
    case DType::F32:
      return layer_norm_typed<float>(cuda, out, x, weight, bias, N, C, eps);
    case DType::BF16:
      return layer_norm_typed<__nv_bfloat16>(cuda, out, x, weight, bias, N, C, eps);
    case DType::F16:
      return layer_norm_typed<__half>(cuda, out, x, weight, bias, N, C, eps);
    default:
      unsupported_dtype("layer_norm_forward", dtype);
  }
}

void embeddings_layer_norm_forward(ExecutionContext& ctx, void* out, const int32_t* input_ids,
                                   const int32_t* token_type_ids, const void* word, const void* position,
                                   const void* token_type, const float* weight, const float* bias,
                                   DType dtype, int64_t B, int64_t T, int64_t C, double eps) {
  CudaContext& cuda = cuda_context(ctx);
  switch (dtype) {
    case DType::F32:
      return embeddings_layer_norm_typed<float>(cuda, out, input_ids, token_type_ids, word, position,
                                                token_type, weight, bias, B, T, C, eps);
    case DType::BF16:
      return embeddings_layer_norm_typed<__nv_bfloat16>(cuda, out, input_ids, token_type_ids, word, position,
                                                        token_type, weight, bias, B, T, C, eps);
    case DType::F16:
      return embeddings_layer_norm_typed<__half>(cuda, out, input_ids, token_type_ids, word, position,
                                                 token_type, weight, bias, B, T, C, eps);
    default:
      unsupported_dtype("embeddings_layer_norm_forward", dtype);
  }
}

}  // namespace nlpf::cuda
