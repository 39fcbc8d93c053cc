// fused_attention_forward on CUDA (attention_cuda.h): flash-style self-attention over the packed projection,
// one kernel. Scores, online-softmax statistics and the output accumulate in fp32 on the CUDA cores whatever
// the storage dtype (F32, BF16, F16); no [T,T] matrix reaches device memory. Layouts: qkv [B,T,3C] (row =
// q | k | v, head h at columns [h HS, (h+1) HS) of each part), attention_mask [B,T] i32, out [B,T,C].
#include "ops/attention_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "backend/cuda/warp_reduce.cuh"

namespace nlpf::cuda {
namespace {

constexpr int64_t kMaxT = 512;   // BERT's max_position_embeddings
constexpr int64_t kMaxHS = 128;  // the largest register tile below

// ---- 16-byte accesses of the storage dtype, converted to and from fp32 ----

template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte vector

// 16 raw bytes to floats: the load stays separate from the conversion, so that a batch of loads can be in
// flight in 4 registers each. Type punning goes through memcpy (register moves after optimisation): a pointer
// cast between uint4 and the pair types breaks strict aliasing.
__device__ __forceinline__ void unpack_vec(const uint4& raw, float*, float (&f)[4]) {
  f[0] = __uint_as_float(raw.x), f[1] = __uint_as_float(raw.y), f[2] = __uint_as_float(raw.z),
  f[3] = __uint_as_float(raw.w);
}
__device__ __forceinline__ void unpack_vec(const uint4& raw, __nv_bfloat16*, float (&f)[8]) {
  __nv_bfloat162 h[4];
  memcpy(h, &raw, sizeof h);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x, f[2 * i + 1] = t.y;
  }
}
__device__ __forceinline__ void unpack_vec(const uint4& raw, __half*, float (&f)[8]) {
  __half2 h[4];
  memcpy(h, &raw, sizeof h);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __half22float2(h[i]);
    f[2 * i] = t.x, f[2 * i + 1] = t.y;
  }
}

// Two floats as one 32-bit word of the 16-bit dtype (round to nearest even, as the host's f32_to_bf16).
__device__ __forceinline__ uint32_t pack2(__nv_bfloat16*, float a, float b) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  uint32_t u;
  memcpy(&u, &h, sizeof u);
  return u;
}
__device__ __forceinline__ uint32_t pack2(__half*, float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  uint32_t u;
  memcpy(&u, &h, sizeof u);
  return u;
}

// Stores N (2 or 4) floats at p (aligned to N elements) as one access of the storage dtype. __stwb (an
// ordinary write-back store) keeps the access one instruction: plain vector-type stores came out split into
// 4-byte ones.
template <int N, typename T>
__device__ __forceinline__ void store_small(T* p, const float* f) {
  static_assert(N == 2 || N == 4);
  if constexpr (std::is_same_v<T, float>) {
    if constexpr (N == 4) {
      __stwb(reinterpret_cast<float4*>(p), make_float4(f[0], f[1], f[2], f[3]));
    } else {
      __stwb(reinterpret_cast<float2*>(p), make_float2(f[0], f[1]));
    }
  } else {
    if constexpr (N == 4) {
      __stwb(reinterpret_cast<uint2*>(p), make_uint2(pack2(p, f[0], f[1]), pack2(p, f[2], f[3])));
    } else {
      __stwb(reinterpret_cast<uint32_t*>(p), pack2(p, f[0], f[1]));
    }
  }
}

// ---- the kernel ----

// Tile geometry. A block of (QT/4) x (KT/4) threads owns QT query rows of one (b, h); thread (ty, tx) holds
// the 4 x 4 scores of rows ty + i QT/4 and keys tx + j KT/4 (i, j < 4), and the output of the same 4 rows at
// HS_MAX / (KT/4) columns. Interleaved rows and keys keep the product loops' shared-memory reads
// conflict-free.
template <int HS_MAX, int QT, int KT>
struct Tiling {
  static constexpr int kTx = KT / 4;  // threads along keys, in one warp (shuffle reductions)
  static constexpr int kTy = QT / 4;  // threads along query rows
  static constexpr int kThreads = kTx * kTy;
  static constexpr int kRowStride = HS_MAX + 4;  // floats per row of Qs and KVs: 16-byte aligned, banks
                                                 // shift by 4 per row (float4 reads of kTx rows)
  static constexpr int kPStride = KT + kTx;      // floats per row of Ps: the kTx-wide row groups of a
                                                 // warp land on disjoint banks
  static constexpr int kCols = HS_MAX / kTx;     // output columns per thread
  static constexpr int kColVec = kCols < 4 ? kCols : 4;  // columns per shared-memory access
  static constexpr int kColChunks = kCols / kColVec;     // chunk c at column (c kTx + tx) kColVec
  // Blocks per SM the launch bounds ask for: 6 of the 128-thread tiles fit the shared memory at HS <= 64
  // (35 KB each), so registers are capped to match (80 a thread, no spills); the rare HS = 128 tile is not.
  static constexpr int kMinBlocks = kThreads == 128 ? 6 : 1;
  static_assert(32 % kTx == 0 && kCols >= 2 && kCols % kColVec == 0);
  static_assert((QT + KT) * kRowStride * 4 + QT * kPStride * 4 <= 48 * 1024, "static shared memory limit");
};

// Rows [0, ROWS) of one head's part into dst [ROWS][HS_MAX+4] as fp32, times `scale`; rows at or past `rows`
// (beyond T) become 0, so no garbage reaches the products. src: row 0 of the tile at column h HS of the part;
// rows are row_stride (3C) elements apart. Thread `tid` moves the 16-byte vector tid % (HS_MAX/V) of rows
// tid / (HS_MAX/V) + k THREADS/(HS_MAX/V): one base address and one stride per thread (a per-vector index
// division kept live across the key loop cost about 30 registers), coalesced along each row; the threads past
// HS idle. Loads go out in batches of 4 before their stores (memory parallelism within a register budget).
template <typename T, int ROWS, int HS_MAX, int THREADS>
__device__ __forceinline__ void load_tile(float* dst, const T* src, int64_t row_stride, int rows, int HS,
                                          float scale) {
  constexpr int V = kVec<T>;
  constexpr int kPerRow = HS_MAX / V;          // vectors per row at HS_MAX
  constexpr int kRowStep = THREADS / kPerRow;  // rows moved per step by the block
  constexpr int kSteps = ROWS / kRowStep;
  constexpr int kBatch = kSteps < 4 ? kSteps : 4;
  static_assert(THREADS % kPerRow == 0 && ROWS % kRowStep == 0 && kSteps % kBatch == 0);
  const int c = (threadIdx.x % kPerRow) * V, r0 = threadIdx.x / kPerRow;
  if (c >= HS) return;
  src += r0 * row_stride + c;
  dst += r0 * (HS_MAX + 4) + c;
#pragma unroll
  for (int k0 = 0; k0 < kSteps; k0 += kBatch) {
    uint4 raw[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int r = r0 + (k0 + k) * kRowStep;
      raw[k] = r < rows ? *reinterpret_cast<const uint4*>(src + (k0 + k) * kRowStep * row_stride)
                        : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      float f[V];
      unpack_vec(raw[k], static_cast<T*>(nullptr), f);
#pragma unroll
      for (int e = 0; e < V; e += 4) {
        *reinterpret_cast<float4*>(dst + (k0 + k) * kRowStep * (HS_MAX + 4) + e) =
            make_float4(f[e] * scale, f[e + 1] * scale, f[e + 2] * scale, f[e + 3] * scale);
      }
    }
  }
}

// out [B,T,C] from qkv [B,T,3C] and attention_mask [B,T]; grid (B NH, ceil(T / QT)), Tiling::kThreads
// threads, static shared memory Qs [QT][HS_MAX+4], KVs [KT][HS_MAX+4] (the K tile, then the V tile), Ps
// [QT][KT+KT/4]. Per key tile (flash-attention, Dao et al. 2022, online softmax of Milakov & Gimelshein
// 2018): S = Q K^T in registers, masked keys to -inf, running max m and sum l per row, O = O exp2(m_old -
// m_new) + P V. q is prescaled by log2(e) / sqrt(HS) so that exp2 (one MUFU op) gives exp of the scaled
// score. A key tile with no unmasked key is skipped (its keys would contribute exactly 0). A sequence whose
// keys are all padding takes every key with score 0: HF's finfo.min bias then absorbs the scores and the
// softmax is uniform over all T.
template <typename T, int HS_MAX, int QT, int KT>
__global__ void __launch_bounds__(Tiling<HS_MAX, QT, KT>::kThreads, Tiling<HS_MAX, QT, KT>::kMinBlocks)
    fused_attention_forward_kernel(T* __restrict__ out, const T* __restrict__ qkv,
                                   const int32_t* __restrict__ attention_mask, int T_len, int NH, int HS,
                                   float q_scale) {
  using Tile = Tiling<HS_MAX, QT, KT>;
  constexpr int kTx = Tile::kTx, kTy = Tile::kTy, kThreads = Tile::kThreads;
  constexpr int kRowStride = Tile::kRowStride, kPStride = Tile::kPStride;
  constexpr int kColVec = Tile::kColVec, kColChunks = Tile::kColChunks;
  __shared__ __align__(16) float Qs[QT * kRowStride];
  __shared__ __align__(16) float KVs[KT * kRowStride];
  __shared__ __align__(16) float Ps[QT * kPStride];

  const int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
  const int t0 = blockIdx.y * QT;
  const int tx = threadIdx.x % kTx, ty = threadIdx.x / kTx;
  const int64_t C = static_cast<int64_t>(NH) * HS, row_stride = 3 * C;
  const T* q_head = qkv + static_cast<int64_t>(b) * T_len * row_stride + h * HS;  // (b, t = 0, h) of q
  const T* k_head = q_head + C;
  const T* v_head = q_head + 2 * C;
  const int32_t* mask_b = attention_mask + static_cast<int64_t>(b) * T_len;

  // Whether any key of the sequence is a token (else HF's uniform row), and the columns [HS, HS_MAX) of KVs
  // zeroed once (tiles write only [0, HS)), so the product loops can run over HS_MAX without guards.
  int any_token = 0, tile_token = 0;
  for (int s = threadIdx.x; s < T_len; s += kThreads) {
    const int token = mask_b[s] != 0;
    any_token |= token;
    tile_token |= token & (s >= t0 && s < t0 + QT);
  }
  const bool all_padding = __syncthreads_or(any_token) == 0;
  // A tile of padded queries only (most of them when batches are padded to max-length): their rows are 0 by
  // the op's contract (no token ever reads them: padded keys are masked), so the block writes zeros and
  // stops.
  if (__syncthreads_or(tile_token) == 0 && !all_padding) {
    for (int i = threadIdx.x; i < QT * HS; i += kThreads) {
      const int t = t0 + i / HS;
      if (t < T_len) out[(static_cast<int64_t>(b) * T_len + t) * C + h * HS + i % HS] = static_cast<T>(0.0f);
    }
    return;
  }
  if (HS < HS_MAX) {
    const int pad = HS_MAX - HS;
    for (int i = threadIdx.x; i < KT * pad; i += kThreads) KVs[(i / pad) * kRowStride + HS + i % pad] = 0.0f;
  }
  load_tile<T, QT, HS_MAX, kThreads>(Qs, q_head + static_cast<int64_t>(t0) * row_stride, row_stride,
                                     T_len - t0, HS, q_scale);  // the first key tile's barrier waits for it

  float o[4][Tile::kCols];
  float m[4], l[4];  // running max (log2 units) and this thread's part of the running sum, per row
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < Tile::kCols; ++c) o[i][c] = 0.0f;
  }

  for (int k0 = 0; k0 < T_len; k0 += KT) {
    bool valid[4];
    int any_valid = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int key = k0 + tx + j * kTx;
      valid[j] = key < T_len && (all_padding || mask_b[key] != 0);
      any_valid |= valid[j];
    }
    // The barrier also ends the previous tile's reads of KVs and Ps (and the first tile waits for Qs).
    if (__syncthreads_or(any_valid) == 0) continue;

    load_tile<T, KT, HS_MAX, kThreads>(KVs, k_head + static_cast<int64_t>(k0) * row_stride, row_stride,
                                       T_len - k0, HS, 1.0f);
    __syncthreads();
    float s[4][4] = {};
#pragma unroll 1
    for (int d = 0; d < HS; d += 4) {
      float4 q[4], k[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        q[i] = *reinterpret_cast<const float4*>(Qs + (ty + i * kTy) * kRowStride + d);
#pragma unroll
      for (int j = 0; j < 4; ++j)
        k[j] = *reinterpret_cast<const float4*>(KVs + (tx + j * kTx) * kRowStride + d);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[i][j] = fmaf(q[i].x, k[j].x, s[i][j]);
          s[i][j] = fmaf(q[i].y, k[j].y, s[i][j]);
          s[i][j] = fmaf(q[i].z, k[j].z, s[i][j]);
          s[i][j] = fmaf(q[i].w, k[j].w, s[i][j]);
        }
      }
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        s[i][j] = !valid[j] ? -INFINITY : all_padding ? 0.0f : s[i][j];
        tile_max = fmaxf(tile_max, s[i][j]);
      }
#pragma unroll
      for (int offset = kTx / 2; offset > 0; offset /= 2) {
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, offset));
      }
      const float m_new = fmaxf(m[i], tile_max);
      // A row with no valid key yet keeps m = -inf: subtract 0 instead, so exp2(-inf) = 0 and no inf - inf.
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(m[i] - m_use);
      m[i] = m_new;
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float p = exp2f(s[i][j] - m_use);
        Ps[(ty + i * kTy) * kPStride + tx + j * kTx] = p;
        sum += p;
      }
      l[i] = l[i] * alpha + sum;
#pragma unroll
      for (int c = 0; c < Tile::kCols; ++c) o[i][c] *= alpha;
    }
    __syncthreads();  // every read of the K tile is done: V may replace it (the scores are in Ps by now)
    load_tile<T, KT, HS_MAX, kThreads>(KVs, v_head + static_cast<int64_t>(k0) * row_stride, row_stride,
                                       T_len - k0, HS, 1.0f);
    __syncthreads();  // Ps and the V tile are complete

#pragma unroll 1
    for (int j0 = 0; j0 < KT; j0 += 4) {
      float4 p[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        p[i] = *reinterpret_cast<const float4*>(Ps + (ty + i * kTy) * kPStride + j0);
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const float* v_row = KVs + (j0 + jj) * kRowStride;
#pragma unroll
        for (int ch = 0; ch < kColChunks; ++ch) {
          float v[kColVec];
          const float* src = v_row + (ch * kTx + tx) * kColVec;
          if constexpr (kColVec == 4) {
            const float4 t = *reinterpret_cast<const float4*>(src);
            v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
          } else {
            const float2 t = *reinterpret_cast<const float2*>(src);
            v[0] = t.x, v[1] = t.y;
          }
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float pij = jj == 0 ? p[i].x : jj == 1 ? p[i].y : jj == 2 ? p[i].z : p[i].w;
#pragma unroll
            for (int e = 0; e < kColVec; ++e)
              o[i][ch * kColVec + e] = fmaf(pij, v[e], o[i][ch * kColVec + e]);
          }
        }
      }
    }
  }

  // Every row has l > 0: its largest valid key contributes exp2(0) = 1 (all keys are valid in an all-padding
  // sequence, and a tile holding a valid key is never skipped).
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float total = l[i];
#pragma unroll
    for (int offset = kTx / 2; offset > 0; offset /= 2) total += __shfl_xor_sync(0xffffffffu, total, offset);
    const int t = t0 + ty + i * kTy;
    if (t >= T_len) continue;
    const float inv = all_padding || mask_b[t] != 0 ? 1.0f / total : 0.0f;  // a padded query's row is 0
    T* out_row = out + (static_cast<int64_t>(b) * T_len + t) * C + h * HS;
#pragma unroll
    for (int ch = 0; ch < kColChunks; ++ch) {
      const int col = (ch * kTx + tx) * kColVec;
      if (col >= HS) continue;  // HS is a multiple of 8, so a chunk is wholly inside or outside
      float y[kColVec];
#pragma unroll
      for (int e = 0; e < kColVec; ++e) y[e] = o[i][ch * kColVec + e] * inv;
      store_small<kColVec>(out_row + col, y);
    }
  }
}

template <typename Storage, int HS_MAX, int QT, int KT>
void launch(CudaContext& ctx, void* out, const void* qkv, const int32_t* attention_mask, int64_t B, int64_t T,
            int64_t NH, int64_t HS) {
  using Tile = Tiling<HS_MAX, QT, KT>;
  const dim3 grid(static_cast<unsigned>(B * NH), static_cast<unsigned>((T + QT - 1) / QT));
  const float q_scale =
      static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(HS)));  // log2(e)
  fused_attention_forward_kernel<Storage, HS_MAX, QT, KT><<<grid, Tile::kThreads, 0, ctx.stream()>>>(
      static_cast<Storage*>(out), static_cast<const Storage*>(qkv), attention_mask, static_cast<int>(T),
      static_cast<int>(NH), static_cast<int>(HS), q_scale);
  NLPF_CUDA_CHECK_LAUNCH();
}

// Query tiles of 32 rows: at B = 32, T = 128 and 12 heads that is 1536 blocks, about two full waves of the
// 132 SMs of an H200 (6 blocks of 35 KB shared memory each per SM), where 64-row tiles leave 1.45 waves.
// HS up to 64 (BERT-base and -large, MiniLM) takes 64-key tiles of 128 threads; HS up to 128 halves the key
// tile (64 threads) to stay in the 48 KB of static shared memory.
template <typename Storage>
void dispatch_head_size(CudaContext& ctx, void* out, const void* qkv, const int32_t* attention_mask,
                        int64_t B, int64_t T, int64_t NH, int64_t HS) {
  if (HS <= 32) {
    launch<Storage, 32, 32, 64>(ctx, out, qkv, attention_mask, B, T, NH, HS);
  } else if (HS <= 64) {
    launch<Storage, 64, 32, 64>(ctx, out, qkv, attention_mask, B, T, NH, HS);
  } else {
    launch<Storage, 128, 32, 32>(ctx, out, qkv, attention_mask, B, T, NH, HS);
  }
}

// ---- The first query only (first_query_attention_forward) ----

constexpr int kFirstQueryThreads = 128;
constexpr int kFirstQueryWarps = kFirstQueryThreads / 32;

// The block's reduction of one value per thread (sum or max), returned to every thread; `scratch` holds a
// value per warp and is free again on return.
template <bool kMax>
__device__ __forceinline__ float block_reduce(float v, float* scratch) {
  v = kMax ? warp_max(v) : warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = scratch[0];
  for (int w = 1; w < kFirstQueryWarps; ++w) total = kMax ? fmaxf(total, scratch[w]) : total + scratch[w];
  __syncthreads();
  return total;
}

// Block (h, b): out[b, h HS .. (h+1) HS) = softmax(q_0 k^T / sqrt(HS) + mask) v of head h, q_0 the query of
// token 0. Warps take keys in turn (lanes over the head's channels), the block reduces the softmax
// statistics over the T <= 512 scores in shared memory, then threads take the output channels. All in fp32.
template <typename Storage>
__global__ void __launch_bounds__(kFirstQueryThreads)
    first_query_attention_kernel(Storage* __restrict__ out, const Storage* __restrict__ qkv,
                                 const int32_t* __restrict__ attention_mask, int T, int NH, int HS,
                                 float scale) {
  __shared__ float q[kMaxHS];
  __shared__ float p[kMaxT];
  __shared__ float scratch[kFirstQueryWarps];
  const int h = blockIdx.x, b = blockIdx.y, C = NH * HS;
  const int64_t row = 3 * static_cast<int64_t>(C);
  const Storage* base = qkv + static_cast<int64_t>(b) * T * row;
  const int32_t* mask_b = attention_mask + static_cast<int64_t>(b) * T;
  Storage* out_head = out + static_cast<int64_t>(b) * C + h * HS;
  int any_token = 0;
  for (int t = threadIdx.x; t < T; t += kFirstQueryThreads) any_token |= mask_b[t] != 0;
  const bool all_padding = __syncthreads_or(any_token) == 0;
  if (!all_padding && mask_b[0] == 0) {  // a padded first query: its row is 0, as fused_attention_forward's
    for (int d = threadIdx.x; d < HS; d += kFirstQueryThreads) out_head[d] = from_float<Storage>(0.0f);
    return;
  }
  for (int d = threadIdx.x; d < HS; d += kFirstQueryThreads) q[d] = to_float(base[h * HS + d]) * scale;
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t = warp; t < T; t += kFirstQueryWarps) {
    if (!all_padding && mask_b[t] == 0) {  // the same for the whole warp
      if (lane == 0) p[t] = -INFINITY;
      continue;
    }
    const Storage* k = base + t * row + C + h * HS;
    float s = 0.0f;
    for (int d = lane; d < HS; d += 32) s = fmaf(q[d], to_float(k[d]), s);
    s = warp_sum(s);
    if (lane == 0) p[t] = all_padding ? 0.0f : s;  // all padding: the uniform 1/T over every key, as HF
  }
  __syncthreads();
  float m = -INFINITY;
  for (int t = threadIdx.x; t < T; t += kFirstQueryThreads) m = fmaxf(m, p[t]);
  m = block_reduce<true>(m, scratch);  // finite: token 0 is a valid key here
  float sum = 0.0f;
  for (int t = threadIdx.x; t < T; t += kFirstQueryThreads) {
    const float e = p[t] == -INFINITY ? 0.0f : __expf(p[t] - m);
    p[t] = e;
    sum += e;
  }
  const float inv = 1.0f / block_reduce<false>(sum, scratch);  // also orders the writes of p before the reads
  for (int d = threadIdx.x; d < HS; d += kFirstQueryThreads) {
    const Storage* v = base + 2 * C + h * HS + d;
    float acc = 0.0f;
    for (int t = 0; t < T; ++t) {
      if (p[t] != 0.0f) acc = fmaf(p[t], to_float(v[t * row]), acc);
    }
    out_head[d] = from_float<Storage>(acc * inv);
  }
}

template <typename Storage>
void launch_first_query(CudaContext& ctx, void* out, const void* qkv, const int32_t* attention_mask,
                        int64_t B, int64_t T, int64_t NH, int64_t HS) {
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(HS)));
  first_query_attention_kernel<Storage>
      <<<dim3(static_cast<unsigned>(NH), static_cast<unsigned>(B)), kFirstQueryThreads, 0, ctx.stream()>>>(
          static_cast<Storage*>(out), static_cast<const Storage*>(qkv), attention_mask, static_cast<int>(T),
          static_cast<int>(NH), static_cast<int>(HS), scale);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace

void first_query_attention_forward(ExecutionContext& ctx, void* out, const void* qkv,
                                   const int32_t* attention_mask, DType dtype, int64_t B, int64_t T,
                                   int64_t NH, int64_t HS) {
  constexpr const char* kOp = "first_query_attention_forward (cuda)";
  NLPF_CHECK(B >= 0 && T >= 0 && NH > 0, ErrorCode::INVALID_ARGUMENT, kOp, ": B = ", B, ", T = ", T,
             ", NH = ", NH);
  NLPF_CHECK(T <= kMaxT, ErrorCode::UNSUPPORTED, kOp, ": T = ", T, " tokens, at most ", kMaxT);
  NLPF_CHECK(HS > 0 && HS <= kMaxHS, ErrorCode::UNSUPPORTED, kOp, ": head size HS = ", HS, ", at most ",
             kMaxHS);
  NLPF_CHECK(B <= 0xffff && NH <= 0x7fffffff, ErrorCode::UNSUPPORTED, kOp, ": B = ", B, ", NH = ", NH,
             " exceed the grid");
  if (B == 0 || T == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  with_float_type("first_query_attention_forward", dtype, [&]<typename Storage>(Storage*) {
    launch_first_query<Storage>(cuda, out, qkv, attention_mask, B, T, NH, HS);
  });
}

void fused_attention_forward(ExecutionContext& ctx, void* out, const void* qkv, const int32_t* attention_mask,
                             DType dtype, int64_t B, int64_t T, int64_t NH, int64_t HS) {
  constexpr const char* kOp = "fused_attention_forward (cuda)";
  NLPF_CHECK(B >= 0 && T >= 0 && NH > 0, ErrorCode::INVALID_ARGUMENT, kOp, ": B = ", B, ", T = ", T,
             ", NH = ", NH);
  NLPF_CHECK(T <= kMaxT, ErrorCode::UNSUPPORTED, kOp, ": T = ", T, " tokens, at most ", kMaxT);
  NLPF_CHECK(HS > 0 && HS % 8 == 0 && HS <= kMaxHS, ErrorCode::UNSUPPORTED, kOp, ": head size HS = ", HS,
             ", expected a multiple of 8 up to ", kMaxHS);
  NLPF_CHECK(B * NH <= 0x7fffffff, ErrorCode::UNSUPPORTED, kOp, ": B NH = ", B * NH, " exceeds the grid");
  NLPF_CHECK(aligned16(qkv) && aligned16(out), ErrorCode::INVALID_ARGUMENT, kOp,
             ": qkv and out must be 16-byte aligned (16-byte vector accesses)");
  if (B == 0 || T == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  with_float_type("fused_attention_forward", dtype, [&]<typename Storage>(Storage*) {
    dispatch_head_size<Storage>(cuda, out, qkv, attention_mask, B, T, NH, HS);
  });
}

}  // namespace nlpf::cuda
