// The linear layer on CUDA: forward is one cuBLASLt GEMM with the bias epilogue and the residual as its C
// matrix; backward is two GEMMs (dx = dy W, dweight += dy^T x with beta = 1) and a column-sum kernel for the
// bias gradient. Parameter gradients accumulate (+=), activation gradients overwrite (=).
#include "ops/linear_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "backend/cuda/gemm.h"
#include "core/tensor.h"
#include "ops/column_sums_cuda.h"

namespace nlpf::cuda {
namespace {

// Column sums of dy [N,OC]: a block owns kColumns columns (one per lane: a warp reads 128 contiguous bytes of
// a row) and one chunk of rows, which its kRowThreads rows of threads walk with stride kRowThreads. Sums run
// in double (as the CPU's) in a fixed order, so the result does not depend on timing: no atomics. The rows
// are cut into enough chunks for about kTargetBlocks blocks (a function of N and OC only, so the order, and
// the result, is the same on every device); finish_column_sums adds the chunks' sums. One chunk of 4,096 rows
// left a 768-wide bias to 24 blocks (16 us a bias gradient at bert-base's 32 x 128 tokens).
constexpr int kColumns = 32;
constexpr int kRowThreads = 32;
constexpr int64_t kTargetBlocks = 256;
constexpr int64_t kMinChunkRows = 256;

// grid (ceil(OC / kColumns), chunks), block (kColumns, kRowThreads); chunk k is rows [k chunk_rows,
// min(N, (k + 1) chunk_rows)). partial [chunks, OC] gets each chunk's sum; with partial == nullptr (a single
// chunk) the sum is added straight into dbias [OC] (+=). dy of T: f32, or the 16-bit dy of a mixed-precision
// backward (each value widened exactly).
template <typename T>
__global__ void bias_gradient_partial_kernel(double* __restrict__ partial, float* __restrict__ dbias,
                                             const T* __restrict__ dy, int64_t N, int64_t OC,
                                             int64_t chunk_rows) {
  __shared__ double sums[kRowThreads][kColumns];
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kColumns + threadIdx.x;
  const int64_t row_begin = static_cast<int64_t>(blockIdx.y) * chunk_rows;
  const int64_t row_end = min(N, row_begin + chunk_rows);
  double sum = 0;
  if (o < OC) {
    for (int64_t n = row_begin + threadIdx.y; n < row_end; n += kRowThreads) sum += to_float(dy[n * OC + o]);
  }
  sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || o >= OC) return;
  double total = 0;
#pragma unroll
  for (int r = 0; r < kRowThreads; ++r) total += sums[r][threadIdx.x];
  if (partial != nullptr) {
    partial[static_cast<int64_t>(blockIdx.y) * OC + o] = total;
  } else {
    dbias[o] += static_cast<float>(total);
  }
}

template <typename T>
void bias_gradient(CudaContext& ctx, float* dbias, const T* dy, int64_t N, int64_t OC) {
  const int64_t column_blocks = (OC + kColumns - 1) / kColumns;
  const int64_t max_chunks = std::max<int64_t>(1, (N + kMinChunkRows - 1) / kMinChunkRows);
  const int64_t wanted = std::min(max_chunks, std::max<int64_t>(1, kTargetBlocks / column_blocks));
  const int64_t chunk_rows = std::max<int64_t>(1, (N + wanted - 1) / wanted);
  const int64_t chunks = std::max<int64_t>(1, (N + chunk_rows - 1) / chunk_rows);
  NLPF_CHECK(chunks <= 65535 && column_blocks <= 0x7fffffff, ErrorCode::UNSUPPORTED,
             "linear_backward (cuda): N = ", N, ", OC = ", OC, " exceed the bias-gradient grid");
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(chunks));
  const dim3 block(kColumns, kRowThreads);
  if (chunks == 1) {
    bias_gradient_partial_kernel<T><<<grid, block, 0, ctx.stream()>>>(nullptr, dbias, dy, N, OC, chunk_rows);
    NLPF_CUDA_CHECK_LAUNCH();
    return;
  }
  // Stream-ordered scratch: freed (cudaFreeAsync on the stream) after the kernels that use it.
  Buffer partial(ctx.allocator(), static_cast<size_t>(chunks * OC) * sizeof(double));
  double* partial_data = static_cast<double*>(partial.data());
  bias_gradient_partial_kernel<T>
      <<<grid, block, 0, ctx.stream()>>>(partial_data, nullptr, dy, N, OC, chunk_rows);
  NLPF_CUDA_CHECK_LAUNCH();
  finish_column_sums(ctx, dbias, nullptr, OC, partial_data, chunks, OC);
}

}  // namespace

void linear_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight, const void* bias,
                    const void* residual, DType dtype, int64_t N, int64_t C, int64_t OC, int64_t ldx,
                    std::optional<DType> operand_dtype) {
  gemm(ctx, GemmArgs{.y = y,
                     .x = x,
                     .weight = weight,
                     .bias = bias,
                     .residual = residual,
                     .dtype = dtype,
                     .operand_dtype = operand_dtype,
                     .N = N,
                     .C = C,
                     .OC = OC,
                     .ldx = ldx});
}

void linear_gelu_tanh_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                              const void* bias, DType dtype, int64_t N, int64_t C, int64_t OC) {
  gemm(ctx, GemmArgs{.y = y,
                     .x = x,
                     .weight = weight,
                     .bias = bias,
                     .dtype = dtype,
                     .gelu = true,
                     .N = N,
                     .C = C,
                     .OC = OC,
                     .ldx = C});
}

namespace {

// The arguments every fp8 linear passes to gemm_fp8; the caller adds its residual, GELU or E4M3 output.
Fp8GemmArgs fp8_args(void* y, const void* x, const void* weight, const float* x_scale,
                     const float* weight_scale, int64_t weight_scale_count, const void* bias, DType y_dtype,
                     int64_t N, int64_t C, int64_t OC) {
  return Fp8GemmArgs{.y = y,
                     .x = x,
                     .weight = weight,
                     .x_scale = x_scale,
                     .weight_scale = weight_scale,
                     .weight_scale_count = weight_scale_count,
                     .bias = bias,
                     .out_dtype = y_dtype,
                     .N = N,
                     .C = C,
                     .OC = OC};
}

Fp8GemmArgs gelu_e4m3_args(uint8_t* codes, const void* x, const void* weight, const float* x_scale,
                           const float* weight_scale, int64_t weight_scale_count, const void* bias,
                           const float* y_scale_inverse, int64_t N, int64_t C, int64_t OC) {
  Fp8GemmArgs args =
      fp8_args(codes, x, weight, x_scale, weight_scale, weight_scale_count, bias, DType::F8E4M3, N, C, OC);
  args.y_scale_inverse = y_scale_inverse;
  args.gelu = true;
  return args;
}

}  // namespace

void linear_fp8_residual_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                                 const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                                 const void* bias, const void* residual, DType y_dtype, int64_t N, int64_t C,
                                 int64_t OC) {
  Fp8GemmArgs args =
      fp8_args(y, x, weight, x_scale, weight_scale, weight_scale_count, bias, y_dtype, N, C, OC);
  args.residual = residual;
  gemm_fp8(ctx, args);
}

void linear_fp8_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                        const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                        const void* bias, DType y_dtype, int64_t N, int64_t C, int64_t OC) {
  linear_fp8_residual_forward(ctx, y, x, weight, x_scale, weight_scale, weight_scale_count, bias, nullptr,
                              y_dtype, N, C, OC);
}

void linear_fp8_gelu_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                             const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                             const void* bias, DType y_dtype, int64_t N, int64_t C, int64_t OC) {
  Fp8GemmArgs args =
      fp8_args(y, x, weight, x_scale, weight_scale, weight_scale_count, bias, y_dtype, N, C, OC);
  args.gelu = true;
  gemm_fp8(ctx, args);
}

namespace {

constexpr std::pair<Fp8ChannelForm, const char*> kFp8ChannelForms[] = {
    {Fp8ChannelForm::OUTER_VECTOR, "outer_vector"},
    {Fp8ChannelForm::ALPHA_VECTOR, "alpha_vector"},
    {Fp8ChannelForm::TWO_PASS, "two_pass"}};

}  // namespace

std::string fp8_channel_gemm_form(ExecutionContext& ctx) {
  const Fp8ChannelForm form = cuda_context(ctx).gemm_plans().fp8_channel_form;
  for (const auto& [value, name] : kFp8ChannelForms) {
    if (value == form) return name;
  }
  return "";
}

std::vector<GemmAutotuneRecord> gemm_autotune_records(ExecutionContext& ctx) {
  return cuda_context(ctx).gemm_plans().autotune_records();
}

void set_fp8_channel_gemm_form(ExecutionContext& ctx, const std::string& form) {
  for (const auto& [value, name] : kFp8ChannelForms) {
    if (form == name) {
      cuda_context(ctx).gemm_plans().fp8_channel_form = value;
      return;
    }
  }
  NLPF_THROW(ErrorCode::INVALID_ARGUMENT, "set_fp8_channel_gemm_form: '", form,
             "' (expected outer_vector, alpha_vector or two_pass)");
}

void linear_fp8_gelu_e4m3_forward(ExecutionContext& ctx, uint8_t* codes, const void* x, const void* weight,
                                  const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                                  const void* bias, const float* y_scale_inverse, int64_t N, int64_t C,
                                  int64_t OC) {
  gemm_fp8(ctx, gelu_e4m3_args(codes, x, weight, x_scale, weight_scale, weight_scale_count, bias,
                               y_scale_inverse, N, C, OC));
}

bool linear_fp8_gelu_e4m3_available(ExecutionContext& ctx, uint8_t* codes, const void* x, const void* weight,
                                    const float* x_scale, const float* weight_scale,
                                    int64_t weight_scale_count, const void* bias,
                                    const float* y_scale_inverse, int64_t N, int64_t C, int64_t OC) {
  return gemm_fp8_available(ctx, gelu_e4m3_args(codes, x, weight, x_scale, weight_scale, weight_scale_count,
                                                bias, y_scale_inverse, N, C, OC));
}

void linear_backward(ExecutionContext& ctx, float* dx, float* dweight, float* dbias, const void* dy,
                     const void* x, const void* weight, DType operand_dtype, int64_t N, int64_t C, int64_t OC,
                     bool accumulate_dx) {
  const std::optional<DType> operands =
      operand_dtype == DType::F32 ? std::nullopt : std::optional<DType>(operand_dtype);
  // dx [N,C] (= or +=) dy [N,OC] W [OC,C]: both as stored.
  MatmulArgs dx_args;
  dx_args.d = dx;
  dx_args.accumulate = accumulate_dx;
  dx_args.a = dy;
  dx_args.b = weight;
  dx_args.operand_dtype = operands;
  dx_args.M = N;
  dx_args.N = C;
  dx_args.K = OC;
  dx_args.lda = OC;
  dx_args.ldb = C;
  dx_args.ldd = C;
  matmul(ctx, dx_args);
  // dweight [OC,C] += dy^T x: dy stored [N,OC] read transposed, x [N,C] as stored.
  MatmulArgs dweight_args;
  dweight_args.d = dweight;
  dweight_args.a = dy;
  dweight_args.b = x;
  dweight_args.transpose_a = Transpose::YES;
  dweight_args.accumulate = true;
  dweight_args.operand_dtype = operands;
  dweight_args.M = OC;
  dweight_args.N = C;
  dweight_args.K = N;
  dweight_args.lda = OC;
  dweight_args.ldb = C;
  dweight_args.ldd = C;
  matmul(ctx, dweight_args);
  CudaContext& cuda = cuda_context(ctx);
  with_float_type("linear_backward", operand_dtype,
                  [&]<typename T>(T*) { bias_gradient(cuda, dbias, static_cast<const T*>(dy), N, OC); });
}

}  // namespace nlpf::cuda
