// The training attention on CUDA (attention_cuda.h): f32, probabilities saved [B,NH,T,T], dropout by a keep
// mask or drawn in the row kernels, the CPU reference's formulas (attention_cpu.cc) as PyTorch's math path
// computes them: the products per (b, h) are batched cuBLASLt GEMMs (backend/cuda/gemm.h, batch B NH, in the
// context's math mode), and row kernels (a warp per row) do the masked softmax and its backward. Under IEEE
// fp32 the GEMMs take a pointer per head and read q, k, v, dout (and write out, dq, dk, dv) as rows of their
// own stride; in the other math modes strided batches need q, k, v (and dout) copied head-major
// [B,NH,T,HS] first and the results copied back. Either way q, k, v and their gradients may be the three
// parts of one packed projection [B,T,3C]. Deterministic: cuBLASLt's plan fixes the algorithm, row sums
// reduce by a fixed shuffle tree (no atomics). Layouts: q, k, v, out and their gradients [B,T,C] with head h
// in channels [h HS, (h+1) HS); probs, keep [B,NH,T,T] (query t, key s); attention_mask [B,T]. Activation
// gradients overwrite (=).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "backend/cuda/gemm.h"
#include "backend/cuda/warp_reduce.cuh"
#include "core/tensor.h"
#include "ops/attention_cuda.h"
#include "ops/dropout_keep.cuh"

namespace nlpf::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kRowsPerBlock = 8;  // warps (rows) per block of the row kernels
constexpr int kCopyThreads = 256;
constexpr int kMaxCopies = 4;

// Whether any key of mask_b [T] is a token; the whole warp gets the answer.
__device__ __forceinline__ bool any_token(const int32_t* mask_b, int64_t T, int lane) {
  bool any = false;
  for (int64_t s = lane; s < T; s += kWarp) any |= mask_b[s] != 0;
  return __any_sync(kFullMask, any);
}

// Up to kMaxCopies tensors copied between token-major rows (b, t) of C channels at a row stride `ld` floats
// (C for [B,T,C], 3 C for a part of a packed [B,T,3C]) and head-major [B,NH,T,HS] (blockIdx.y picks one).
struct Copies {
  const float* from[kMaxCopies];
  void* to[kMaxCopies];    // float, except the token-major side of a copy back of Out (below)
  int64_t ld[kMaxCopies];  // row stride of the token-major side, in elements
};

// to_heads: from token-major rows to [B,NH,T,HS] (f32 both); else back, into token-major rows of Out (float,
// or 16-bit: each value rounded once, mixed precision's GEMM operand). Vec is float4 when HS and every row
// stride are multiples of 4 and every pointer aligned to 4 elements, else float; HSV = HS / (floats per Vec).
// Grid (B NH, ceil(T HSV / kCopyThreads), copies): blockIdx.x is the head (b, h), thread j of it vector j
// of that head's [T, HSV] block, so reads and writes are contiguous runs of HS elements either way; indices
// within a head are 32-bit (copy_heads checks T HSV fits). The table is __grid_constant__: indexed by
// blockIdx.z as a plain parameter, it was copied to a 96-byte stack frame by every thread (the copies ran at
// ~1.1 TB/s, 3 ms of a bert-base fp32 step, on the H200).
template <typename Vec, bool to_heads, typename Out>
__global__ void attention_copy_heads_kernel(const __grid_constant__ Copies copies, unsigned T, unsigned NH,
                                            unsigned HSV) {
  constexpr int64_t kPer = sizeof(Vec) / sizeof(float);
  const unsigned j = blockIdx.y * blockDim.x + threadIdx.x;
  if (j >= T * HSV) return;
  const unsigned t = j / HSV, d = j - t * HSV;
  const unsigned b = blockIdx.x / NH, h = blockIdx.x - b * NH;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * (T * HSV) + j;  // (b, h, t, d) head-major, in Vecs
  const int64_t ldv = copies.ld[blockIdx.z] / kPer;
  const int64_t token = (static_cast<int64_t>(b) * T + t) * ldv + h * HSV + d;  // (b, t, h, d), in Vecs
  const Vec* from = reinterpret_cast<const Vec*>(copies.from[blockIdx.z]);
  if constexpr (to_heads) {
    reinterpret_cast<Vec*>(copies.to[blockIdx.z])[i] = from[token];
  } else if constexpr (kPer == 4) {
    store4(static_cast<Out*>(copies.to[blockIdx.z]) + token * 4, from[i]);
  } else {
    static_cast<Out*>(copies.to[blockIdx.z])[token] = from_float<Out>(from[i]);
  }
}

// probs [B,NH,T,T] in place: scores q k^T in, probabilities out (=, saved for backward); dropped [B,NH,T,T]
// (=) probs keep keep_scale when keep is active (its values read or drawn per element, KeepReader). A warp
// per row (b, h, t), lanes own keys s = lane + 32 j
// (no sync between the passes). Padded keys get exactly 0; a sequence without tokens gets the uniform row
// (HF's finfo.min absorbs every score).
__global__ void attention_softmax_forward_kernel(float* __restrict__ probs, float* __restrict__ dropped,
                                                 const int32_t* __restrict__ mask, const KeepSource keep,
                                                 float keep_scale, int64_t rows, int64_t NH, int64_t T,
                                                 float scale, float uniform) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;  // whole warps leave: only warp-level syncs follow
  const int32_t* mask_b = mask + row / (NH * T) * T;
  float* p = probs + row * T;
  if (!any_token(mask_b, T, lane)) {
    for (int64_t s = lane; s < T; s += kWarp) p[s] = uniform;
  } else {
    float local_max = -INFINITY;
    for (int64_t s = lane; s < T; s += kWarp) {
      if (mask_b[s] != 0) local_max = fmaxf(local_max, scale * p[s]);
    }
    const float max_score = warp_max(local_max);  // finite: some key is a token
    float local_sum = 0.0f;
    for (int64_t s = lane; s < T; s += kWarp) {
      const float e = mask_b[s] != 0 ? expf(scale * p[s] - max_score) : 0.0f;
      p[s] = e;
      local_sum += e;
    }
    const float inv_sum = 1.0f / warp_sum(local_sum);
    for (int64_t s = lane; s < T; s += kWarp) p[s] *= inv_sum;
  }
  const KeepReader reader(keep);
  if (!reader.active()) return;
  float* dropped_row = dropped + row * T;
  for (int64_t s = lane; s < T; s += kWarp) dropped_row[s] = p[s] * reader(row * T + s) * keep_scale;
}

// dscore [B,NH,T,T] in place: dout v^T (the gradient of dropout(probs)) in, scale p (dp - rowsum(p dp)) out
// with dp = dropout of it; dropped [B,NH,T,T] (=) probs keep keep_scale when keep is active (dv's operand).
// A warp per row; a sequence without tokens has constant probabilities, so its dscore is 0.
__global__ void attention_softmax_backward_kernel(float* __restrict__ dscore, float* __restrict__ dropped,
                                                  const float* __restrict__ probs,
                                                  const int32_t* __restrict__ mask, const KeepSource keep,
                                                  float keep_scale, int64_t rows, int64_t NH, int64_t T,
                                                  float scale) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const float* p = probs + row * T;
  const KeepReader reader(keep);
  const bool dropout = reader.active();
  float* ds = dscore + row * T;
  if (dropout) {
    float* dropped_row = dropped + row * T;
    for (int64_t s = lane; s < T; s += kWarp) dropped_row[s] = p[s] * reader(row * T + s) * keep_scale;
  }
  if (!any_token(mask + row / (NH * T) * T, T, lane)) {
    for (int64_t s = lane; s < T; s += kWarp) ds[s] = 0.0f;
    return;
  }
  float local = 0.0f;
  for (int64_t s = lane; s < T; s += kWarp) {
    float dp = ds[s];
    if (dropout) dp = dp * reader(row * T + s) * keep_scale;
    ds[s] = dp;
    local += p[s] * dp;
  }
  const float weighted_sum = warp_sum(local);
  // Masked keys have p = 0, so their dscore is 0 and they feed nothing into dq, dk.
  for (int64_t s = lane; s < T; s += kWarp) ds[s] = scale * p[s] * (ds[s] - weighted_sum);
}

// The register kernels' dropout: dropped_row[s] = v[j] keep(s) keep_scale for the lane's keys s =
// run4_element(lane, j) < T, kept[j] = keep(s) (1 past T); keep(s) is element first + s of the
// reader's stream, drawn one Philox block per run of 4 keys.
template <int kPer>
__device__ __forceinline__ void drop_row(float* dropped_row, float (&kept)[kPer], const float (&v)[kPer],
                                         const KeepReader& reader, int64_t first, int64_t T, int lane,
                                         float keep_scale) {
#pragma unroll
  for (int run = 0; run < kPer / 4; ++run) {
    const int64_t s0 = run4_element(lane, 4 * run);
    float four[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    if (s0 < T) reader.four(first + s0, four, static_cast<int>(T - s0 < 4 ? T - s0 : 4));
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      kept[4 * run + e] = four[e];
      if (s0 + e < T) dropped_row[s0 + e] = v[4 * run + e] * four[e] * keep_scale;
    }
  }
}

// The two row kernels above with the row held in registers, for T <= kWarp kPer (kPer values a lane, a
// multiple of 4; BERT's T <= 512): each value is read and written once, and a lane owns runs of 4 consecutive
// keys, so it draws one Philox block per run (KeepReader::four: the same keep values) where the kernels above
// draw one per element (and the backward each twice). The same formulas; the row sums add in another order.
template <int kPer>
__global__ void attention_softmax_forward_registers_kernel(float* __restrict__ probs,
                                                           float* __restrict__ dropped,
                                                           const int32_t* __restrict__ mask,
                                                           const KeepSource keep, float keep_scale,
                                                           int64_t rows, int64_t NH, int64_t T, float scale,
                                                           float uniform) {
  static_assert(kPer % 4 == 0, "runs of 4 keys");
  const int lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const int32_t* mask_b = mask + row / (NH * T) * T;
  float* p = probs + row * T;
  float v[kPer];
  bool token[kPer];
  float local_max = -INFINITY;
  bool any = false;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t s = run4_element(lane, j);
    token[j] = s < T && mask_b[s] != 0;
    v[j] = s < T ? p[s] : 0.0f;
    if (token[j]) local_max = fmaxf(local_max, scale * v[j]);
    any |= token[j];
  }
  if (!__any_sync(kFullMask, any)) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) v[j] = uniform;
  } else {
    const float max_score = warp_max(local_max);
    float local_sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      v[j] = token[j] ? expf(scale * v[j] - max_score) : 0.0f;
      local_sum += v[j];
    }
    const float inv_sum = 1.0f / warp_sum(local_sum);
#pragma unroll
    for (int j = 0; j < kPer; ++j) v[j] *= inv_sum;
  }
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    if (run4_element(lane, j) < T) p[run4_element(lane, j)] = v[j];
  }
  const KeepReader reader(keep);
  if (!reader.active()) return;
  float kept[kPer];
  drop_row<kPer>(dropped + row * T, kept, v, reader, row * T, T, lane, keep_scale);
}

template <int kPer>
__global__ void attention_softmax_backward_registers_kernel(
    float* __restrict__ dscore, float* __restrict__ dropped, const float* __restrict__ probs,
    const int32_t* __restrict__ mask, const KeepSource keep, float keep_scale, int64_t rows, int64_t NH,
    int64_t T, float scale) {
  static_assert(kPer % 4 == 0, "runs of 4 keys");
  const int lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const float* p = probs + row * T;
  float* ds = dscore + row * T;
  const KeepReader reader(keep);
  const bool dropout = reader.active();
  float pv[kPer], d[kPer], kept[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int64_t s = run4_element(lane, j);
    pv[j] = s < T ? p[s] : 0.0f;
    d[j] = s < T ? ds[s] : 0.0f;
    kept[j] = 1.0f;
  }
  if (dropout) drop_row<kPer>(dropped + row * T, kept, pv, reader, row * T, T, lane, keep_scale);
  if (!any_token(mask + row / (NH * T) * T, T, lane)) {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      if (run4_element(lane, j) < T) ds[run4_element(lane, j)] = 0.0f;
    }
    return;
  }
  float local = 0.0f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    if (dropout) d[j] = d[j] * kept[j] * keep_scale;
    local += pv[j] * d[j];
  }
  const float weighted_sum = warp_sum(local);
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    if (run4_element(lane, j) < T) ds[run4_element(lane, j)] = scale * pv[j] * (d[j] - weighted_sum);
  }
}

template <typename Vec, bool to_heads, typename Out>
void launch_copy_heads(CudaContext& ctx, dim3 grid, const Copies& copies, int64_t T, int64_t NH,
                       int64_t HSV) {
  attention_copy_heads_kernel<Vec, to_heads, Out><<<grid, kCopyThreads, 0, ctx.stream()>>>(
      copies, static_cast<unsigned>(T), static_cast<unsigned>(NH), static_cast<unsigned>(HSV));
  NLPF_CUDA_CHECK_LAUNCH();
}

// Copies `count` tensors between token-major rows and [B,NH,T,HS] on ctx's stream (to_heads: into
// head-major, f32; else into token-major rows of out_dtype: F32, BF16 or F16).
void copy_heads(CudaContext& ctx, bool to_heads, const Copies& copies, int count, int64_t B, int64_t T,
                int64_t NH, int64_t HS, DType out_dtype = DType::F32) {
  NLPF_CHECK(out_dtype == DType::F32 || (!to_heads && dtype_is_16bit(out_dtype)), ErrorCode::UNSUPPORTED,
             "attention (cuda): an output of dtype ", dtype_name(out_dtype));
  const DType to_dtype = to_heads ? DType::F32 : out_dtype;
  bool vector = HS % 4 == 0;
  for (int i = 0; i < count; ++i) {
    vector = vector && copies.ld[i] % 4 == 0 && aligned16(copies.from[i]) && aligned4(copies.to[i], to_dtype);
  }
  const int64_t HSV = vector ? HS / 4 : HS;
  // The grid, and the kernel's 32-bit indices: T HSV per head, NH HSV per token row (h HSV + d).
  const int64_t chunks = (T * HSV + kCopyThreads - 1) / kCopyThreads;
  NLPF_CHECK(B * NH <= 0x7fffffff && chunks <= 65535 && NH * HSV <= 0x7fffffff, ErrorCode::UNSUPPORTED,
             "attention (cuda): B = ", B, ", T = ", T, ", NH = ", NH, ", HS = ", HS,
             " exceed the copy's grid");
  const dim3 grid(static_cast<unsigned>(B * NH), static_cast<unsigned>(chunks), static_cast<unsigned>(count));
  if (to_heads) {
    return vector ? launch_copy_heads<float4, true, float>(ctx, grid, copies, T, NH, HSV)
                  : launch_copy_heads<float, true, float>(ctx, grid, copies, T, NH, HSV);
  }
  with_float_type("attention", out_dtype, [&]<typename Out>(Out*) {
    vector ? launch_copy_heads<float4, false, Out>(ctx, grid, copies, T, NH, HSV)
           : launch_copy_heads<float, false, Out>(ctx, grid, copies, T, NH, HSV);
  });
}

// One product per (b, h), batch B NH: d [M, N] = op(a) op(b), every operand a contiguous [B,NH,rows,cols]
// array (the row stride its width, the batch stride one matrix).
void batched_matmul(ExecutionContext& ctx, float* d, const float* a, Transpose transpose_a, const float* b,
                    Transpose transpose_b, int64_t batch, int64_t M, int64_t N, int64_t K) {
  MatmulArgs m;
  m.d = d;
  m.a = a;
  m.b = b;
  m.transpose_a = transpose_a;
  m.transpose_b = transpose_b;
  m.M = M;
  m.N = N;
  m.K = K;
  m.lda = transpose_a == Transpose::YES ? M : K;
  m.ldb = transpose_b == Transpose::YES ? K : N;
  m.ldd = N;
  m.batch = batch;
  m.stride_a = M * K;
  m.stride_b = K * N;
  m.stride_d = M * N;
  matmul(ctx, m);
}

// ---- pointer arrays (IEEE fp32): the products read and write rows where they lie ----
//
// Under MathMode::IEEE_FP32 the products take one device pointer per head (b, h) for each operand
// (matmul's pointer_arrays) and read q, k, v, dout and write out, dq, dk, dv as rows of their own stride, so
// no head-major copy is made: on the H200 the copies took 0.85 ms of a bert-base fp32 step, the pointer-array
// products 3% longer than the strided ones (bench/attention_gemm_probe, 2026-11-30). Other math modes keep
// the copies and strided batches.

constexpr int kMaxPointerArrays = 9;
constexpr int kPointerThreads = 128;

// Matrix i = b NH + h of set j starts at base[j] + b batch_bytes[j] + h head_bytes[j]: token-major rows (row
// stride ld) have batch_bytes = T ld 4 and head_bytes = HS 4; head-major [B,NH,rows,cols] arrays one matrix
// each, batch_bytes = NH rows cols 4 and head_bytes = rows cols 4.
struct MatrixSets {
  const char* base[kMaxPointerArrays];
  int64_t batch_bytes[kMaxPointerArrays];
  int64_t head_bytes[kMaxPointerArrays];
};

// pointers [count, batch]: grid ceil(batch / kPointerThreads), thread i fills pointer i of every set.
__global__ void fill_pointer_arrays_kernel(const __grid_constant__ MatrixSets sets, const void** pointers,
                                           int count, unsigned NH, unsigned batch) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= batch) return;
  const unsigned b = i / NH, h = i - b * NH;
  for (int j = 0; j < count; ++j) {
    pointers[static_cast<int64_t>(j) * batch + i] = sets.base[j] +
                                                    static_cast<int64_t>(b) * sets.batch_bytes[j] +
                                                    static_cast<int64_t>(h) * sets.head_bytes[j];
  }
}

// The device pointer arrays of up to kMaxPointerArrays matrix sets (stream-ordered scratch, filled by one
// kernel on the context's stream, so a captured graph refills them at each replay), and the alignment every
// matrix of every set has (a power of two up to 256: cuBLASLt's alignment preference).
class PointerArrays {
 public:
  PointerArrays(CudaContext& ctx, int64_t B, int64_t NH) : ctx_(ctx), B_(B), NH_(NH) {}
  // Adds a set; returns its index.
  int add(const void* base, int64_t batch_bytes, int64_t head_bytes) {
    NLPF_CHECK(count_ < kMaxPointerArrays, ErrorCode::INTERNAL, "attention (cuda): too many pointer arrays");
    sets_.base[count_] = static_cast<const char*>(base);
    sets_.batch_bytes[count_] = batch_bytes;
    sets_.head_bytes[count_] = head_bytes;
    alignment_ = std::min(alignment_, gemm_alignment(base, {batch_bytes, head_bytes}));
    return count_++;
  }
  // Token-major rows of row stride ld (floats), head h in columns [h HS, (h + 1) HS).
  int rows(const void* base, int64_t T, int64_t ld, int64_t HS) { return add(base, T * ld * 4, HS * 4); }
  // A head-major [B,NH,rows,cols] f32 array.
  int heads(const void* base, int64_t rows, int64_t cols) {
    return add(base, NH_ * rows * cols * 4, rows * cols * 4);
  }
  // Fills the arrays (after the last add).
  void fill() {
    const int64_t batch = B_ * NH_;
    buffer_.emplace(ctx_.allocator(), static_cast<size_t>(count_ * batch) * sizeof(void*));
    fill_pointer_arrays_kernel<<<static_cast<unsigned>((batch + kPointerThreads - 1) / kPointerThreads),
                                 kPointerThreads, 0, ctx_.stream()>>>(
        sets_, static_cast<const void**>(buffer_->data()), count_, static_cast<unsigned>(NH_),
        static_cast<unsigned>(batch));
    NLPF_CUDA_CHECK_LAUNCH();
  }
  const void* operator[](int set) const {
    return static_cast<const void* const*>(buffer_->data()) + static_cast<int64_t>(set) * B_ * NH_;
  }
  int alignment() const { return alignment_; }

 private:
  CudaContext& ctx_;
  int64_t B_, NH_;
  MatrixSets sets_{};
  int count_ = 0;
  int alignment_ = 256;
  std::optional<Buffer> buffer_;
};

// One product per (b, h) on pointer arrays: d_i [M, N] = op(a_i) op(b_i), row strides lda, ldb, ldd.
void pointer_matmul(ExecutionContext& ctx, const PointerArrays& arrays, int d, int a, Transpose transpose_a,
                    int b, Transpose transpose_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                    int64_t ldd, int64_t batch) {
  MatmulArgs m;
  m.d = const_cast<void*>(arrays[d]);  // the array of d's pointers (the matrices it points at are written)
  m.a = arrays[a];
  m.b = arrays[b];
  m.transpose_a = transpose_a;
  m.transpose_b = transpose_b;
  m.M = M;
  m.N = N;
  m.K = K;
  m.lda = lda;
  m.ldb = ldb;
  m.ldd = ldd;
  m.batch = batch;
  m.pointer_arrays = true;
  m.pointer_alignment = arrays.alignment();
  matmul(ctx, m);
}

bool use_pointer_arrays(const ExecutionContext& ctx) {
  return ctx.math_mode() == MathMode::IEEE_FP32;
}

unsigned row_blocks(const char* op, int64_t rows) {
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  NLPF_CHECK(blocks <= 0x7fffffff, ErrorCode::UNSUPPORTED, op, ": ", rows, " rows exceed the grid");
  return static_cast<unsigned>(blocks);
}

// Calls run.template operator()<kPer>() with the row kernels' values per lane for rows of T: 4, 8 or 16 (the
// register kernels, T <= 512), or 0 (the kernels that walk the row in memory).
template <typename Run>
void with_row_registers(int64_t T, Run&& run) {
  if (T <= kWarp * 4) return run.template operator()<4>();
  if (T <= kWarp * 8) return run.template operator()<8>();
  if (T <= kWarp * 16) return run.template operator()<16>();
  run.template operator()<0>();
}

float scale_of(int64_t HS) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(HS)));
}

}  // namespace

// Scratch (stream-ordered, from the context's caching allocator): with the copies, q, k, v and the output
// head-major (4 B T C floats); with pointer arrays, only the output head-major for a 16-bit out (B T C); and
// dropout(probs) [B,NH,T,T] when keep is given. The scores are written straight into probs and become the
// probabilities in place.
void attention_forward(ExecutionContext& base, void* out, DType out_dtype, float* probs, const float* q,
                       const float* k, const float* v, int64_t ld_qkv, const int32_t* attention_mask,
                       const KeepSource& keep, float keep_scale, int64_t B, int64_t T, int64_t NH,
                       int64_t HS) {
  const bool dropout = keep.active();
  CudaContext& ctx = cuda_context(base);
  const int64_t rows = B * NH * T, BTC = B * T * NH * HS, batch = B * NH;
  if (rows == 0 || HS == 0) return;
  const int64_t C = NH * HS;
  Buffer dropped(ctx.allocator(), dropout ? static_cast<size_t>(rows * T) * sizeof(float) : 0);
  float* dropped_data = dropout ? static_cast<float*>(dropped.data()) : nullptr;
  const float uniform = static_cast<float>(1.0 / static_cast<double>(T));  // the CPU's rounding
  // probs (scores in) become the probabilities, dropped their dropout.
  const auto softmax = [&] {
    with_row_registers(T, [&]<int kPer>() {
      const unsigned blocks = row_blocks("attention_forward (cuda)", rows);
      if constexpr (kPer == 0) {
        attention_softmax_forward_kernel<<<blocks, kRowsPerBlock * kWarp, 0, ctx.stream()>>>(
            probs, dropped_data, attention_mask, keep, keep_scale, rows, NH, T, scale_of(HS), uniform);
      } else {
        attention_softmax_forward_registers_kernel<kPer><<<blocks, kRowsPerBlock * kWarp, 0, ctx.stream()>>>(
            probs, dropped_data, attention_mask, keep, keep_scale, rows, NH, T, scale_of(HS), uniform);
      }
      NLPF_CUDA_CHECK_LAUNCH();
    });
  };

  if (use_pointer_arrays(base)) {
    std::optional<Buffer> heads;  // the output head-major, for a 16-bit out (rounded in the copy back)
    if (out_dtype != DType::F32) heads.emplace(ctx.allocator(), static_cast<size_t>(BTC) * sizeof(float));
    float* out_heads = heads ? static_cast<float*>(heads->data()) : nullptr;
    PointerArrays arrays(ctx, B, NH);
    const int qs = arrays.rows(q, T, ld_qkv, HS), ks = arrays.rows(k, T, ld_qkv, HS),
              vs = arrays.rows(v, T, ld_qkv, HS), ps = arrays.heads(probs, T, T);
    const int pds = dropout ? arrays.heads(dropped_data, T, T) : ps;
    const int os = out_heads ? arrays.heads(out_heads, T, HS) : arrays.rows(out, T, C, HS);
    arrays.fill();
    // scores = q k^T per head, into probs; then the softmax; then out = dropout(probs) v per head.
    pointer_matmul(base, arrays, ps, qs, Transpose::NO, ks, Transpose::YES, T, T, HS, ld_qkv, ld_qkv, T,
                   batch);
    softmax();
    pointer_matmul(base, arrays, os, pds, Transpose::NO, vs, Transpose::NO, T, HS, T, T, ld_qkv,
                   out_heads ? HS : C, batch);
    if (out_heads) copy_heads(ctx, false, Copies{{out_heads}, {out}, {C}}, 1, B, T, NH, HS, out_dtype);
    return;
  }

  Buffer heads(ctx.allocator(), static_cast<size_t>(4 * BTC) * sizeof(float));
  float* q_heads = static_cast<float*>(heads.data());
  float* k_heads = q_heads + BTC;
  float* v_heads = k_heads + BTC;
  float* out_heads = v_heads + BTC;
  copy_heads(ctx, true, Copies{{q, k, v}, {q_heads, k_heads, v_heads}, {ld_qkv, ld_qkv, ld_qkv}}, 3, B, T, NH,
             HS);
  // scores [B,NH,T,T] = q k^T per head, into probs; the softmax scales them by 1 / sqrt(HS).
  batched_matmul(base, probs, q_heads, Transpose::NO, k_heads, Transpose::YES, batch, T, T, HS);
  softmax();
  // out [B,NH,T,HS] = dropout(probs) v per head, then back to [B,T,C].
  batched_matmul(base, out_heads, dropout ? dropped_data : probs, Transpose::NO, v_heads, Transpose::NO,
                 batch, T, HS, T);
  copy_heads(ctx, false, Copies{{out_heads}, {out}, {C}}, 1, B, T, NH, HS, out_dtype);
}

// Scratch: with the copies, dout, q, k, v head-major (4 B T C floats; the gradients reuse them once their
// operands are read, all on one stream); with pointer arrays, dq, dk, dv head-major for 16-bit gradients
// only (3 B T C); dscore [B,NH,T,T], and dropout(probs) [B,NH,T,T] when keep is given.
void attention_backward(ExecutionContext& base, void* dq, void* dk, void* dv, int64_t ld_dqkv,
                        DType dqkv_dtype, const float* dout, const float* q, const float* k, const float* v,
                        int64_t ld_qkv, const int32_t* attention_mask, const float* probs,
                        const KeepSource& keep, float keep_scale, int64_t B, int64_t T, int64_t NH,
                        int64_t HS) {
  const bool dropout = keep.active();
  CudaContext& ctx = cuda_context(base);
  const int64_t rows = B * NH * T, BTC = B * T * NH * HS, batch = B * NH, C = NH * HS;
  if (rows == 0 || HS == 0) return;
  Buffer dscore(ctx.allocator(), static_cast<size_t>(rows * T) * sizeof(float));
  float* ds = static_cast<float*>(dscore.data());
  Buffer dropped(ctx.allocator(), dropout ? static_cast<size_t>(rows * T) * sizeof(float) : 0);
  float* dropped_data = dropout ? static_cast<float*>(dropped.data()) : nullptr;
  // dscore (dout v^T in) becomes the scores' gradient in place; dropped receives dropout(probs).
  const auto softmax_backward = [&] {
    with_row_registers(T, [&]<int kPer>() {
      const unsigned blocks = row_blocks("attention_backward (cuda)", rows);
      if constexpr (kPer == 0) {
        attention_softmax_backward_kernel<<<blocks, kRowsPerBlock * kWarp, 0, ctx.stream()>>>(
            ds, dropped_data, probs, attention_mask, keep, keep_scale, rows, NH, T, scale_of(HS));
      } else {
        attention_softmax_backward_registers_kernel<kPer><<<blocks, kRowsPerBlock * kWarp, 0, ctx.stream()>>>(
            ds, dropped_data, probs, attention_mask, keep, keep_scale, rows, NH, T, scale_of(HS));
      }
      NLPF_CUDA_CHECK_LAUNCH();
    });
  };

  if (use_pointer_arrays(base)) {
    std::optional<Buffer> grads;  // dq, dk, dv head-major, for 16-bit gradients (rounded in the copy back)
    if (dqkv_dtype != DType::F32)
      grads.emplace(ctx.allocator(), static_cast<size_t>(3 * BTC) * sizeof(float));
    float* g = grads ? static_cast<float*>(grads->data()) : nullptr;
    PointerArrays arrays(ctx, B, NH);
    const int dos = arrays.rows(dout, T, C, HS), qs = arrays.rows(q, T, ld_qkv, HS),
              ks = arrays.rows(k, T, ld_qkv, HS), vs = arrays.rows(v, T, ld_qkv, HS),
              dss = arrays.heads(ds, T, T), pds = arrays.heads(dropout ? dropped_data : probs, T, T);
    const int dqs = g ? arrays.heads(g, T, HS) : arrays.rows(dq, T, ld_dqkv, HS);
    const int dks = g ? arrays.heads(g + BTC, T, HS) : arrays.rows(dk, T, ld_dqkv, HS);
    const int dvs = g ? arrays.heads(g + 2 * BTC, T, HS) : arrays.rows(dv, T, ld_dqkv, HS);
    arrays.fill();
    const int64_t ldg = g ? HS : ld_dqkv;
    // dscore = dout v^T per head, then the softmax backward; dv = dropout(probs)^T dout, dq = dscore k,
    // dk = dscore^T q.
    pointer_matmul(base, arrays, dss, dos, Transpose::NO, vs, Transpose::YES, T, T, HS, C, ld_qkv, T, batch);
    softmax_backward();
    pointer_matmul(base, arrays, dvs, pds, Transpose::YES, dos, Transpose::NO, T, HS, T, T, C, ldg, batch);
    pointer_matmul(base, arrays, dqs, dss, Transpose::NO, ks, Transpose::NO, T, HS, T, T, ld_qkv, ldg, batch);
    pointer_matmul(base, arrays, dks, dss, Transpose::YES, qs, Transpose::NO, T, HS, T, T, ld_qkv, ldg,
                   batch);
    if (g) {
      copy_heads(ctx, false, Copies{{g, g + BTC, g + 2 * BTC}, {dq, dk, dv}, {ld_dqkv, ld_dqkv, ld_dqkv}}, 3,
                 B, T, NH, HS, dqkv_dtype);
    }
    return;
  }

  Buffer heads(ctx.allocator(), static_cast<size_t>(4 * BTC) * sizeof(float));
  float* dout_heads = static_cast<float*>(heads.data());
  float* q_heads = dout_heads + BTC;
  float* k_heads = q_heads + BTC;
  float* v_heads = k_heads + BTC;
  copy_heads(ctx, true,
             Copies{{dout, q, k, v}, {dout_heads, q_heads, k_heads, v_heads}, {C, ld_qkv, ld_qkv, ld_qkv}}, 4,
             B, T, NH, HS);
  // dscore [B,NH,T,T] = dout v^T per head, then the softmax backward in place.
  batched_matmul(base, ds, dout_heads, Transpose::NO, v_heads, Transpose::YES, batch, T, T, HS);
  softmax_backward();
  // dv = dropout(probs)^T dout into v's scratch (v was last read by dout v^T); dq = dscore k into dout's
  // (last read by dv); dk = dscore^T q into k's (last read by dq).
  float* dv_heads = v_heads;
  float* dq_heads = dout_heads;
  float* dk_heads = k_heads;
  batched_matmul(base, dv_heads, dropout ? dropped_data : probs, Transpose::YES, dout_heads, Transpose::NO,
                 batch, T, HS, T);
  batched_matmul(base, dq_heads, ds, Transpose::NO, k_heads, Transpose::NO, batch, T, HS, T);
  batched_matmul(base, dk_heads, ds, Transpose::YES, q_heads, Transpose::NO, batch, T, HS, T);
  copy_heads(ctx, false, Copies{{dq_heads, dk_heads, dv_heads}, {dq, dk, dv}, {ld_dqkv, ld_dqkv, ld_dqkv}}, 3,
             B, T, NH, HS, dqkv_dtype);
}

}  // namespace nlpf::cuda
