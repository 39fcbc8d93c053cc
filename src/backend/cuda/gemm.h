// Row-major GEMMs through cuBLASLt with fused epilogues, for the ops' CUDA kernels. Two entry points:
//   gemm:   y [N, OC] (=) x [N, C] W^T + bias (+ residual)      W [OC, C] as nn.Linear stores it;
//   matmul: d [M, N] (= or +=) op(a) [M, K] op(b) [K, N]        op = identity or transpose (the backward
//           products dx = dy W and dweight += dy^T x), optionally strided-batched (the attention products).
// Both map to cuBLASLt's column-major view: a row-major [r, c] array with leading dimension ld is the
// column-major [c, r] matrix, its transpose, so d^T [N, M] = op(b)^T op(a)^T with b as cuBLASLt's A matrix
// and a as its B matrix; no operand is transposed in memory. Leading dimensions may exceed the row width
// (the pooler reads token 0 of every sequence with ldx = T C). The bias is cuBLASLt's BIAS epilogue; the
// residual, or d itself when accumulating, is its C matrix with beta = 1, so "bias + residual" and "+=" cost
// no extra pass. Math (DESIGN §5): f32 with IEEE fp32 (MathMode::IEEE_FP32), TF32 tensor cores
// (MathMode::TF32), or bf16 / fp16 down-converted inputs (MathMode::BF16 / FP16), for every GEMM here; bf16
// and f16 with fp32 accumulation and scale. Plans (descriptors, layouts and the heuristic's algorithm) are
// cached in the context per transposes, shape, leading dimensions, dtypes, math mode, epilogue, C matrix,
// batch and operand alignment, so a repeated shape costs a pointer update and the launch, and a CUDA graph
// can capture it (the workspace is the context's, no allocation inside). The algorithm is the heuristic's
// first, or with GemmSelection::AUTOTUNE (backend/context.h) the fastest of its first
// autotune_candidates() (8 by default) timed on the GEMM's own operands when the plan is made, in
// autotune_rounds() rounds (1 by default; a candidate counts its fastest).
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

struct GemmArgs {
  void* y = nullptr;               // [N, OC], row stride OC
  const void* x = nullptr;         // [N, C], row stride ldx
  const void* weight = nullptr;    // [OC, C]
  const void* bias = nullptr;      // [OC], dtype of y; nullptr: no bias
  const void* residual = nullptr;  // [N, OC]; nullptr: none (may equal y)
  DType dtype = DType::F32;        // of y, bias and residual; of x and weight too unless operand_dtype
  // x and weight as BF16 or F16 beside an F32 y (autocast's mixed form: 16-bit products, fp32 accumulation
  // and output, plain COMPUTE_32F whatever the math mode); empty: dtype.
  std::optional<DType> operand_dtype = std::nullopt;
  bool gelu = false;  // cuBLASLt's GELU epilogue after the bias: the tanh form of GELU
  int64_t N = 0, C = 0, OC = 0, ldx = 0;
};

// The fp8 form of gemm (DESIGN §5 fp8, issue 13): y [N, OC] (=) epilogue((x_scale x) (w_scale W)^T + bias
// (+ residual)) with x [N, C] and W [OC, C] as E4M3 codes (core/fp8.h), x_scale and w_scale one f32 each in
// device memory (read by the GEMM, so a captured graph follows their updates), fp32 accumulation. cuBLASLt's
// fp8 products take the weight transposed and x as stored: exactly nn.Linear's layout. C and OC must be
// multiples of 16 (fp8 tensor-core tiles; cuBLASLt's requirement for E4M3 operands).
// Output: F16 or BF16 (bias and residual in that dtype), or F8E4M3 codes for the next fp8 GEMM: then the bias
// is BF16, there is no residual, and y_scale_inverse (device f32, 1 / the output's scale) is cuBLASLt's D
// scale, which multiplies the result before its rounding to E4M3 (saturating): y = e4m3(result / y_scale).
// Weight scales per tensor (weight_scale_count 1: cuBLASLt's SCALAR_32F, one f32 each for x and W), or per
// output channel (weight_scale_count OC: CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, cuBLASLt 12.9+). That
// mode is set on both operands, as PyTorch's row-wise scaled_mm sets it: product element (i, j) of
// cuBLASLt's op(A) [M, K] op(B) [K, N] is multiplied by A's scale i and B's scale j; its A is W (M = OC: one
// scale per row of W, an output channel) and its B is x (N rows: x_scale then holds N values, x's per-tensor
// scale repeated; a caller keeps one buffer for its largest N). cuBLAS's documentation of that mode (§
// "Outer Vector Scaling for FP8 Data Types") requires both A and B scale modes set to it and gives no D
// scale: D is f16, bf16 or f32 only. So an E4M3 output with per-channel scales is UNSUPPORTED here and
// gemm_fp8_available says false for it; the caller writes 16 bits and quantises in a pass
// (model/bert_inference.h). cuBLASLt may refuse that mode (the H200's did, CUDA 13.0), so per-channel scales
// take the first of these forms it runs (Fp8ChannelForm):
//   OUTER_VECTOR  the mode above: one GEMM;
//   ALPHA_VECTOR  one GEMM with the weight's scales as cuBLASLt's alpha, a device vector with one value per
//                 row of its D (CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO, or _BETA_HOST with the
//                 residual as C), x's scale (its first value) as B's scalar scale: the same products, each
//                 output channel multiplied by its scale before the bias, the residual and the one rounding;
//   TWO_PASS      the product with x's scale only into an f32 scratch [N, OC], then one kernel
//                 y = act(product * weight_scale[oc] + bias[oc]) (+ residual), rounded once: the same
//                 arithmetic with one more pass over an f32 [N, OC].
enum class Fp8ChannelForm { NOT_CHOSEN, OUTER_VECTOR, ALPHA_VECTOR, TWO_PASS };
struct Fp8GemmArgs {
  void* y = nullptr;                       // [N, OC] in out_dtype
  const void* x = nullptr;                 // [N, C] E4M3, row stride C
  const void* weight = nullptr;            // [OC, C] E4M3
  const float* x_scale = nullptr;          // device, 1 value (weight_scale_count 1) or N values (OC)
  const float* weight_scale = nullptr;     // device, weight_scale_count values
  int64_t weight_scale_count = 1;          // 1 (per tensor) or OC (per output channel)
  const void* bias = nullptr;              // [OC] in out_dtype (BF16 for an E4M3 out_dtype); nullptr: none
  const void* residual = nullptr;          // [N, OC] in out_dtype (may equal y); nullptr: none; 16-bit only
  const float* y_scale_inverse = nullptr;  // device, 1 value; required for (only for) an E4M3 out_dtype
  bool gelu = false;                       // cuBLASLt's GELU epilogue after the bias (tanh form)
  DType out_dtype = DType::BF16;
  int64_t N = 0, C = 0, OC = 0;
};

// Whether an operand of matmul is read as stored or transposed.
enum class Transpose { NO, YES };

// d [M, N] (row stride ldd) (=, or += with Accumulate) op(a) op(b). a is stored [M, K] (Transpose::NO) or
// [K, M] (YES), row stride lda; b is stored [K, N] (NO) or [N, K] (YES), row stride ldb. Every array of
// `dtype`. Strided-batched with batch > 1: matrix i of a, b and d starts stride_a, stride_b, stride_d
// elements after matrix i - 1 (cuBLASLt's BATCH_COUNT and STRIDED_BATCH_OFFSET); the matrices of d must not
// overlap (stride_d >= M ldd), those of a and b may (stride 0 reuses one matrix). batch = 1: strides unused.
// Pointer arrays (pointer_arrays, batch >= 1): a, b and d are device arrays of `batch` pointers, matrix i of
// each at its pointer i (cuBLASLt's BATCH_MODE_POINTER_ARRAY; the strides unused), each matrix
// pointer_alignment bytes aligned (a power of two the caller vouches for: the pointers are not read on the
// host). The attention's per-head products read q, k and v where the packed projection [B,T,3C] holds them
// this way, rows of stride 3C, instead of copying them head-major first.
struct MatmulArgs {
  void* d = nullptr;
  const void* a = nullptr;
  const void* b = nullptr;
  Transpose transpose_a = Transpose::NO, transpose_b = Transpose::NO;
  bool accumulate = false;   // d += op(a) op(b) (beta = 1, d as cuBLASLt's C matrix); else d = op(a) op(b)
  DType dtype = DType::F32;  // of d; of a and b too unless operand_dtype
  // a and b as BF16 or F16 beside an F32 d (as GemmArgs'); empty: dtype.
  std::optional<DType> operand_dtype = std::nullopt;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldd = 0;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_d = 0;
  bool pointer_arrays = false;
  int pointer_alignment = 4;
};

class GemmPlanCache {
 public:
  GemmPlanCache();
  ~GemmPlanCache();
  GemmPlanCache(const GemmPlanCache&) = delete;
  GemmPlanCache& operator=(const GemmPlanCache&) = delete;

  struct Plan;
  // (dtype, operand dtype, math mode, transpose a, transpose b, M, N, K, lda, ldb, ldd, epilogue, reads C,
  // alignment of cuBLASLt's A, B, C and D, fp8 (0 none, 1 E4M3 operands, 2 E4M3 operands and D; + 2 with
  // outer-vector scales, + 4 with an alpha vector), algorithm selection, autotune candidates and rounds (0
  // unless AUTOTUNE), batch, stride a, stride b, stride d, pointer arrays) in matmul's row-major terms.
  using Key =
      std::tuple<int, int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, bool,
                 int, int, int, int, int, int, int, int, int64_t, int64_t, int64_t, int64_t, bool>;
  std::map<Key, std::unique_ptr<Plan>> plans;
  // Every plan AUTOTUNE timed (GemmAutotuneRecord, backend/context.h), in key order.
  std::vector<GemmAutotuneRecord> autotune_records() const;
  // The form per-channel gemm_fp8 runs on this context: chosen at its first call, from the first form
  // cuBLASLt does not refuse; a test may set it to start the choice at a later form.
  Fp8ChannelForm fp8_channel_form = Fp8ChannelForm::NOT_CHOSEN;
};

// Queue the GEMM on ctx's stream. Errors: INVALID_ARGUMENT for sizes (non-positive, a leading dimension below
// the row width, a batch below 1 or past 2^31 - 1, negative strides, overlapping matrices of d), UNSUPPORTED
// for a dtype cuBLASLt is not asked to do here (16-bit operands with an output other than their dtype or
// F32), CUBLAS when no algorithm fits.
void gemm(ExecutionContext& ctx, const GemmArgs& args);
void matmul(ExecutionContext& ctx, const MatmulArgs& args);

// The largest power of two up to 256 (cuBLASLt's default assumption) dividing ptr's address and every step
// (bytes): the alignment of every matrix at ptr plus any sum of the steps (a batch's stride; a pointer
// array's per-sequence and per-head offsets, MatmulArgs::pointer_alignment).
int gemm_alignment(const void* ptr, std::initializer_list<int64_t> step_bytes);
// INVALID_ARGUMENT also for C or OC not a multiple of 16, a residual with an E4M3 output or a
// weight_scale_count other than 1 or OC, UNSUPPORTED for an out_dtype other than F16, BF16 or F8E4M3, and
// for an F8E4M3 out_dtype with per-channel weight scales.
// Per-channel weight scales: the forms of Fp8ChannelForm, the first cuBLASLt runs.
void gemm_fp8(ExecutionContext& ctx, const Fp8GemmArgs& args);
// Whether cuBLASLt runs gemm_fp8(args) on this device: the plan is built and cached and launched once on
// args' buffers (call it outside a graph capture, on buffers it may overwrite). A configuration the library
// may refuse (E4M3 output with the GELU epilogue) is asked before use, so that the caller can take its
// fallback instead of failing in the middle of a forward. Argument errors throw as gemm_fp8's.
bool gemm_fp8_available(ExecutionContext& ctx, const Fp8GemmArgs& args);

}  // namespace nlpf::cuda
