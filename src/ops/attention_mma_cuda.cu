// fused_attention_forward_mma (attention_mma_cuda.h): FlashAttention-2-style forward on the tensor cores for
// 16-bit inference (and fused_attention_forward_tf32 for tf32, at the end of the file). A block of 4 warps
// owns 64 query rows of one (b, h), 16 per warp; per tile of 64 keys S = Q K^T and O += P V are mma.sync
// m16n8k16 products (16-bit inputs, fp32 accumulation), the online softmax (Milakov & Gimelshein 2018) runs
// in fp32 registers, and P goes from the accumulator layout of S straight into the A-operand layout of the
// second product (the two layouts coincide pairwise), so nothing but the K and V tiles passes through shared
// memory. Layouts as attention_cuda.h: qkv [B,T,3C] (row = q | k | v, head h at columns [h HS, (h+1) HS)),
// attention_mask [B,T] i32, out [B,T,C]. Fragment layouts are those of the PTX ISA (mma.m16n8k16, ldmatrix):
// lane = 4 g + i (g "group", i "index in group").
#include "ops/attention_mma_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "core/error.h"

namespace nlpf::cuda {
namespace {

constexpr int kMaxT = 512;  // BERT's max_position_embeddings: the key-validity table in shared memory
constexpr int kRows = 64;   // query rows per block (16 per warp)
constexpr int kKeys = 64;   // keys per tile
constexpr int kThreads = 128;

// D (16x8 fp32) += A (16x16, row) B (16x8, col) in the storage dtype T.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Four 8x8 16-bit matrices from shared memory; lane l gives the address of row l % 8 of matrix l / 8.
// Without .trans lane 4g+i receives row g, columns 2i and 2i+1 of each matrix; with .trans, column g, rows 2i
// and 2i+1.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// Two floats as one 32-bit word of T (round to nearest even), the lower address holding a.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float a, float b) {
  uint32_t u;
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(a, b);
    memcpy(&u, &h, sizeof u);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    memcpy(&u, &h, sizeof u);
  }
  return u;
}

// Rows [0, kRows) of one head's part (q, k or v) into dst [kRows][STRIDE] with 16-byte accesses; rows at or
// past `rows` (beyond T) become 0, so no garbage enters a product. src: row 0 at column h HS of the part.
template <typename T, int HS, int STRIDE>
__device__ __forceinline__ void load_rows(T* dst, const T* src, int64_t row_stride, int rows) {
  constexpr int kPerRow = HS / 8;  // 16-byte vectors per row
  for (int i = threadIdx.x; i < kRows * kPerRow; i += kThreads) {
    const int r = i / kPerRow, c = (i % kPerRow) * 8;
    const uint4 v =
        r < rows ? *reinterpret_cast<const uint4*>(src + r * row_stride + c) : make_uint4(0, 0, 0, 0);
    *reinterpret_cast<uint4*>(dst + r * STRIDE + c) = v;
  }
}

// One tile's step of the online softmax (Milakov & Gimelshein 2018) in the accumulator layout of S = Q K^T
// (m16n8k16's and m16n8k8's alike: element e of n-tile n is row g + 8 (e / 2), key k0 + n 8 + 2 i + e % 2):
// invalid keys to -inf, valid scores to log2 units (0 where every key is padding), then the running max m and
// sum l of rows g and g + 8 and the output o rescaled, and s left holding the unnormalised probabilities.
template <int kOut>
__device__ __forceinline__ void online_softmax_tile(float (&s)[kKeys / 8][4], float (&o)[kOut][4],
                                                    float (&m)[2], float (&l)[2], int k0, int T_len,
                                                    const unsigned char* valid_key, bool all_padding,
                                                    float scale_log2, int i4) {
  float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int k = k0 + n * 8 + 2 * i4 + e % 2;
      const bool valid = k < T_len && valid_key[k];
      s[n][e] = valid ? (all_padding ? 0.0f : s[n][e] * scale_log2) : -INFINITY;
      tile_max[e / 2] = fmaxf(tile_max[e / 2], s[n][e]);
    }
  }
  float correction[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    // The 4 lanes of a group hold the row's 64 scores.
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
    const float m_new = fmaxf(m[r], tile_max[r]);  // finite: the tile holds a valid key of the sequence
    correction[r] = exp2f(m[r] - m_new);           // 0 on the first tile (m = -inf)
    m[r] = m_new;
    l[r] *= correction[r];
  }
#pragma unroll
  for (int n = 0; n < kOut; ++n) {
    o[n][0] *= correction[0], o[n][1] *= correction[0];
    o[n][2] *= correction[1], o[n][3] *= correction[1];
  }
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[n][e] = exp2f(s[n][e] - m[e / 2]);
      l[e / 2] += s[n][e];
    }
  }
}

// grid (B NH, ceil(T / kRows)), kThreads threads. Shared memory: the K and V tiles [kKeys][HS + 8] (the K
// buffer first holds the Q tile, read into registers once) and the validity of every key. The 8-element pad
// puts the 8 rows of each ldmatrix on distinct 16-byte bank groups. A key tile without a valid key is
// skipped (its keys would add exactly 0); a block whose query rows are all padding writes zeros and stops.
// The E4M3 codes (low byte first) of the two 16-bit values of `word` as out stores them: value / scale in
// f32, then the hardware's saturating cvt, exactly what quantize_e4m3_forward computes from out.
template <typename T>
__device__ __forceinline__ uint16_t e4m3_pair(uint32_t word, float scale) {
  T h[2];
  memcpy(h, &word, sizeof h);
  const auto lo = static_cast<uint16_t>(
      __nv_cvt_float_to_fp8(__fdiv_rn(to_float(h[0]), scale), __NV_SATFINITE, __NV_E4M3));
  const auto hi = static_cast<uint16_t>(
      __nv_cvt_float_to_fp8(__fdiv_rn(to_float(h[1]), scale), __NV_SATFINITE, __NV_E4M3));
  return static_cast<uint16_t>(lo | (hi << 8));
}

// codes [B,T,C] (nullptr: none) receive the E4M3 copy of out with *code_scale, for the fp8 output projection.
template <typename T, int HS>
__global__ void __launch_bounds__(kThreads)
    fused_attention_mma_kernel(T* __restrict__ out, uint8_t* __restrict__ codes,
                               const float* __restrict__ code_scale, const T* __restrict__ qkv,
                               const int32_t* __restrict__ attention_mask, int T_len, int NH,
                               float scale_log2) {
  constexpr int kStride = HS + 8;
  constexpr int kSteps = HS / 16;  // k-steps of the first product, column pairs of the second
  __shared__ __align__(16) T Ks[kKeys * kStride];
  __shared__ __align__(16) T Vs[kKeys * kStride];
  __shared__ unsigned char valid_key[kMaxT];

  const int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
  const int t0 = blockIdx.y * kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, i4 = lane % 4;
  const int64_t C = static_cast<int64_t>(NH) * HS, row_stride = 3 * C;
  const T* q_head = qkv + static_cast<int64_t>(b) * T_len * row_stride + h * HS;
  const T* k_head = q_head + C;
  const T* v_head = q_head + 2 * C;
  const int32_t* mask_b = attention_mask + static_cast<int64_t>(b) * T_len;
  T* out_b = out + static_cast<int64_t>(b) * T_len * C + h * HS;
  uint8_t* codes_b = codes != nullptr ? codes + static_cast<int64_t>(b) * T_len * C + h * HS : nullptr;

  int any_token = 0, tile_token = 0;
  for (int s = threadIdx.x; s < T_len; s += kThreads) {
    const int token = mask_b[s] != 0;
    valid_key[s] = static_cast<unsigned char>(token);
    any_token |= token;
    tile_token |= token & (s >= t0 && s < t0 + kRows);
  }
  const bool all_padding = __syncthreads_or(any_token) == 0;
  if (__syncthreads_or(tile_token) == 0 && !all_padding) {
    // Padded query rows only: 0 by the contract (no token reads them).
    for (int i = threadIdx.x; i < kRows * (HS / 2); i += kThreads) {
      const int t = t0 + i / (HS / 2), c = (i % (HS / 2)) * 2;
      if (t < T_len) {
        *reinterpret_cast<uint32_t*>(out_b + t * C + c) = 0u;
        if (codes_b != nullptr) *reinterpret_cast<uint16_t*>(codes_b + t * C + c) = 0u;  // e4m3(0) = 0
      }
    }
    return;
  }
  if (all_padding) {
    // HF's finfo.min bias absorbs every score: the softmax is uniform over all T keys.
    for (int s = threadIdx.x; s < T_len; s += kThreads) valid_key[s] = 1;
  }

  // Q fragments (A operand, 16 rows of this warp x HS) through the K buffer.
  load_rows<T, HS, kStride>(Ks, q_head + static_cast<int64_t>(t0) * row_stride, row_stride, T_len - t0);
  __syncthreads();
  uint32_t qf[kSteps][4];
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk) {
    const int row = warp * 16 + (lane % 8) + ((lane / 8) % 2) * 8, col = kk * 16 + (lane / 16) * 8;
    ldmatrix_x4(qf[kk], Ks + row * kStride + col);
  }

  float o[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY},
        l[2] = {0.0f, 0.0f};  // rows g and g + 8: running max (log2 units), sum

  for (int k0 = 0; k0 < T_len; k0 += kKeys) {
    const int key = k0 + threadIdx.x % kKeys;
    // The barrier also ends every warp's reads of Ks and Vs from the previous tile (and of the Q tile).
    if (__syncthreads_or(key < T_len && valid_key[key]) == 0) continue;
    load_rows<T, HS, kStride>(Ks, k_head + static_cast<int64_t>(k0) * row_stride, row_stride, T_len - k0);
    load_rows<T, HS, kStride>(Vs, v_head + static_cast<int64_t>(k0) * row_stride, row_stride, T_len - k0);
    __syncthreads();

    // S = Q K^T: 8 key columns per n-tile; one ldmatrix.x4 gives the B fragments of two n-tiles.
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) {
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {
        uint32_t kf[4];
        const int row = np * 16 + (lane / 16) * 8 + lane % 8, col = kk * 16 + ((lane / 8) % 2) * 8;
        ldmatrix_x4(kf, Ks + row * kStride + col);
        mma_16816<T>(s[2 * np], qf[kk], kf[0], kf[1]);
        mma_16816<T>(s[2 * np + 1], qf[kk], kf[2], kf[3]);
      }
    }

    online_softmax_tile(s, o, m, l, k0, T_len, valid_key, all_padding, scale_log2, i4);

    // O += P V over 16 keys at a time: P's A fragment is the accumulators of n-tiles 2kk and 2kk + 1; V's B
    // fragments (k = key, n = column) come from ldmatrix.trans of the row-major V tile, two n-tiles at once.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      const uint32_t pa[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int nn = 0; nn < kSteps; ++nn) {
        uint32_t vf[4];
        const int row = kk * 16 + ((lane / 8) % 2) * 8 + lane % 8, col = nn * 16 + (lane / 16) * 8;
        ldmatrix_x4_trans(vf, Vs + row * kStride + col);
        mma_16816<T>(o[2 * nn], pa, vf[0], vf[1]);
        mma_16816<T>(o[2 * nn + 1], pa, vf[2], vf[3]);
      }
    }
  }

  // Normalise and store rows g and g + 8 of this warp: columns n 8 + 2 i, + 1 as one 32-bit word.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    const int t = t0 + warp * 16 + g + 8 * r;
    if (t >= T_len) continue;
    const bool zero_row = !all_padding && mask_b[t] == 0;  // a padded query's row is 0 by the contract
    const float inv = zero_row ? 0.0f : 1.0f / l[r];
#pragma unroll
    for (int n = 0; n < HS / 8; ++n) {
      const uint32_t word = pack2<T>(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
      *reinterpret_cast<uint32_t*>(out_b + t * C + n * 8 + 2 * i4) = word;
      if (codes_b != nullptr) {
        *reinterpret_cast<uint16_t*>(codes_b + t * C + n * 8 + 2 * i4) = e4m3_pair<T>(word, *code_scale);
      }
    }
  }
}

// ---- TF32: f32 storage, both products on the tensor cores (tf32 inference) ----

// x rounded to tf32 (nearest, ties away from zero: cvt.rna), as the 32-bit pattern the mma reads.
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// D (16x8 fp32) += A (16x8, row) B (8x8, col), tf32 inputs. Fragments (PTX ISA, mma.m16n8k8 .tf32): A a0 (g,
// i), a1 (g + 8, i), a2 (g, i + 4), a3 (g + 8, i + 4); B b0 (k i, n g), b1 (k i + 4, n g); D as m16n8k16's.
__device__ __forceinline__ void mma_1688_tf32(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                              uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// load_rows for f32: rows [0, kRows) into dst [kRows][STRIDE] as tf32 patterns (rounded once, here), with
// 16-byte accesses; rows at or past `rows` become 0.
template <int HS, int STRIDE>
__device__ __forceinline__ void load_rows_tf32(uint32_t* dst, const float* src, int64_t row_stride,
                                               int rows) {
  constexpr int kPerRow = HS / 4;  // 16-byte vectors per row
  for (int i = threadIdx.x; i < kRows * kPerRow; i += kThreads) {
    const int r = i / kPerRow, c = (i % kPerRow) * 4;
    const float4 v = r < rows ? *reinterpret_cast<const float4*>(src + r * row_stride + c)
                              : make_float4(0.f, 0.f, 0.f, 0.f);
    *reinterpret_cast<uint4*>(dst + r * STRIDE + c) =
        make_uint4(to_tf32(v.x), to_tf32(v.y), to_tf32(v.z), to_tf32(v.w));
  }
}

// fused_attention_mma_kernel's structure for f32 storage: Q, K and V rounded to tf32 as they enter shared
// memory, S = Q K^T and O += P V as mma.sync m16n8k8 tf32 products (fp32 accumulation), the same online
// softmax, P rounded to tf32. Rows of the tiles are HS + 4 words apart, so the fragment reads of 8 rows x 4
// columns (Q, K) and of 4 row pairs x 8 columns (V) fall on 32 distinct banks. In the second product the k
// index runs over a tile's 8 keys in the order 0, 2, 4, 6, 1, 3, 5, 7 (k = i is key 2i, k = i + 4 is key
// 2i + 1): P's A fragment is then S's accumulators as they lie (no shuffle), and V's B fragment reads the
// same keys. Output rows g, g + 8 of each warp as float2 stores.
template <int HS>
__global__ void __launch_bounds__(kThreads)
    fused_attention_tf32_kernel(float* __restrict__ out, const float* __restrict__ qkv,
                                const int32_t* __restrict__ attention_mask, int T_len, int NH,
                                float scale_log2) {
  constexpr int kStride = HS + 4;
  __shared__ __align__(16) uint32_t Ks[kKeys * kStride];
  __shared__ __align__(16) uint32_t Vs[kKeys * kStride];
  __shared__ unsigned char valid_key[kMaxT];

  const int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
  const int t0 = blockIdx.y * kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, i4 = lane % 4;
  const int64_t C = static_cast<int64_t>(NH) * HS, row_stride = 3 * C;
  const float* q_head = qkv + static_cast<int64_t>(b) * T_len * row_stride + h * HS;
  const float* k_head = q_head + C;
  const float* v_head = q_head + 2 * C;
  const int32_t* mask_b = attention_mask + static_cast<int64_t>(b) * T_len;
  float* out_b = out + static_cast<int64_t>(b) * T_len * C + h * HS;

  int any_token = 0, tile_token = 0;
  for (int s = threadIdx.x; s < T_len; s += kThreads) {
    const int token = mask_b[s] != 0;
    valid_key[s] = static_cast<unsigned char>(token);
    any_token |= token;
    tile_token |= token & (s >= t0 && s < t0 + kRows);
  }
  const bool all_padding = __syncthreads_or(any_token) == 0;
  if (__syncthreads_or(tile_token) == 0 && !all_padding) {
    // Padded query rows only: 0 by the contract (no token reads them).
    for (int i = threadIdx.x; i < kRows * (HS / 2); i += kThreads) {
      const int t = t0 + i / (HS / 2), c = (i % (HS / 2)) * 2;
      if (t < T_len) *reinterpret_cast<float2*>(out_b + t * C + c) = make_float2(0.f, 0.f);
    }
    return;
  }
  if (all_padding) {
    // HF's finfo.min bias absorbs every score: the softmax is uniform over all T keys.
    for (int s = threadIdx.x; s < T_len; s += kThreads) valid_key[s] = 1;
  }

  // Q fragments (A operand, 16 rows of this warp x HS) through the K buffer.
  load_rows_tf32<HS, kStride>(Ks, q_head + static_cast<int64_t>(t0) * row_stride, row_stride, T_len - t0);
  __syncthreads();
  uint32_t qf[HS / 8][4];
#pragma unroll
  for (int kk = 0; kk < HS / 8; ++kk) {
    const uint32_t* q = Ks + (warp * 16 + g) * kStride + kk * 8 + i4;
    qf[kk][0] = q[0], qf[kk][1] = q[8 * kStride], qf[kk][2] = q[4], qf[kk][3] = q[8 * kStride + 4];
  }

  float o[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY},
        l[2] = {0.0f, 0.0f};  // rows g and g + 8: running max (log2 units), sum

  for (int k0 = 0; k0 < T_len; k0 += kKeys) {
    const int key = k0 + threadIdx.x % kKeys;
    // The barrier also ends every warp's reads of Ks and Vs from the previous tile (and of the Q tile).
    if (__syncthreads_or(key < T_len && valid_key[key]) == 0) continue;
    load_rows_tf32<HS, kStride>(Ks, k_head + static_cast<int64_t>(k0) * row_stride, row_stride, T_len - k0);
    load_rows_tf32<HS, kStride>(Vs, v_head + static_cast<int64_t>(k0) * row_stride, row_stride, T_len - k0);
    __syncthreads();

    // S = Q K^T: n-tile n holds keys n 8 .. n 8 + 7; B's (k, n) is K's (key n, dimension k).
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < HS / 8; ++kk) {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) {
        const uint32_t* k = Ks + (n * 8 + g) * kStride + kk * 8 + i4;
        mma_1688_tf32(s[n], qf[kk], k[0], k[4]);
      }
    }

    online_softmax_tile(s, o, m, l, k0, T_len, valid_key, all_padding, scale_log2, i4);

    // O += P V, 8 keys at a time in the permuted order above.
#pragma unroll
    for (int kk = 0; kk < kKeys / 8; ++kk) {
      const uint32_t pa[4] = {to_tf32(s[kk][0]), to_tf32(s[kk][2]), to_tf32(s[kk][1]), to_tf32(s[kk][3])};
      const uint32_t* v = Vs + (kk * 8 + 2 * i4) * kStride + g;
#pragma unroll
      for (int nn = 0; nn < HS / 8; ++nn) mma_1688_tf32(o[nn], pa, v[nn * 8], v[kStride + nn * 8]);
    }
  }

  // Normalise and store rows g and g + 8 of this warp: columns n 8 + 2 i, + 1 as one float2.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    const int t = t0 + warp * 16 + g + 8 * r;
    if (t >= T_len) continue;
    const bool zero_row = !all_padding && mask_b[t] == 0;  // a padded query's row is 0 by the contract
    const float inv = zero_row ? 0.0f : 1.0f / l[r];
#pragma unroll
    for (int n = 0; n < HS / 8; ++n) {
      *reinterpret_cast<float2*>(out_b + t * C + n * 8 + 2 * i4) =
          make_float2(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    }
  }
}

float scale_log2_of(int64_t HS) {  // log2(e) / sqrt(HS): scores in log2 units for exp2f
  return static_cast<float>(1.4426950408889634 / std::sqrt(static_cast<double>(HS)));
}

template <typename Storage>
void launch(CudaContext& ctx, void* out, uint8_t* codes, const float* code_scale, const void* qkv,
            const int32_t* attention_mask, int64_t B, int64_t T, int64_t NH, int64_t HS) {
  const dim3 grid(static_cast<unsigned>(B * NH), static_cast<unsigned>((T + kRows - 1) / kRows));
  const float scale_log2 = scale_log2_of(HS);
  const auto args = [&](auto kernel) {
    kernel<<<grid, kThreads, 0, ctx.stream()>>>(static_cast<Storage*>(out), codes, code_scale,
                                                static_cast<const Storage*>(qkv), attention_mask,
                                                static_cast<int>(T), static_cast<int>(NH), scale_log2);
  };
  if (HS == 32) {
    args(fused_attention_mma_kernel<Storage, 32>);
  } else if (HS == 64) {
    args(fused_attention_mma_kernel<Storage, 64>);
  } else {
    args(fused_attention_mma_kernel<Storage, 128>);
  }
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool fused_attention_mma_supports(DType dtype, int64_t HS, int64_t T) {
  return (dtype == DType::F16 || dtype == DType::BF16) && (HS == 32 || HS == 64 || HS == 128) && T <= kMaxT;
}

void fused_attention_forward_mma(ExecutionContext& ctx, void* out, const void* qkv,
                                 const int32_t* attention_mask, DType dtype, int64_t B, int64_t T, int64_t NH,
                                 int64_t HS, uint8_t* codes, const float* code_scale) {
  constexpr const char* kOp = "fused_attention_forward_mma (cuda)";
  NLPF_CHECK((codes == nullptr) == (code_scale == nullptr), ErrorCode::INVALID_ARGUMENT, kOp,
             ": codes and code_scale are given together or not at all");
  NLPF_CHECK(fused_attention_mma_supports(dtype, HS, T), ErrorCode::INVALID_ARGUMENT, kOp, ": dtype ",
             dtype_name(dtype), ", HS = ", HS, ", T = ", T,
             " (expected f16 or bf16, HS 32, 64 or 128, T <= ", kMaxT, ")");
  NLPF_CHECK(B >= 0 && T >= 0 && NH > 0 && B * NH <= 0x7fffffff, ErrorCode::INVALID_ARGUMENT, kOp,
             ": B = ", B, ", T = ", T, ", NH = ", NH);
  NLPF_CHECK(aligned16(qkv) && aligned16(out), ErrorCode::INVALID_ARGUMENT, kOp,
             ": qkv and out must be 16-byte aligned (16-byte vector accesses)");
  if (B == 0 || T == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  if (dtype == DType::F16) {
    launch<__half>(cuda, out, codes, code_scale, qkv, attention_mask, B, T, NH, HS);
  } else {
    launch<__nv_bfloat16>(cuda, out, codes, code_scale, qkv, attention_mask, B, T, NH, HS);
  }
}

bool fused_attention_tf32_supports(int64_t HS, int64_t T) {
  return (HS == 32 || HS == 64) && T <= kMaxT;
}

void fused_attention_forward_tf32(ExecutionContext& ctx, float* out, const float* qkv,
                                  const int32_t* attention_mask, int64_t B, int64_t T, int64_t NH,
                                  int64_t HS) {
  constexpr const char* kOp = "fused_attention_forward_tf32 (cuda)";
  NLPF_CHECK(fused_attention_tf32_supports(HS, T), ErrorCode::INVALID_ARGUMENT, kOp, ": HS = ", HS,
             ", T = ", T, " (expected HS 32 or 64, T <= ", kMaxT, ")");
  NLPF_CHECK(B >= 0 && T >= 0 && NH > 0 && B * NH <= 0x7fffffff, ErrorCode::INVALID_ARGUMENT, kOp,
             ": B = ", B, ", T = ", T, ", NH = ", NH);
  NLPF_CHECK(aligned16(qkv) && aligned16(out), ErrorCode::INVALID_ARGUMENT, kOp,
             ": qkv and out must be 16-byte aligned (16-byte vector accesses)");
  if (B == 0 || T == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const dim3 grid(static_cast<unsigned>(B * NH), static_cast<unsigned>((T + kRows - 1) / kRows));
  const auto args = [&](auto kernel) {
    kernel<<<grid, kThreads, 0, cuda.stream()>>>(out, qkv, attention_mask, static_cast<int>(T),
                                                 static_cast<int>(NH), scale_log2_of(HS));
  };
  if (HS == 32) {
    args(fused_attention_tf32_kernel<32>);
  } else {
    args(fused_attention_tf32_kernel<64>);
  }
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
