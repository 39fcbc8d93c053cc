// The training attention on CUDA (attention_cuda.h): f32, probabilities saved [B,NH,T,T], dropout by a keep
// mask, the CPU reference's formulas (attention_cpu.cc) one query or key row per warp. Simple rather than
// fast: every product is a dot over HS read from global memory (L1/L2 serve the reuse), sums run in a fixed
// order per lane and reduce by a fixed shuffle tree, so results are the same bits at every run (no atomics).
// Layouts: q, k, v, out and their gradients [B,T,C] with head h in channels [h HS, (h+1) HS); probs, keep
// [B,NH,T,T] (query t, key s); attention_mask [B,T]. Activation gradients overwrite (=).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "core/tensor.h"
#include "ops/attention_cuda.h"

namespace nlpf::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kMaxWarpsPerBlock = 4;
constexpr size_t kMaxSharedBytes = 48 * 1024;  // static-launch limit without opting in

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(kFullMask, x, offset);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(kFullMask, x, offset));
  return x;
}

// Whether any key of mask_b [T] is a token; the whole warp gets the answer.
__device__ __forceinline__ bool any_token(const int32_t* mask_b, int64_t T, int lane) {
  bool any = false;
  for (int64_t s = lane; s < T; s += kWarp) any |= mask_b[s] != 0;
  return __any_sync(kFullMask, any);
}

// a [HS] . b [HS] in index order.
__device__ __forceinline__ float dot(const float* a, const float* b, int64_t HS) {
  float sum = 0.0f;
  for (int64_t d = 0; d < HS; ++d) sum = fmaf(a[d], b[d], sum);
  return sum;
}

struct Dims {
  int64_t B, T, NH, HS;
};

// Row r of [B,NH,T] rows as (b, h, t), and the offset of (b, t, h) in [B,T,C].
struct Row {
  int64_t b, h, t, head;
};
__device__ __forceinline__ Row row_of(int64_t row, const Dims& d) {
  Row r;
  r.t = row % d.T;
  const int64_t bh = row / d.T;
  r.h = bh % d.NH;
  r.b = bh / d.NH;
  r.head = (r.b * d.T + r.t) * d.NH * d.HS + r.h * d.HS;
  return r;
}

// out [B,T,C] (=), probs [B,NH,T,T] (=); a warp per query row (b, h, t), blockDim.x / 32 rows per block,
// dynamic shared memory (HS + T) floats per warp: the query row, then the row of probabilities.
__global__ void attention_forward_kernel(float* __restrict__ out, float* __restrict__ probs,
                                         const float* __restrict__ q, const float* __restrict__ k,
                                         const float* __restrict__ v, const int32_t* __restrict__ mask,
                                         const float* __restrict__ keep, float keep_scale, Dims dims,
                                         float scale, float uniform) {
  extern __shared__ float shared[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (row >= dims.B * dims.NH * dims.T) return;  // whole warps leave: only warp-level syncs follow
  const int64_t T = dims.T, HS = dims.HS, C = dims.NH * dims.HS;
  const Row r = row_of(row, dims);
  float* q_row = shared + warp * (HS + T);
  float* p = q_row + HS;
  for (int64_t d = lane; d < HS; d += kWarp) q_row[d] = q[r.head + d];
  __syncwarp();
  const int32_t* mask_b = mask + r.b * T;
  const int64_t key0 = r.b * T * C + r.h * HS;  // (b, s = 0, h)
  // Each lane owns keys s = lane + 32 j until the product with v: no sync needed in between.
  if (!any_token(mask_b, T, lane)) {
    for (int64_t s = lane; s < T; s += kWarp) p[s] = uniform;  // HF's finfo.min absorbs every score
  } else {
    float local_max = -INFINITY;
    for (int64_t s = lane; s < T; s += kWarp) {
      if (mask_b[s] == 0) continue;
      p[s] = scale * dot(q_row, k + key0 + s * C, HS);
      local_max = fmaxf(local_max, p[s]);
    }
    const float max_score = warp_max(local_max);  // finite: some key is a token
    float local_sum = 0.0f;
    for (int64_t s = lane; s < T; s += kWarp) {
      p[s] = mask_b[s] != 0 ? expf(p[s] - max_score) : 0.0f;
      local_sum += p[s];
    }
    const float inv_sum = 1.0f / warp_sum(local_sum);
    for (int64_t s = lane; s < T; s += kWarp) p[s] *= inv_sum;
  }
  float* probs_row = probs + row * T;
  const float* keep_row = keep != nullptr ? keep + row * T : nullptr;
  for (int64_t s = lane; s < T; s += kWarp) {
    probs_row[s] = p[s];
    if (keep_row != nullptr) p[s] = p[s] * keep_row[s] * keep_scale;
  }
  __syncwarp();
  for (int64_t d = lane; d < HS; d += kWarp) {
    float sum = 0.0f;
    for (int64_t s = 0; s < T; ++s) sum = fmaf(p[s], v[key0 + s * C + d], sum);
    out[r.head + d] = sum;
  }
}

// dq [B,T,C] (=) and row_sum [B,NH,T] (=) rowsum(p dp) of each query row; a warp per query row, shared
// memory (HS + T) floats per warp: the row of dout, then dp and dscore of the row.
__global__ void attention_backward_query_kernel(float* __restrict__ dq, float* __restrict__ row_sum,
                                                const float* __restrict__ dout, const float* __restrict__ k,
                                                const float* __restrict__ v, const int32_t* __restrict__ mask,
                                                const float* __restrict__ probs,
                                                const float* __restrict__ keep, float keep_scale, Dims dims,
                                                float scale) {
  extern __shared__ float shared[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (row >= dims.B * dims.NH * dims.T) return;
  const int64_t T = dims.T, HS = dims.HS, C = dims.NH * dims.HS;
  const Row r = row_of(row, dims);
  if (!any_token(mask + r.b * T, T, lane)) {  // constant probabilities: dscore = 0
    for (int64_t d = lane; d < HS; d += kWarp) dq[r.head + d] = 0.0f;
    if (lane == 0) row_sum[row] = 0.0f;
    return;
  }
  float* dout_row = shared + warp * (HS + T);
  float* ds = dout_row + HS;
  for (int64_t d = lane; d < HS; d += kWarp) dout_row[d] = dout[r.head + d];
  __syncwarp();
  const int64_t key0 = r.b * T * C + r.h * HS;
  const float* p = probs + row * T;
  const float* keep_row = keep != nullptr ? keep + row * T : nullptr;
  float local = 0.0f;
  for (int64_t s = lane; s < T; s += kWarp) {
    float dp = dot(dout_row, v + key0 + s * C, HS);
    if (keep_row != nullptr) dp = dp * keep_row[s] * keep_scale;
    ds[s] = dp;
    local += p[s] * dp;
  }
  const float weighted_sum = warp_sum(local);
  // Masked keys have p = 0, so their dscore is 0 and they feed nothing into dq, dk.
  for (int64_t s = lane; s < T; s += kWarp) ds[s] = scale * p[s] * (ds[s] - weighted_sum);
  __syncwarp();
  for (int64_t d = lane; d < HS; d += kWarp) {
    float sum = 0.0f;
    for (int64_t s = 0; s < T; ++s) sum = fmaf(ds[s], k[key0 + s * C + d], sum);
    dq[r.head + d] = sum;
  }
  if (lane == 0) row_sum[row] = weighted_sum;
}

// dk, dv [B,T,C] (=); a warp per key row (b, h, s), shared memory (HS + 2 T) floats per warp: the row of v,
// then the column s of dropout(probs) and of dscore (dp recomputed from dout and v, the row sums read back).
__global__ void attention_backward_key_kernel(float* __restrict__ dk, float* __restrict__ dv,
                                              const float* __restrict__ dout, const float* __restrict__ q,
                                              const float* __restrict__ v, const int32_t* __restrict__ mask,
                                              const float* __restrict__ probs, const float* __restrict__ keep,
                                              const float* __restrict__ row_sum, float keep_scale, Dims dims,
                                              float scale) {
  extern __shared__ float shared[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t key_row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (key_row >= dims.B * dims.NH * dims.T) return;
  const int64_t T = dims.T, HS = dims.HS, C = dims.NH * dims.HS;
  const Row r = row_of(key_row, dims);  // r.t is the key s
  const int64_t s = r.t, bh = key_row / T;
  const bool tokens = any_token(mask + r.b * T, T, lane);
  float* v_row = shared + warp * (HS + 2 * T);
  float* pd = v_row + HS;
  float* ds = pd + T;
  for (int64_t d = lane; d < HS; d += kWarp) v_row[d] = v[r.head + d];
  __syncwarp();
  const int64_t query0 = r.b * T * C + r.h * HS;  // (b, t = 0, h)
  for (int64_t t = lane; t < T; t += kWarp) {
    const int64_t at = (bh * T + t) * T + s;  // (b, h, t, s) in probs and keep
    const float p = probs[at];
    pd[t] = keep != nullptr ? p * keep[at] * keep_scale : p;
    if (!tokens) continue;
    float dp = dot(dout + query0 + t * C, v_row, HS);
    if (keep != nullptr) dp = dp * keep[at] * keep_scale;
    ds[t] = scale * p * (dp - row_sum[bh * T + t]);
  }
  __syncwarp();
  for (int64_t d = lane; d < HS; d += kWarp) {
    float sum_v = 0.0f, sum_k = 0.0f;
    for (int64_t t = 0; t < T; ++t) {
      sum_v = fmaf(pd[t], dout[query0 + t * C + d], sum_v);
      if (tokens) sum_k = fmaf(ds[t], q[query0 + t * C + d], sum_k);
    }
    dv[r.head + d] = sum_v;
    dk[r.head + d] = sum_k;
  }
}

// Launch geometry: up to kMaxWarpsPerBlock warps (rows) per block, fewer where their shared rows would pass
// the 48 KB a launch gets without opting in.
struct Launch {
  unsigned blocks;
  int threads;
  size_t shared_bytes;
};

Launch launch_for(const char* op, int64_t rows, int64_t floats_per_warp) {
  int warps = kMaxWarpsPerBlock;
  const size_t per_warp = static_cast<size_t>(floats_per_warp) * sizeof(float);
  while (warps > 1 && warps * per_warp > kMaxSharedBytes) warps /= 2;
  NLPF_CHECK(warps * per_warp <= kMaxSharedBytes, ErrorCode::UNSUPPORTED, op, ": a row of ", floats_per_warp,
             " floats exceeds the kernel's shared memory (T or HS too large)");
  const int64_t blocks = (rows + warps - 1) / warps;
  NLPF_CHECK(blocks <= 0x7fffffff, ErrorCode::UNSUPPORTED, op, ": ", rows, " rows exceed the grid");
  return Launch{static_cast<unsigned>(blocks), warps * kWarp, warps * per_warp};
}

float scale_of(int64_t HS) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(HS)));
}

}  // namespace

void attention_forward(ExecutionContext& base, float* out, float* probs, const float* q, const float* k,
                       const float* v, const int32_t* attention_mask, const float* keep, float keep_scale,
                       int64_t B, int64_t T, int64_t NH, int64_t HS) {
  CudaContext& ctx = cuda_context(base);
  const int64_t rows = B * NH * T;
  if (rows == 0 || HS == 0) return;
  const Launch l = launch_for("attention_forward (cuda)", rows, HS + T);
  const float uniform = static_cast<float>(1.0 / static_cast<double>(T));  // the CPU's rounding
  attention_forward_kernel<<<l.blocks, l.threads, l.shared_bytes, ctx.stream()>>>(
      out, probs, q, k, v, attention_mask, keep, keep_scale, Dims{B, T, NH, HS}, scale_of(HS), uniform);
  NLPF_CUDA_CHECK_LAUNCH();
}

void attention_backward(ExecutionContext& base, float* dq, float* dk, float* dv, const float* dout,
                        const float* q, const float* k, const float* v, const int32_t* attention_mask,
                        const float* probs, const float* keep, float keep_scale, int64_t B, int64_t T,
                        int64_t NH, int64_t HS) {
  CudaContext& ctx = cuda_context(base);
  const int64_t rows = B * NH * T;
  if (rows == 0 || HS == 0) return;
  const Dims dims{B, T, NH, HS};
  const float scale = scale_of(HS);
  // Stream-ordered scratch: rowsum(p dp) of every query row, from the query kernel to the key kernel.
  Buffer row_sum(ctx.allocator(), static_cast<size_t>(rows) * sizeof(float));
  float* row_sum_data = static_cast<float*>(row_sum.data());
  const Launch lq = launch_for("attention_backward (cuda)", rows, HS + T);
  attention_backward_query_kernel<<<lq.blocks, lq.threads, lq.shared_bytes, ctx.stream()>>>(
      dq, row_sum_data, dout, k, v, attention_mask, probs, keep, keep_scale, dims, scale);
  NLPF_CUDA_CHECK_LAUNCH();
  const Launch lk = launch_for("attention_backward (cuda)", rows, HS + 2 * T);
  attention_backward_key_kernel<<<lk.blocks, lk.threads, lk.shared_bytes, ctx.stream()>>>(
      dk, dv, dout, q, v, attention_mask, probs, keep, row_sum_data, keep_scale, dims, scale);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
