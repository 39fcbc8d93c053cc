// LayerNorm on CUDA (layer_norm_cuda.h): layer_norm_forward for inference, and the BERT embeddings fused with
// their LayerNorm (the gathered sum never reaches device memory); for training, the f32 forward that saves
// mean and rstd, and the backward. One warp per row holds the row in registers (16-byte accesses, fp32
// two-pass statistics); a row too long for that or not 16-byte aligned takes one block that reads it three
// times; in the fp8 inference path a row also leaves as E4M3 codes beside its 16-bit copy. x, out [N,C] (N =
// B T rows) of the storage dtype, weight and bias f32 [C]; biased variance as torch.nn.LayerNorm. Parameter
// gradients accumulate (+=) deterministically (no atomics), dx overwrites (=).
#include "ops/layer_norm_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "backend/cuda/warp_reduce.cuh"
#include "core/tensor.h"
#include "ops/add_cuda.h"
#include "ops/column_sums_cuda.h"
#include "ops/dropout_cuda.h"
#include "ops/dropout_keep.cuh"
#include "ops/padded_rows.cuh"

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

// The E4M3 code of y as out stores it (rounded to T first): the code quantize_e4m3_forward would read from
// out (x / scale in f32, then the hardware's saturating cvt), so the fused copy is bit-identical to LayerNorm
// followed by that op (tests/ops/bert_fused_fp8_cuda_test.cc).
template <typename T>
__device__ __forceinline__ uint8_t e4m3_of_stored(float y, float scale) {
  const float stored = to_float(from_float<T>(y));
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(__fdiv_rn(stored, scale), __NV_SATFINITE, __NV_E4M3));
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

// Rows of x [N,C] plus add [C] (f32), summed in fp32: the LayerNorm after an f32 GEMM that left its bias to
// it. x may be the output, as XRows.
template <typename T>
struct XBiasRows {
  const T* x;
  const float* add;
  int64_t C;
  struct Row {
    const T* x;
    const float* add;
    __device__ void load(int64_t c, float (&f)[kVec<T>]) const {
      load_vec(x + c, f);
#pragma unroll
      for (int e = 0; e < kVec<T>; ++e) f[e] += add[c + e];
    }
    __device__ float at(int64_t c) const {
      return to_float(x[c]) + add[c];
    }
  };
  __device__ Row row(int64_t n) const {
    return {x + n * C, add};
  }
};

// Rows of x [N,C] plus residual [N,C] plus add [C], all f32, summed in that order: the LayerNorm after an f32
// GEMM that left both its residual and its bias to it. fl(x + residual) is what the GEMM's epilogue forms
// with beta = 1 from the same product, then the bias is added as XBiasRows adds it. x may be the output, as
// XRows; residual may not. f32 only: 16-bit GEMMs add their residual themselves.
struct XResidualBiasRows {
  const float* x;
  const float* residual;
  const float* add;
  int64_t C;
  struct Row {
    const float* x;
    const float* residual;
    const float* add;
    __device__ void load(int64_t c, float (&f)[kVec<float>]) const {
      float r[kVec<float>];
      load_vec(x + c, f);
      load_vec(residual + c, r);
#pragma unroll
      for (int e = 0; e < kVec<float>; ++e) f[e] = (f[e] + r[e]) + add[c + e];
    }
    __device__ float at(int64_t c) const {
      return (x[c] + residual[c]) + add[c];
    }
  };
  __device__ Row row(int64_t n) const {
    return {x + n * C, residual + n * C, add};
  }
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

// Rows of the training forward's dropout(x) + residual (f32), the drawn dropout's values with
// ops::dropout_add_forward's roundings (x + residual without dropout), each row also stored into sum (the
// LayerNorm input its backward reads). x may be sum: a thread reads a vector before it writes it. Warp kernel
// only (load reads each element once; the block kernel would read x again after sum had replaced it).
struct DropoutAddRows {
  const float* x;
  const float* residual;
  float* sum;
  KeepSource keep;
  float scale;
  int64_t C;
  struct Row {
    const float* x;
    const float* residual;
    float* sum;
    KeepReader reader;
    float scale;
    int64_t base;  // the row's first flat index: the keep stream's element index
    __device__ void load(int64_t c, float (&f)[4]) const {
      const float4 xv = *reinterpret_cast<const float4*>(x + c);
      const float4 rv = *reinterpret_cast<const float4*>(residual + c);
      const float xs[4] = {xv.x, xv.y, xv.z, xv.w}, rs[4] = {rv.x, rv.y, rv.z, rv.w};
      float kept[4] = {1.0f, 1.0f, 1.0f, 1.0f};
      const bool dropout = reader.active();
      if (dropout) reader.four(base + c, kept);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float y = dropout ? __fmul_rn(__fmul_rn(xs[e], kept[e]), scale) : xs[e];
        f[e] = __fadd_rn(y, rs[e]);
      }
      __stwb(reinterpret_cast<float4*>(sum + c), make_float4(f[0], f[1], f[2], f[3]));
    }
  };
  __device__ Row row(int64_t n) const {
    return {x + n * C, residual + n * C, sum + n * C, KeepReader(keep), scale, n * C};
  }
};

// ---- kernels ----

constexpr int kWarpsPerBlock = 4;  // rows per block of the warp kernel: N / 4 blocks fill the SMs at N = 4096
constexpr int kGenericThreads = 256;

// out [N,C] = LayerNorm(rows), weight, bias [C]; one warp per row, kWarpsPerBlock rows per block, grid
// ceil(N / kWarpsPerBlock). Lane l holds the 16-byte vectors l + 32 k (k < NV) of the row, so C <= 32 NV V
// with V = 16 / sizeof(T), C a multiple of V and every row 16-byte aligned. Two passes over the registers:
// the centred sum of squares does not cancel like E[x^2] - mean^2 would in fp32. mean_out, rstd_out [N]
// receive the row statistics (training), or are nullptr (inference). codes [N,C], when not nullptr, receives
// the E4M3 copy of out for an fp8 GEMM (e4m3_of_stored with *code_scale; 8-byte aligned): LayerNorm's output
// is both the residual (16-bit) and the next GEMM's input, and the fusion saves re-reading it. twin [N,C],
// when not nullptr (training's f32 out only; 8-byte aligned), receives out rounded to Twin (bf16 or f16): the
// next GEMM's operand in mixed precision, beside the f32 residual. A row of `padded` (inference) leaves as
// zeros, its input unread (or, padded.already_zero, is left as it is).
template <typename T, int NV, typename Rows, typename Twin>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    layer_norm_rows_kernel(T* out, float* mean_out, float* rstd_out, uint8_t* __restrict__ codes,
                           const float* __restrict__ code_scale, Twin* __restrict__ twin, Rows rows,
                           const float* __restrict__ weight, const float* __restrict__ bias, int64_t N, int C,
                           float eps, const PaddedRows padded) {
  constexpr int V = kVec<T>;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave: the shuffles below see full warps
  const int lane = threadIdx.x % 32, vectors = C / V;
  if (padded_row(padded, n)) {  // the whole warp: n is the warp's
    if (padded.already_zero) return;
    for (int i = lane; i < vectors; i += 32) {
      __stwb(reinterpret_cast<uint4*>(out + n * C + i * V), make_uint4(0, 0, 0, 0));
      if (codes == nullptr) continue;
      if constexpr (V == 8) {
        *reinterpret_cast<uint2*>(codes + n * C + i * V) = make_uint2(0, 0);
      } else {
        *reinterpret_cast<uint32_t*>(codes + n * C + i * V) = 0;
      }
    }
    return;
  }
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
  if (mean_out != nullptr && lane == 0) {  // training: the statistics the backward reads
    mean_out[n] = mean;
    rstd_out[n] = rstd;
  }
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
    if constexpr (V == 4) {
      if (twin != nullptr) {
        const Twin* tag = twin;
        *reinterpret_cast<uint2*>(twin + n * C + i * V) =
            make_uint2(pack2(tag, y[0], y[1]), pack2(tag, y[2], y[3]));
      }
    }
    if (codes != nullptr) {
      const float scale = *code_scale;
      uint8_t q[V];
#pragma unroll
      for (int e = 0; e < V; ++e) q[e] = e4m3_of_stored<T>(y[e], scale);
      uint8_t* code_row = codes + n * C + i * V;
      if constexpr (V == 8) {
        uint2 packed;
        memcpy(&packed, q, sizeof packed);
        *reinterpret_cast<uint2*>(code_row) = packed;
      } else {
        uint32_t packed;
        memcpy(&packed, q, sizeof packed);
        *reinterpret_cast<uint32_t*>(code_row) = packed;
      }
    }
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
// read three times (from L1/L2 after the first); mean_out, rstd_out and padded as above.
template <typename T, typename Rows, typename Twin>
__global__ void __launch_bounds__(kGenericThreads)
    layer_norm_rows_generic_kernel(T* out, float* mean_out, float* rstd_out, uint8_t* __restrict__ codes,
                                   const float* __restrict__ code_scale, Twin* __restrict__ twin, Rows rows,
                                   const float* __restrict__ weight, const float* __restrict__ bias, int C,
                                   float eps, const PaddedRows padded) {
  __shared__ float scratch[kGenericThreads / 32];
  const int64_t n = blockIdx.x;
  if (padded_row(padded, n)) {  // the whole block, before any barrier
    if (padded.already_zero) return;
    for (int c = threadIdx.x; c < C; c += kGenericThreads) {
      out[n * C + c] = from_float<T>(0.0f);
      if (codes != nullptr) codes[n * C + c] = 0;
    }
    return;
  }
  const typename Rows::Row row = rows.row(n);
  const float inv_c = 1.0f / static_cast<float>(C);
  float sum = 0.0f;
  for (int c = threadIdx.x; c < C; c += kGenericThreads) sum += row.at(c);
  const float mean = block_sum(sum, scratch) * inv_c;
  float sq = 0.0f;
  for (int c = threadIdx.x; c < C; c += kGenericThreads) sq += (row.at(c) - mean) * (row.at(c) - mean);
  const float rstd = rsqrtf(block_sum(sq, scratch) * inv_c + eps);
  if (mean_out != nullptr && threadIdx.x == 0) {
    mean_out[n] = mean;
    rstd_out[n] = rstd;
  }
  T* out_row = out + n * C;
  const float scale = codes != nullptr ? *code_scale : 1.0f;
  for (int c = threadIdx.x; c < C; c += kGenericThreads) {
    const float y = (row.at(c) - mean) * rstd * weight[c] + bias[c];
    out_row[c] = from_float<T>(y);
    if (twin != nullptr) twin[n * C + c] = from_float<Twin>(y);
    if (codes != nullptr) codes[n * C + c] = e4m3_of_stored<T>(y, scale);
  }
}

// The E4M3 copy of a LayerNorm's output (nullptr codes: none).
struct CodesOut {
  uint8_t* codes = nullptr;
  const float* scale = nullptr;
};

template <typename T, int NV, typename Rows, typename Twin>
void launch_warp_rows(CudaContext& ctx, T* out, float* mean, float* rstd, CodesOut codes, Twin* twin,
                      const Rows& rows, const float* weight, const float* bias, int64_t N, int64_t C,
                      float eps, const PaddedRows& padded) {
  const auto blocks = static_cast<unsigned>((N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  layer_norm_rows_kernel<T, NV, Rows, Twin><<<blocks, kWarpsPerBlock * 32, 0, ctx.stream()>>>(
      out, mean, rstd, codes.codes, codes.scale, twin, rows, weight, bias, N, static_cast<int>(C), eps,
      padded);
  NLPF_CUDA_CHECK_LAUNCH();
}

// Whether rows of C elements of T fit the warp kernel (aligned: every pointer 16-byte aligned).
template <typename T>
bool fits_warp_kernel(int64_t C, bool aligned) {
  return aligned && C % kVec<T> == 0 && (C / kVec<T> + 31) / 32 <= 8;
}

// The warp kernel when the rows fit it (vectors per lane NV in {1, 2, 3, 4, 6, 8}: C = 768 is 3 at 16 bits
// and 6 at f32, with no idle lanes), else the block kernel. mean and rstd [N] receive the statistics, or are
// both nullptr (inference); codes receive the E4M3 copy (inference, fp8) or are empty; twin (f32 out only)
// receives out rounded to 16 bits, or is nullptr.

template <typename T, typename Rows, typename Twin = __nv_bfloat16>
void launch_rows(CudaContext& ctx, T* out, float* mean, float* rstd, CodesOut codes, const Rows& rows,
                 const float* weight, const float* bias, int64_t N, int64_t C, double eps, bool aligned,
                 Twin* twin = nullptr, const PaddedRows& padded = {}) {
  constexpr int V = kVec<T>;
  NLPF_CHECK(C > 0 && C <= 0x7fffffff && N <= 0x7fffffff, ErrorCode::UNSUPPORTED,
             "layer_norm (cuda): N = ", N, ", C = ", C);
  if (N == 0) return;
  const auto eps_f = static_cast<float>(eps);
  const int64_t per_lane = (C / V + 31) / 32;
  if (fits_warp_kernel<T>(C, aligned)) {
    switch (per_lane) {
      case 1:
        return launch_warp_rows<T, 1>(ctx, out, mean, rstd, codes, twin, rows, weight, bias, N, C, eps_f,
                                      padded);
      case 2:
        return launch_warp_rows<T, 2>(ctx, out, mean, rstd, codes, twin, rows, weight, bias, N, C, eps_f,
                                      padded);
      case 3:
        return launch_warp_rows<T, 3>(ctx, out, mean, rstd, codes, twin, rows, weight, bias, N, C, eps_f,
                                      padded);
      case 4:
        return launch_warp_rows<T, 4>(ctx, out, mean, rstd, codes, twin, rows, weight, bias, N, C, eps_f,
                                      padded);
      case 5:
      case 6:
        return launch_warp_rows<T, 6>(ctx, out, mean, rstd, codes, twin, rows, weight, bias, N, C, eps_f,
                                      padded);
      default:
        return launch_warp_rows<T, 8>(ctx, out, mean, rstd, codes, twin, rows, weight, bias, N, C, eps_f,
                                      padded);
    }
  }
  if constexpr (std::is_same_v<Rows, DropoutAddRows>) {
    NLPF_THROW(ErrorCode::INTERNAL, "layer_norm (cuda): the fused dropout-add rows need the warp kernel");
  } else {
    layer_norm_rows_generic_kernel<T, Rows, Twin>
        <<<static_cast<unsigned>(N), kGenericThreads, 0, ctx.stream()>>>(
            out, mean, rstd, codes.codes, codes.scale, twin, rows, weight, bias, static_cast<int>(C), eps_f,
            padded);
    NLPF_CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void layer_norm_typed(CudaContext& ctx, void* out, const void* x, const float* weight, const float* bias,
                      int64_t N, int64_t C, double eps, CodesOut codes, const PaddedRows& padded,
                      const float* x_bias, const float* x_residual) {
  const bool aligned = aligned16(out) && aligned16(x) && aligned16(weight) && aligned16(bias) &&
                       aligned16(codes.codes) && aligned16(x_residual);
  const auto rows_launch = [&](const auto& rows) {
    launch_rows(ctx, static_cast<T*>(out), nullptr, nullptr, codes, rows, weight, bias, N, C, eps, aligned,
                static_cast<__nv_bfloat16*>(nullptr), padded);
  };
  const auto* x_t = static_cast<const T*>(x);
  if constexpr (std::is_same_v<T, float>) {  // the residual of an f32 GEMM only (layer_norm_forward checks)
    if (x_residual != nullptr) return rows_launch(XResidualBiasRows{x_t, x_residual, x_bias, C});
  }
  if (x_bias != nullptr) {
    rows_launch(XBiasRows<T>{x_t, x_bias, C});
  } else {
    rows_launch(XRows<T>{x_t, C});
  }
}

template <typename T>
void embeddings_layer_norm_typed(CudaContext& ctx, void* out, const int32_t* input_ids,
                                 const int32_t* token_type_ids, const void* word, const void* position,
                                 const void* token_type, const float* weight, const float* bias, int64_t B,
                                 int64_t T_len, int64_t C, double eps, CodesOut codes,
                                 const PaddedRows& padded) {
  const bool aligned = aligned16(out) && aligned16(word) && aligned16(position) && aligned16(token_type) &&
                       aligned16(weight) && aligned16(bias) && aligned16(codes.codes);
  const EmbeddingRows<T> rows{input_ids,
                              token_type_ids,
                              static_cast<const T*>(word),
                              static_cast<const T*>(position),
                              static_cast<const T*>(token_type),
                              T_len,
                              C};
  launch_rows(ctx, static_cast<T*>(out), nullptr, nullptr, codes, rows, weight, bias, B * T_len, C, eps,
              aligned, static_cast<__nv_bfloat16*>(nullptr), padded);
}

// ---- backward (f32, training) ----
//
// dx per row: with xhat = (x - mean) rstd and g = dout weight, dx = rstd (g - mean_C(g) - xhat mean_C(g
// xhat)) (the CPU reference's formula). The row sums and the formula run in double, as the CPU reference
// does, so the two agree to float rounding; the H200's FP64 rate keeps this memory-bound. dweight = sum_N
// dout xhat, dbias = sum_N dout (+=): a deterministic two-pass reduction over rows, no atomics. Pass 1
// (partial kernel): row chunks of a fixed size (a function of N only) times column tiles; a block sums its
// chunk in a fixed order into double partials [chunks, 2, C] in a workspace. Pass 2 (finish_column_sums,
// shared with the bias gradient): each column sums the chunks in a fixed order and adds the float-rounded
// total, as the CPU does (dweight[c] += float(sum)). The same inputs give the same bits on every run.

constexpr int kBackwardWarps = 4;         // rows per block of the dx kernel, one warp each
constexpr int kColumnTile = 32;           // columns of a partial-sum block: one 128-byte row segment per warp
constexpr int kRowLanes = 8;              // rows a partial-sum block reads at once
constexpr int64_t kMinRowsPerChunk = 64;  // rows of one partial sum, at least
constexpr int64_t kMaxChunks = 256;       // partial sums per column, at most

__device__ __forceinline__ double warp_sum_double(double v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// dx [N,C] (=) from dout, x [N,C], weight [C], mean, rstd [N]; one warp per row, kBackwardWarps rows per
// block, grid ceil(N / kBackwardWarps). kPer > 0 (C <= 32 kPer, C a multiple of 4, dx, dout, x and weight
// 16-byte aligned, copy aligned for store4): the row's dout and x stay in registers, read once in 16-byte
// vectors with every load in flight, a lane owning runs of 4 columns (run r of lane l: columns 4 (l + 32 r)
// ..+3), and dx and copy leave in vectors too; kPer == 0 (any C, any alignment): two passes over the row in
// memory (the second from L1/L2), a lane owning every 32nd column. The row sums run in double in either order
// (the float results agree to the rounding). Scalar 4-byte accesses in the run layout took 32 us a row set
// of bert-base's training step on the H200 (2026-11-30), twice its memory time.
// copy [N,C], unless nullptr, also receives dx times the keep values of `keep` times scale (the drawn
// dropout's backward, dropout_forward's roundings; dx itself where keep is inactive), rounded to Out: the
// next GEMM's dy operand, written in the same pass (Out float for an f32 GEMM, 16-bit in mixed precision).
// Up to bert-base's width (kPer 24: 96 registers, no spills) the bounds ask for 5 blocks (20 warps) an SM.
template <typename Out, int kPer>
__global__ void __launch_bounds__(kBackwardWarps * 32, kPer <= 24 ? 5 : 1)
    layer_norm_backward_dx_kernel(float* __restrict__ dx, const float* __restrict__ dout,
                                  const float* __restrict__ x, const float* __restrict__ weight,
                                  const float* __restrict__ mean, const float* __restrict__ rstd, int64_t N,
                                  int64_t C, Out* __restrict__ copy, const KeepSource keep, float scale) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kBackwardWarps + threadIdx.x / 32;
  if (n >= N) return;  // whole warps leave: the shuffles below see full warps
  const int lane = threadIdx.x % 32;
  const float* dout_row = dout + n * C;
  const float* x_row = x + n * C;
  float* dx_row = dx + n * C;
  const double m = mean[n], s = rstd[n];
  const KeepReader reader(keep);
  const bool dropout = reader.active() && copy != nullptr;
  double g_sum = 0, gx_sum = 0;
  const auto add = [&](float dout_c, float weight_c, float x_c) {
    const double g = static_cast<double>(dout_c) * weight_c;
    g_sum += g;
    gx_sum += g * (x_c - m) * s;
  };
  // dx of one element from the row sums' means.
  const auto dx_of = [&](float dout_c, float weight_c, float x_c, double g_mean, double gx_mean) {
    const double g = static_cast<double>(dout_c) * weight_c;
    return static_cast<float>(s * (g - g_mean - (x_c - m) * s * gx_mean));
  };
  // The copy's value of d with keep value `kept`.
  const auto copied = [&](float d, float kept) { return dropout ? __fmul_rn(__fmul_rn(d, kept), scale) : d; };
  if constexpr (kPer > 0) {
    constexpr int kRuns = kPer / 4;
    float4 held_dout[kRuns], held_x[kRuns];
#pragma unroll
    for (int r = 0; r < kRuns; ++r) {
      const int64_t c0 = 4 * (lane + 32 * r);
      held_dout[r] = c0 < C ? *reinterpret_cast<const float4*>(dout_row + c0) : float4{};
      held_x[r] = c0 < C ? *reinterpret_cast<const float4*>(x_row + c0) : float4{};
    }
#pragma unroll
    for (int r = 0; r < kRuns; ++r) {
      const int64_t c0 = 4 * (lane + 32 * r);
      if (c0 >= C) continue;
      const float4 w = *reinterpret_cast<const float4*>(weight + c0);
      add(held_dout[r].x, w.x, held_x[r].x);
      add(held_dout[r].y, w.y, held_x[r].y);
      add(held_dout[r].z, w.z, held_x[r].z);
      add(held_dout[r].w, w.w, held_x[r].w);
    }
    const double g_mean = warp_sum_double(g_sum) / static_cast<double>(C);
    const double gx_mean = warp_sum_double(gx_sum) / static_cast<double>(C);
#pragma unroll
    for (int r = 0; r < kRuns; ++r) {
      const int64_t c0 = 4 * (lane + 32 * r);
      if (c0 >= C) continue;
      const float4 w = *reinterpret_cast<const float4*>(weight + c0);
      const float4 o = held_dout[r], v = held_x[r];
      const float4 d =
          make_float4(dx_of(o.x, w.x, v.x, g_mean, gx_mean), dx_of(o.y, w.y, v.y, g_mean, gx_mean),
                      dx_of(o.z, w.z, v.z, g_mean, gx_mean), dx_of(o.w, w.w, v.w, g_mean, gx_mean));
      __stwb(reinterpret_cast<float4*>(dx_row + c0), d);
      if (copy != nullptr) {
        float kept[4] = {1.0f, 1.0f, 1.0f, 1.0f};
        if (dropout) reader.four(n * C + c0, kept);
        store4(copy + n * C + c0, make_float4(copied(d.x, kept[0]), copied(d.y, kept[1]),
                                              copied(d.z, kept[2]), copied(d.w, kept[3])));
      }
    }
  } else {
    for (int64_t c = lane; c < C; c += 32) add(dout_row[c], weight[c], x_row[c]);
    const double g_mean = warp_sum_double(g_sum) / static_cast<double>(C);
    const double gx_mean = warp_sum_double(gx_sum) / static_cast<double>(C);
    for (int64_t c = lane; c < C; c += 32) {
      const float d = dx_of(dout_row[c], weight[c], x_row[c], g_mean, gx_mean);
      dx_row[c] = d;
      if (copy != nullptr) copy[n * C + c] = from_float<Out>(copied(d, dropout ? reader(n * C + c) : 1.0f));
    }
  }
}

// partial [chunks, 2, C]: partial[k][0][c] = sum over rows n of chunk k of dout[n,c] xhat[n,c],
// partial[k][1][c] = sum of dout[n,c]; chunk k is rows [k rows_per_chunk, min(N, (k + 1) rows_per_chunk)).
// Block (kColumnTile, kRowLanes) threads, grid (ceil(C / kColumnTile), chunks): thread (tx, ty) sums rows ty,
// ty + kRowLanes, ... of the chunk for column tile * kColumnTile + tx, then thread row 0 adds the kRowLanes
// sums in order.
__global__ void __launch_bounds__(kColumnTile* kRowLanes)
    layer_norm_backward_partial_kernel(double* __restrict__ partial, const float* __restrict__ dout,
                                       const float* __restrict__ x, const float* __restrict__ mean,
                                       const float* __restrict__ rstd, int64_t N, int64_t C,
                                       int64_t rows_per_chunk) {
  __shared__ double dw_lanes[kRowLanes][kColumnTile];
  __shared__ double db_lanes[kRowLanes][kColumnTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnTile + tx;
  const int64_t chunk = blockIdx.y;
  const int64_t row_begin = chunk * rows_per_chunk;
  const int64_t row_end = row_begin + rows_per_chunk < N ? row_begin + rows_per_chunk : N;
  double dw = 0, db = 0;
  if (c < C) {
    for (int64_t n = row_begin + ty; n < row_end; n += kRowLanes) {
      const double d = dout[n * C + c];
      dw += d * (x[n * C + c] - static_cast<double>(mean[n])) * rstd[n];
      db += d;
    }
  }
  dw_lanes[ty][tx] = dw;
  db_lanes[ty][tx] = db;
  __syncthreads();
  if (ty == 0 && c < C) {
    double dw_total = 0, db_total = 0;
#pragma unroll
    for (int lane = 0; lane < kRowLanes; ++lane) {
      dw_total += dw_lanes[lane][tx];
      db_total += db_lanes[lane][tx];
    }
    partial[(chunk * 2) * C + c] = dw_total;
    partial[(chunk * 2 + 1) * C + c] = db_total;
  }
}

// The f32 training forward's launch (op names the caller in errors) with the 16-bit copy twin of twin_dtype,
// or none where twin is nullptr.
template <typename Rows>
void launch_training_rows(const char* op, CudaContext& ctx, float* out, float* mean, float* rstd,
                          const Rows& rows, const float* weight, const float* bias, int64_t N, int64_t C,
                          double eps, bool aligned, void* twin, DType twin_dtype) {
  if (twin == nullptr || twin_dtype == DType::BF16) {
    launch_rows(ctx, out, mean, rstd, CodesOut{}, rows, weight, bias, N, C, eps, aligned,
                static_cast<__nv_bfloat16*>(twin));
    return;
  }
  NLPF_CHECK(twin_dtype == DType::F16, ErrorCode::UNSUPPORTED, op, " (cuda): a ", dtype_name(twin_dtype),
             " copy of the output (expected bf16 or f16)");
  launch_rows(ctx, out, mean, rstd, CodesOut{}, rows, weight, bias, N, C, eps, aligned,
              static_cast<__half*>(twin));
}

[[noreturn]] void unsupported_dtype(const char* op, DType dtype) {
  NLPF_THROW(ErrorCode::UNSUPPORTED, op, " (cuda): dtype ", dtype_name(dtype), ", expected f32, bf16 or f16");
}

}  // namespace

void layer_norm_forward(ExecutionContext& ctx, void* out, const void* x, const float* weight,
                        const float* bias, DType dtype, int64_t N, int64_t C, double eps, uint8_t* codes,
                        const float* code_scale, const PaddedRows& padded, const float* x_bias,
                        const float* x_residual) {
  CudaContext& cuda = cuda_context(ctx);
  NLPF_CHECK((codes == nullptr) == (code_scale == nullptr), ErrorCode::INVALID_ARGUMENT,
             "layer_norm_forward (cuda): codes and code_scale are given together or not at all");
  NLPF_CHECK(x_residual == nullptr || (dtype == DType::F32 && x_bias != nullptr && x_residual != out),
             ErrorCode::INVALID_ARGUMENT,
             "layer_norm_forward (cuda): a residual is f32's, comes with a bias, and is not the output");
  NLPF_CHECK(!padded.already_zero || (out == x && codes == nullptr), ErrorCode::INVALID_ARGUMENT,
             "layer_norm_forward (cuda): rows left as zeros need out == x and no E4M3 copy");
  check_padded_rows("layer_norm_forward", padded, N);
  const CodesOut q{codes, code_scale};
  switch (dtype) {
    case DType::F32:
      return layer_norm_typed<float>(cuda, out, x, weight, bias, N, C, eps, q, padded, x_bias, x_residual);
    case DType::BF16:
      return layer_norm_typed<__nv_bfloat16>(cuda, out, x, weight, bias, N, C, eps, q, padded, x_bias,
                                             x_residual);
    case DType::F16:
      return layer_norm_typed<__half>(cuda, out, x, weight, bias, N, C, eps, q, padded, x_bias, x_residual);
    default:
      unsupported_dtype("layer_norm_forward", dtype);
  }
}

void embeddings_layer_norm_forward(ExecutionContext& ctx, void* out, const int32_t* input_ids,
                                   const int32_t* token_type_ids, const void* word, const void* position,
                                   const void* token_type, const float* weight, const float* bias,
                                   DType dtype, int64_t B, int64_t T, int64_t C, double eps, uint8_t* codes,
                                   const float* code_scale, const PaddedRows& padded) {
  CudaContext& cuda = cuda_context(ctx);
  NLPF_CHECK((codes == nullptr) == (code_scale == nullptr), ErrorCode::INVALID_ARGUMENT,
             "embeddings_layer_norm_forward (cuda): codes and code_scale are given together or not at all");
  check_padded_rows("embeddings_layer_norm_forward", padded, B * T);
  const CodesOut q{codes, code_scale};
  switch (dtype) {
    case DType::F32:
      return embeddings_layer_norm_typed<float>(cuda, out, input_ids, token_type_ids, word, position,
                                                token_type, weight, bias, B, T, C, eps, q, padded);
    case DType::BF16:
      return embeddings_layer_norm_typed<__nv_bfloat16>(cuda, out, input_ids, token_type_ids, word, position,
                                                        token_type, weight, bias, B, T, C, eps, q, padded);
    case DType::F16:
      return embeddings_layer_norm_typed<__half>(cuda, out, input_ids, token_type_ids, word, position,
                                                 token_type, weight, bias, B, T, C, eps, q, padded);
    default:
      unsupported_dtype("embeddings_layer_norm_forward", dtype);
  }
}

void layer_norm_forward(ExecutionContext& ctx, float* out, float* mean, float* rstd, const float* x,
                        const float* weight, const float* bias, int64_t N, int64_t C, double eps, void* twin,
                        DType twin_dtype) {
  CudaContext& cuda = cuda_context(ctx);
  const bool aligned =
      aligned16(out) && aligned16(x) && aligned16(weight) && aligned16(bias) && aligned4(twin, twin_dtype);
  launch_training_rows("layer_norm_forward", cuda, out, mean, rstd, XRows<float>{x, C}, weight, bias, N, C,
                       eps, aligned, twin, twin_dtype);
}

void dropout_add_layer_norm_forward(ExecutionContext& ctx, float* sum, float* out, float* mean, float* rstd,
                                    const float* x, const float* residual, const KeepSource& keep,
                                    float scale, const float* weight, const float* bias, int64_t N, int64_t C,
                                    double eps, void* twin, DType twin_dtype) {
  NLPF_CHECK(keep.mask == nullptr, ErrorCode::INVALID_ARGUMENT,
             "dropout_add_layer_norm_forward (cuda): a stored mask (the drawn form only)");
  CudaContext& cuda = cuda_context(ctx);
  const bool aligned = aligned16(sum) && aligned16(out) && aligned16(x) && aligned16(residual) &&
                       aligned16(weight) && aligned16(bias) && aligned4(twin, twin_dtype);
  if (!fits_warp_kernel<float>(C, aligned)) {  // the two passes: the same values
    if (keep.active()) {
      dropout_forward(ctx, sum, x, keep, scale, N * C, residual);
    } else {
      add_forward(ctx, sum, x, residual, N * C);
    }
    layer_norm_forward(ctx, out, mean, rstd, sum, weight, bias, N, C, eps, twin, twin_dtype);
    return;
  }
  launch_training_rows("dropout_add_layer_norm_forward", cuda, out, mean, rstd,
                       DropoutAddRows{x, residual, sum, keep, scale, C}, weight, bias, N, C, eps, aligned,
                       twin, twin_dtype);
}

void layer_norm_backward(ExecutionContext& ctx, float* dx, float* dweight, float* dbias, const float* dout,
                         const float* x, const float* weight, const float* mean, const float* rstd, int64_t N,
                         int64_t C, void* copy, DType copy_dtype, const KeepSource& keep, float scale) {
  NLPF_CHECK(N >= 0 && C > 0, ErrorCode::INVALID_ARGUMENT, "layer_norm_backward (cuda): N = ", N,
             ", C = ", C);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t column_tiles = (C + kColumnTile - 1) / kColumnTile;
  NLPF_CHECK((N + kBackwardWarps - 1) / kBackwardWarps <= 0x7fffffff && column_tiles <= 0x7fffffff,
             ErrorCode::UNSUPPORTED, "layer_norm_backward (cuda): N = ", N, ", C = ", C, " exceed the grid");
  NLPF_CHECK(keep.mask == nullptr, ErrorCode::INVALID_ARGUMENT,
             "layer_norm_backward (cuda): a stored mask for the gradient's copy (the drawn form only)");
  const auto blocks = static_cast<unsigned>((N + kBackwardWarps - 1) / kBackwardWarps);
  const bool vectors = C % 4 == 0 && aligned16(dx) && aligned16(dout) && aligned16(x) && aligned16(weight) &&
                       (copy == nullptr || aligned4(copy, copy_dtype));
  with_float_type("layer_norm_backward", copy == nullptr ? DType::F32 : copy_dtype, [&]<typename Out>(Out*) {
    const auto launch = [&]<int kPer>() {
      layer_norm_backward_dx_kernel<Out, kPer><<<blocks, kBackwardWarps * 32, 0, cuda.stream()>>>(
          dx, dout, x, weight, mean, rstd, N, C, static_cast<Out*>(copy), keep, scale);
    };
    // Values a lane holds: BERT's widths (384 MiniLM, 768 base, 1024 large) in registers, wider, odd or
    // unaligned rows in memory.
    if (!vectors) {
      launch.template operator()<0>();
    } else if (C <= 32 * 4) {
      launch.template operator()<4>();
    } else if (C <= 32 * 8) {
      launch.template operator()<8>();
    } else if (C <= 32 * 12) {
      launch.template operator()<12>();
    } else if (C <= 32 * 16) {
      launch.template operator()<16>();
    } else if (C <= 32 * 24) {
      launch.template operator()<24>();
    } else if (C <= 32 * 32) {
      launch.template operator()<32>();
    } else {
      launch.template operator()<0>();
    }
    NLPF_CUDA_CHECK_LAUNCH();
  });

  // The chunking depends on N only, so the summation order (and the result) does not depend on the device.
  const int64_t rows_per_chunk = std::max(kMinRowsPerChunk, (N + kMaxChunks - 1) / kMaxChunks);
  const int64_t chunks = (N + rows_per_chunk - 1) / rows_per_chunk;  // <= kMaxChunks: a valid grid.y
  Buffer partial(ctx.allocator(), static_cast<size_t>(chunks * 2 * C) * sizeof(double));
  layer_norm_backward_partial_kernel<<<dim3(static_cast<unsigned>(column_tiles),
                                            static_cast<unsigned>(chunks)),
                                       dim3(kColumnTile, kRowLanes), 0, cuda.stream()>>>(
      static_cast<double*>(partial.data()), dout, x, mean, rstd, N, C, rows_per_chunk);
  NLPF_CUDA_CHECK_LAUNCH();
  // partial [chunks, 2, C] is width 2C: dweight's C columns, then dbias's.
  finish_column_sums(ctx, dweight, dbias, C, static_cast<double*>(partial.data()), chunks, 2 * C);
}

}  // namespace nlpf::cuda
