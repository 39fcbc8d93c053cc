// The BERT embeddings on CUDA (embeddings_cuda.h), f32. Forward: one block per row gathers and sums the three
// table rows. Backward without atomics, deterministic and bit-identical to the CPU reference, which adds the
// rows of dout into each table row one by one in row order:
//   position: thread (t, c) adds dout[b, t, c] for b = 0..B-1 to dposition[t, c] in a register, in order;
//   word and token type (ids repeat): the (id, row) pairs are sorted by id with CUB's radix sort, which is
//   stable, so each id's rows stay in ascending order; the thread of (first row of an id's run, column c)
//   then adds that run's dout rows in order to the table entry, loading kBatch rows ahead. A run of at least
//   kLongRun rows (the one token type of a single-sentence task is a run of every token) would leave one warp
//   per column tile waiting on its loads: a block of kLongRunWarps warps takes it instead, the warps staging
//   kChunkRows of its dout rows in shared memory at a time and warp 0 adding them in order. Sort buffers come
//   from ctx's allocator. Rows skipped (skip_row: padding) take the key of an invalid id: sorted last, never
//   added.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#include "ops/embeddings_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>
#include <limits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "core/tensor.h"

namespace nlpf::cuda {
namespace {

constexpr int kForwardThreads = 256;
constexpr int kColumnTile = 32;  // columns of a backward block: one 128-byte row segment per warp
constexpr int kRunLanes = 8;     // sorted positions (or positions t) per backward block
constexpr int kBatch = 32;       // dout rows whose loads a run thread issues before adding them in order
constexpr int kWarp = 32;
constexpr int kLongRun = 64;      // runs of at least this many rows go to the long-run kernel
constexpr int kLongRunWarps = 8;  // warps of a long run's block: all stage rows, warp 0 adds them
constexpr int kChunkRows = kLongRunWarps * kWarp;  // dout rows staged per pass of a long run
constexpr unsigned kFullMask = 0xffffffffu;

// out [B T, C]; block n = b T + t (grid B T), threads over columns.
__global__ void __launch_bounds__(kForwardThreads)
    embeddings_forward_kernel(float* __restrict__ out, const int32_t* __restrict__ input_ids,
                              const int32_t* __restrict__ token_type_ids, const float* __restrict__ word,
                              const float* __restrict__ position, const float* __restrict__ token_type,
                              int64_t T, int64_t C, int64_t V, int64_t TV) {
  const int64_t n = blockIdx.x;
  const int32_t id = input_ids[n], type = token_type_ids[n];
  float* out_row = out + n * C;
  if (id < 0 || id >= V || type < 0 || type >= TV) {  // see embeddings_cuda.h: NaN, never a stray read
    for (int64_t c = threadIdx.x; c < C; c += kForwardThreads) out_row[c] = __int_as_float(0x7fc00000);
    return;
  }
  const float* w = word + id * C;
  const float* p = position + (n % T) * C;
  const float* tt = token_type + type * C;
  for (int64_t c = threadIdx.x; c < C; c += kForwardThreads) out_row[c] = w[c] + p[c] + tt[c];
}

// Whether row b T + t adds nothing: padded, in a sequence whose token 0 is not (ops/embeddings.h).
__device__ bool skip_row(const int32_t* __restrict__ padding_mask, int64_t row, int64_t T) {
  return padding_mask != nullptr && padding_mask[row] == 0 && padding_mask[row - row % T] != 0;
}

// dposition [T, C] (+=): thread (t, c) of block (t tile, column tile) adds dout[b, t, c] for b in order,
// skipping the rows skip_row names.
__global__ void __launch_bounds__(kColumnTile* kRunLanes)
    embeddings_position_backward_kernel(float* __restrict__ dposition, const float* __restrict__ dout,
                                        const int32_t* __restrict__ padding_mask, int64_t B, int64_t T,
                                        int64_t C) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRunLanes + threadIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kColumnTile + threadIdx.x;
  if (t >= T || c >= C) return;
  float acc = dposition[t * C + c];
  for (int64_t b = 0; b < B; ++b) {
    const float d = dout[(b * T + t) * C + c];  // loaded whatever the mask: no branch between the loads
    acc = skip_row(padding_mask, b * T + t, T) ? acc : acc + d;
  }
  dposition[t * C + c] = acc;
}

// keys [BT] = ids, with an id outside [0, rows) or a row skip_row names given the key `rows` (sorted last,
// then skipped); order [BT] = 0..BT-1, the row of each key.
__global__ void embeddings_sort_keys_kernel(uint32_t* __restrict__ keys, int32_t* __restrict__ order,
                                            const int32_t* __restrict__ ids,
                                            const int32_t* __restrict__ padding_mask, int64_t BT, int64_t T,
                                            int64_t rows) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= BT) return;
  const int32_t id = ids[i];
  const bool added = id >= 0 && id < rows && !skip_row(padding_mask, i, T);
  keys[i] = added ? static_cast<uint32_t>(id) : static_cast<uint32_t>(rows);
  order[i] = static_cast<int32_t>(i);
}

// Whether sorted position k, the first of its run of key `key`, starts a run of at least kLongRun rows (keys
// are sorted: the run reaches k + kLongRun - 1 if that position holds the same key).
__device__ bool long_run(const uint32_t* __restrict__ keys, int64_t k, uint32_t key, int64_t BT) {
  return k + kLongRun - 1 < BT && keys[k + kLongRun - 1] == key;
}

// dtable [rows, C] (+=) from dout [BT, C] and (keys, order) sorted by key, stably. Thread (k, c) of block
// (k tile, column tile), k the sorted position: where k starts a run of equal valid keys shorter than
// kLongRun, it adds the run's dout rows to dtable[key, c] in sorted (= row) order, issuing kBatch loads at a
// time. Longer runs are embeddings_long_run_backward_kernel's.
__global__ void __launch_bounds__(kColumnTile* kRunLanes)
    embeddings_table_backward_kernel(float* __restrict__ dtable, const float* __restrict__ dout,
                                     const uint32_t* __restrict__ keys, const int32_t* __restrict__ order,
                                     int64_t BT, int64_t C, int64_t rows) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * kRunLanes + threadIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kColumnTile + threadIdx.x;
  if (k >= BT || c >= C) return;
  const uint32_t key = keys[k];
  if (key >= rows || (k > 0 && keys[k - 1] == key)) return;  // an invalid id, or not the first of its run
  if (long_run(keys, k, key, BT)) return;
  float acc = dtable[key * C + c];
  for (int64_t j = k; j < BT; j += kBatch) {
    // The batch's keys and rows first, all loads in flight at once (indices clamped, no branch on a load);
    // then the dout rows of the run's members, predicated; then the adds in order.
    uint32_t batch_keys[kBatch];
    int32_t batch_rows[kBatch];
#pragma unroll
    for (int e = 0; e < kBatch; ++e) {
      const int64_t i = j + e < BT ? j + e : BT - 1;
      batch_keys[e] = keys[i];
      batch_rows[e] = order[i];
    }
    bool in_run[kBatch];
    float d[kBatch];
#pragma unroll
    for (int e = 0; e < kBatch; ++e) {
      in_run[e] = j + e < BT && batch_keys[e] == key;
      d[e] = in_run[e] ? dout[static_cast<int64_t>(batch_rows[e]) * C + c] : 0.0f;
    }
    bool run_goes_on = true;
#pragma unroll
    for (int e = 0; e < kBatch; ++e) {
      acc =
          in_run[e] ? acc + d[e] : acc;  // keys are sorted: once out of the run, the rest of the batch is too
      run_goes_on = in_run[e];
    }
    if (!run_goes_on) break;
  }
  dtable[key * C + c] = acc;
}

// The runs of at least kLongRun rows, in the same order: block (r, column tile) looks for such a run starting
// at a sorted position in [r kLongRun, (r + 1) kLongRun) (at most one can: a run starting before another in
// the same range ends inside it). Per pass, warp w stages the run's dout rows j + 32 w .. j + 32 w + 31 that
// belong to it (lane = column; the rows' indices shuffled from the lanes that loaded them), then warp 0 adds
// the staged rows in sorted order; the run ends at the first pass that stages fewer than kChunkRows rows.
__global__ void __launch_bounds__(kWarp* kLongRunWarps)
    embeddings_long_run_backward_kernel(float* __restrict__ dtable, const float* __restrict__ dout,
                                        const uint32_t* __restrict__ keys, const int32_t* __restrict__ order,
                                        int64_t BT, int64_t C, int64_t rows) {
  __shared__ float staged[kChunkRows][kColumnTile];
  __shared__ int staged_count[kLongRunWarps];
  __shared__ long long run_start;
  const int lane = static_cast<int>(threadIdx.x), warp = static_cast<int>(threadIdx.y);
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kColumnTile + lane;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kLongRun;
  if (warp == 0) {
    long long found = -1;
    for (int64_t k = first + lane; k < first + kLongRun && k < BT; k += kWarp) {
      const uint32_t key = keys[k];
      if (key < rows && (k == 0 || keys[k - 1] != key) && long_run(keys, k, key, BT)) found = k;
    }
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) {
      const long long other = __shfl_xor_sync(kFullMask, found, offset);
      found = other > found ? other : found;
    }
    if (lane == 0) run_start = found;
  }
  __syncthreads();
  const int64_t start = run_start;
  if (start < 0) return;  // the whole block: no long run starts here
  const uint32_t key = keys[start];
  float acc = warp == 0 && c < C ? dtable[key * C + c] : 0.0f;
  for (int64_t j = start;; j += kChunkRows) {
    const int64_t k = j + warp * kWarp + lane;  // the sorted position this lane looks up
    const bool in_run = k < BT && keys[k] == key;
    const int32_t row = in_run ? order[k] : 0;
    const int count = __popc(__ballot_sync(kFullMask, in_run));  // the run's positions are a prefix (sorted)
    float v[kWarp];  // all of the warp's loads in flight before their stores
#pragma unroll
    for (int r = 0; r < kWarp; ++r) {
      const int32_t dout_row = __shfl_sync(kFullMask, row, r);
      v[r] = r < count && c < C ? dout[static_cast<int64_t>(dout_row) * C + c] : 0.0f;
    }
#pragma unroll
    for (int r = 0; r < kWarp; ++r) {
      if (r < count) staged[warp * kWarp + r][lane] = v[r];
    }
    if (lane == 0) staged_count[warp] = count;
    __syncthreads();
    int staged_rows = 0;
    for (int w = 0; w < kLongRunWarps; ++w) {
      const int n = staged_count[w];
      if (warp == 0) {
        for (int r = 0; r < n; ++r) acc += staged[w * kWarp + r][lane];
      }
      staged_rows += n;
    }
    __syncthreads();  // staged and staged_count are written again by the next pass
    if (staged_rows < kChunkRows) break;
  }
  if (warp == 0 && c < C) dtable[key * C + c] = acc;
}

// Bits that hold every key in [0, rows] (rows itself marks an invalid id).
int key_bits(int64_t rows) {
  int bits = 1;
  while (bits < 32 && (int64_t{1} << bits) <= rows) ++bits;
  return bits;
}

size_t round_up_256(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

// The sort buffers of one backward: keys and order in and out [BT], then CUB's temporary storage.
struct SortBuffers {
  uint32_t* keys_in;
  uint32_t* keys_out;
  int32_t* order_in;
  int32_t* order_out;
  void* temp;
  size_t temp_bytes;
};

// dtable [rows, C] += dout rows scattered by ids [BT], padding skipped (the sorted-run method above).
void scatter_rows(CudaContext& ctx, const SortBuffers& buffers, float* dtable, const float* dout,
                  const int32_t* ids, const int32_t* padding_mask, int64_t BT, int64_t T, int64_t C,
                  int64_t rows) {
  constexpr int kKeyThreads = 256;
  embeddings_sort_keys_kernel<<<static_cast<unsigned>((BT + kKeyThreads - 1) / kKeyThreads), kKeyThreads, 0,
                                ctx.stream()>>>(buffers.keys_in, buffers.order_in, ids, padding_mask, BT, T,
                                                rows);
  NLPF_CUDA_CHECK_LAUNCH();
  size_t temp_bytes = buffers.temp_bytes;
  NLPF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(buffers.temp, temp_bytes, buffers.keys_in, buffers.keys_out,
                                                  buffers.order_in, buffers.order_out, BT, 0, key_bits(rows),
                                                  ctx.stream()));
  const dim3 grid(static_cast<unsigned>((BT + kRunLanes - 1) / kRunLanes),
                  static_cast<unsigned>((C + kColumnTile - 1) / kColumnTile));
  embeddings_table_backward_kernel<<<grid, dim3(kColumnTile, kRunLanes), 0, ctx.stream()>>>(
      dtable, dout, buffers.keys_out, buffers.order_out, BT, C, rows);
  NLPF_CUDA_CHECK_LAUNCH();
  // Long runs touch other table rows than the short runs above: no order between the two kernels matters.
  const dim3 long_grid(static_cast<unsigned>((BT + kLongRun - 1) / kLongRun),
                       static_cast<unsigned>((C + kColumnTile - 1) / kColumnTile));
  embeddings_long_run_backward_kernel<<<long_grid, dim3(kWarp, kLongRunWarps), 0, ctx.stream()>>>(
      dtable, dout, buffers.keys_out, buffers.order_out, BT, C, rows);
  NLPF_CUDA_CHECK_LAUNCH();
}

void check_sizes(const char* op, int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV) {
  NLPF_CHECK(B >= 0 && T > 0 && C > 0 && V > 0 && TV > 0, ErrorCode::INVALID_ARGUMENT, op, " (cuda): B = ", B,
             ", T = ", T, ", C = ", C, ", V = ", V, ", TV = ", TV);
  // Rows are blocks of a 1-D grid and i32 indices of the sort; table rows u32 keys; column tiles grid.y.
  NLPF_CHECK(B * T <= std::numeric_limits<int32_t>::max() && V < std::numeric_limits<int32_t>::max() &&
                 TV < std::numeric_limits<int32_t>::max() && (C + kColumnTile - 1) / kColumnTile <= 0xffff,
             ErrorCode::UNSUPPORTED, op, " (cuda): B T = ", B * T, ", C = ", C, " exceed the kernels' grid");
}

}  // namespace

void embeddings_forward(ExecutionContext& ctx, float* out, const int32_t* input_ids,
                        const int32_t* token_type_ids, const float* word, const float* position,
                        const float* token_type, int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV) {
  check_sizes("embeddings_forward", B, T, C, V, TV);
  if (B == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  embeddings_forward_kernel<<<static_cast<unsigned>(B * T), kForwardThreads, 0, cuda.stream()>>>(
      out, input_ids, token_type_ids, word, position, token_type, T, C, V, TV);
  NLPF_CUDA_CHECK_LAUNCH();
}

void embeddings_backward(ExecutionContext& ctx, float* dword, float* dposition, float* dtoken_type,
                         const float* dout, const int32_t* input_ids, const int32_t* token_type_ids,
                         const int32_t* padding_mask, int64_t B, int64_t T, int64_t C, int64_t V,
                         int64_t TV) {
  check_sizes("embeddings_backward", B, T, C, V, TV);
  if (B == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t BT = B * T;

  const dim3 position_grid(static_cast<unsigned>((T + kRunLanes - 1) / kRunLanes),
                           static_cast<unsigned>((C + kColumnTile - 1) / kColumnTile));
  embeddings_position_backward_kernel<<<position_grid, dim3(kColumnTile, kRunLanes), 0, cuda.stream()>>>(
      dposition, dout, padding_mask, B, T, C);
  NLPF_CUDA_CHECK_LAUNCH();

  // CUB's temporary storage for the larger key range (a query: nothing runs, nothing waits).
  size_t temp_bytes = 0;
  for (const int64_t rows : {V, TV}) {
    size_t bytes = 0;
    NLPF_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
        nullptr, bytes, static_cast<const uint32_t*>(nullptr), static_cast<uint32_t*>(nullptr),
        static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), BT, 0, key_bits(rows),
        cuda.stream()));
    temp_bytes = std::max(temp_bytes, bytes);
  }
  const size_t array_bytes = round_up_256(static_cast<size_t>(BT) * sizeof(uint32_t));
  Buffer workspace(ctx.allocator(), 4 * array_bytes + round_up_256(temp_bytes));
  char* base = static_cast<char*>(workspace.data());
  const SortBuffers buffers{reinterpret_cast<uint32_t*>(base),
                            reinterpret_cast<uint32_t*>(base + array_bytes),
                            reinterpret_cast<int32_t*>(base + 2 * array_bytes),
                            reinterpret_cast<int32_t*>(base + 3 * array_bytes),
                            base + 4 * array_bytes,
                            temp_bytes};
  scatter_rows(cuda, buffers, dword, dout, input_ids, padding_mask, BT, T, C, V);
  scatter_rows(cuda, buffers, dtoken_type, dout, token_type_ids, padding_mask, BT, T, C, TV);
}

}  // namespace nlpf::cuda
