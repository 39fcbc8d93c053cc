// cuBLASLt GEMM plans and launches (see gemm.h): gemm's nn.Linear form is one case of matmul's row-major
// d = op(a) op(b) (a = x, b = W transposed), so both share one plan builder and one cache.
#include "backend/cuda/gemm.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"

namespace nlpf::cuda {

struct GemmPlanCache::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  // What AUTOTUNE timed and chose for this plan (gemm_autotune_records); empty for a plan it did not time.
  std::optional<GemmAutotuneRecord> autotune;
  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

GemmPlanCache::GemmPlanCache() = default;
GemmPlanCache::~GemmPlanCache() = default;

std::vector<GemmAutotuneRecord> GemmPlanCache::autotune_records() const {
  std::vector<GemmAutotuneRecord> records;
  for (const auto& [key, plan] : plans) {
    if (plan && plan->autotune) records.push_back(*plan->autotune);
  }
  return records;
}

namespace {

// One GEMM in matmul's row-major terms, with the epilogue and the C matrix: what a plan depends on, and the
// pointers of one launch.
struct Problem {
  void* d = nullptr;
  const void* a = nullptr;
  const void* b = nullptr;
  const void* c = nullptr;     // read with beta = 1 (residual, or d when accumulating); nullptr: beta = 0
  const void* bias = nullptr;  // [N] added to every row of d (BIAS epilogue); nullptr: none
  bool transpose_a = false, transpose_b = false, gelu = false;
  DType dtype = DType::F32;          // of d, c and bias
  DType operand_dtype = DType::F32;  // of a and b unless fp8: dtype, or BF16 / F16 beside an F32 dtype
  // a and b as E4M3 codes with one f32 scale each in device memory (cuBLASLt's A and B scale pointers).
  bool fp8 = false;
  const float* scale_a = nullptr;
  const float* scale_b = nullptr;
  // fp8 only: cuBLASLt's OUTER_VEC_32F mode on both operands (gemm.h), scale_b [N] (one per column of d, an
  // output channel) and scale_a [M] (one per row of a and d).
  bool outer_vec_scales = false;
  // fp8 only: cuBLASLt's ALPHA_DEVICE_VECTOR pointer modes (gemm.h): alpha [N] in device memory, one per
  // column of d (an output channel), beta 0 or, with c, 1 from the host.
  const float* alpha_vector = nullptr;
  // d as E4M3 codes too (fp8 only): d = e4m3(result * scale_d), c and the bias then in `dtype` (BF16).
  bool fp8_out = false;
  const float* scale_d = nullptr;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldd = 0;
  // Strided batch (gemm.h's MatmulArgs): batch matrices, each stride_* elements after the previous one.
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_d = 0;
  // Pointer arrays (MatmulArgs'): a, b, d (and c) point at device arrays of batch matrix pointers, every
  // matrix pointer_alignment bytes aligned.
  bool pointer_arrays = false;
  int pointer_alignment = 4;
};

cudaDataType_t cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::BF16:
      return CUDA_R_16BF;
    case DType::F16:
      return CUDA_R_16F;
    default:
      break;
  }
  NLPF_THROW(ErrorCode::UNSUPPORTED, "gemm: dtype ", dtype_name(dtype), " (expected f32, bf16 or f16)");
}

// The alignment every matrix of a batch has: gemm_alignment of its first matrix and, in a batch, the stride
// in bytes between its matrices.
int alignment_of(const void* ptr, int64_t batch = 1, int64_t stride_bytes = 0) {
  return batch > 1 ? gemm_alignment(ptr, {stride_bytes}) : gemm_alignment(ptr, {});
}

// A layout of a strided batch: cuBLASLt's BATCH_COUNT and STRIDED_BATCH_OFFSET (in elements).
void set_batch(cublasLtMatrixLayout_t layout, int64_t batch, int64_t stride) {
  const auto count = static_cast<int32_t>(batch);
  NLPF_CUDA_CHECK(
      cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                   &stride, sizeof stride));
}

// A layout of a pointer-array batch: BATCH_COUNT and BATCH_MODE_POINTER_ARRAY.
void set_pointer_batch(cublasLtMatrixLayout_t layout, int64_t batch) {
  const auto count = static_cast<int32_t>(batch);
  const auto mode = static_cast<int32_t>(CUBLASLT_BATCH_MODE_POINTER_ARRAY);
  NLPF_CUDA_CHECK(
      cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
  NLPF_CUDA_CHECK(
      cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_MODE, &mode, sizeof mode));
}

cublasLtEpilogue_t epilogue_of(const Problem& p) {
  return p.gelu ? (p.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                : (p.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
}

// Alignments in cuBLASLt's order: A (= b), B (= a), C, D.
struct Alignments {
  int a, b, c, d;
};

// A GEMM that can be run more than once with the same result: its output is not also read as its C matrix
// (accumulation) or as an operand. Only such a GEMM is timed on its own operands.
bool repeatable(const Problem& p) {
  return p.c != p.d && p.a != p.d && p.b != p.d;
}

bool capturing(CudaContext& ctx) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  NLPF_CUDA_CHECK(cudaStreamIsCapturing(ctx.stream(), &status));
  return status != cudaStreamCaptureStatusNone;
}

// The pointers of one launch that live in the matmul descriptor (bias, fp8 scales).
void bind_pointers(GemmPlanCache::Plan& plan, const Problem& p) {
  if (p.bias) {
    NLPF_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  }
  if (p.fp8) {  // cuBLASLt's A is b (the weight), its B is a (x)
    NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                   &p.scale_b, sizeof p.scale_b));
    NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                   &p.scale_a, sizeof p.scale_a));
  }
  if (p.fp8_out) {
    NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_D_SCALE_POINTER,
                                                   &p.scale_d, sizeof p.scale_d));
  }
}

// Without a C matrix (beta = 0) C's pointer is d's, except for an E4M3 d: C's layout is then bf16, and with
// C == D cuBLASLt refused that GEMM at launch on the H200 (CUBLAS_STATUS_INVALID_VALUE), so C is null there,
// as PyTorch's scaled_mm passes it (it then ran on the H200 on 2026-11-30; gemm_fp8_available still catches
// a refusal).
cublasStatus_t launch(CudaContext& ctx, const GemmPlanCache::Plan& plan, const Problem& p,
                      const cublasLtMatmulAlgo_t& algo) {
  const float alpha = 1.0f, beta = p.c ? 1.0f : 0.0f;
  const void* c = p.c ? p.c : (p.fp8_out ? nullptr : p.d);
  const void* alpha_pointer = p.alpha_vector ? static_cast<const void*>(p.alpha_vector) : &alpha;
  return cublasLtMatmul(ctx.cublaslt(), plan.desc, alpha_pointer, p.b, plan.a, p.a, plan.b, &beta, c, plan.c,
                        p.d, plan.d, &algo, ctx.workspace(), ctx.workspace_bytes(), ctx.stream());
}

// The chosen algorithm's configuration as text, for the autotune's records and the check of a replayed
// choice: cuBLASLt's algorithm id, tile, stages, split-K, CTA swizzling and custom option.
std::string algo_text(const cublasLtMatmulAlgo_t& algo) {
  const auto get = [&](cublasLtMatmulAlgoConfigAttributes_t attribute) {
    uint32_t value = 0;  // int32_t for CUBLASLT_ALGO_CONFIG_ID, of the same size
    size_t written = 0;
    NLPF_CUDA_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, attribute, &value, sizeof value, &written));
    return std::to_string(static_cast<int32_t>(value));
  };
  return "algo " + get(CUBLASLT_ALGO_CONFIG_ID) + " tile " + get(CUBLASLT_ALGO_CONFIG_TILE_ID) + " stages " +
         get(CUBLASLT_ALGO_CONFIG_STAGES_ID) + " split-k " + get(CUBLASLT_ALGO_CONFIG_SPLITK_NUM) +
         " swizzle " + get(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING) + " custom " +
         get(CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION);
}

// set_autotune_replay's choice for the plan named `name` (nothing timed): its record's candidate, when the
// heuristic offers as many candidates as the record timed and that candidate has the recorded configuration;
// INVALID_ARGUMENT otherwise (records of another workload, library or GPU).
cublasLtMatmulAlgo_t replayed_choice(const ExecutionContext& ctx, GemmPlanCache::Plan& plan,
                                     const std::string& name, const cublasLtMatmulHeuristicResult_t* results,
                                     int found) {
  const GemmAutotuneRecord* record = ctx.autotune_replay(name);
  NLPF_CHECK(record != nullptr, ErrorCode::INVALID_ARGUMENT, "autotune replay: no record of GEMM plan ", name,
             " (the records are another workload's)");
  const std::string now = found == static_cast<int>(record->candidate_ms.size())
                              ? algo_text(results[record->chosen].algo)
                              : std::to_string(found) + " candidates";
  NLPF_CHECK(now == record->chosen_algo && results[record->chosen].state == CUBLAS_STATUS_SUCCESS,
             ErrorCode::INVALID_ARGUMENT, "autotune replay: GEMM plan ", name, " recorded ",
             record->candidate_ms.size(), " candidates, candidate ", record->chosen, " ", record->chosen_algo,
             "; here: ", now);
  plan.autotune = *record;
  plan.autotune->replayed = true;
  return results[record->chosen].algo;
}

// GemmSelection::AUTOTUNE, in autotune_rounds() rounds: each round launches every candidate once to warm up,
// then kRepeats times between two CUDA events on the context's stream, candidates in the heuristic's order; a
// candidate's time is its fastest round's total. The fastest time wins, ties to the heuristic's order. A
// candidate the library refuses at launch is passed over from then on. Runs only outside a capture, on a
// repeatable GEMM (the results of the trial launches are those of the real one). Records every candidate's
// time (-1 where refused), the winner's index and configuration and the plan's name (its cache key as text)
// in the plan (gemm_autotune_records).
cublasLtMatmulAlgo_t fastest(CudaContext& ctx, GemmPlanCache::Plan& plan, const Problem& p,
                             const std::string& name, const cublasLtMatmulHeuristicResult_t* results,
                             int found) {
  constexpr int kRepeats = 5;
  bind_pointers(plan, p);
  cudaEvent_t start = nullptr, stop = nullptr;
  NLPF_CUDA_CHECK(cudaEventCreate(&start));
  NLPF_CUDA_CHECK(cudaEventCreate(&stop));
  // Each candidate's fastest round; -1: refused (from then on), +inf: not timed yet.
  std::vector<float> best_ms(static_cast<size_t>(found), std::numeric_limits<float>::infinity());
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) best_ms[i] = -1.0f;
  }
  for (int round = 0; round < ctx.autotune_rounds(); ++round) {
    for (int i = 0; i < found; ++i) {
      if (best_ms[i] < 0.0f || launch(ctx, plan, p, results[i].algo) != CUBLAS_STATUS_SUCCESS) {
        best_ms[i] = -1.0f;
        continue;
      }
      NLPF_CUDA_CHECK(cudaEventRecord(start, ctx.stream()));
      bool launched = true;
      for (int r = 0; r < kRepeats && launched; ++r) {
        launched = launch(ctx, plan, p, results[i].algo) == CUBLAS_STATUS_SUCCESS;
      }
      NLPF_CUDA_CHECK(cudaEventRecord(stop, ctx.stream()));
      NLPF_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      NLPF_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      best_ms[i] = launched ? std::min(best_ms[i], ms) : -1.0f;
    }
  }
  cudaEventDestroy(stop);
  cudaEventDestroy(start);
  int best = 0;
  for (int i = 0; i < found; ++i) {
    if (best_ms[i] >= 0.0f && (best_ms[best] < 0.0f || best_ms[i] < best_ms[best])) best = i;
  }
  plan.autotune = GemmAutotuneRecord{.M = p.M,
                                     .N = p.N,
                                     .K = p.K,
                                     .batch = p.batch,
                                     .math_mode = ctx.math_mode(),
                                     .reads_c = p.c != nullptr,
                                     .candidate_ms = std::move(best_ms),
                                     .chosen = best,
                                     .chosen_algo = algo_text(results[best].algo),
                                     .plan = name};
  return results[best].algo;
}

// The column-major view (gemm.h): cuBLASLt computes D' [N, M] = op'(A') op'(B') with A' = b's memory and
// B' = a's. A row-major b stored [K, N] (no transpose) is the column-major N x K matrix op(b)^T as it is
// (OP_N); stored [N, K] (transposed) it is the column-major K x N matrix op(b), so OP_T gives op(b)^T.
// Likewise a: stored [M, K] it is column-major K x M = op(a)^T (OP_N); stored [K, M] it is M x K (OP_T).
// `name`: the plan's cache key as text (GemmAutotuneRecord::plan).
std::unique_ptr<GemmPlanCache::Plan> make_plan(CudaContext& ctx, const Problem& p, const Alignments& align,
                                               const std::string& name) {
  auto plan = std::make_unique<GemmPlanCache::Plan>();
  const cudaDataType_t type = cuda_data_type(p.dtype);
  const cudaDataType_t operand_type = p.fp8 ? CUDA_R_8F_E4M3 : cuda_data_type(p.operand_dtype);
  // fp8 or 16-bit operands: always COMPUTE_32F (an f32 D is their f32 output); the math mode picks the
  // arithmetic of f32 operands only.
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  const bool f32_operands = !p.fp8 && p.operand_dtype == DType::F32 && p.dtype == DType::F32;
  if (f32_operands && ctx.math_mode() == MathMode::TF32) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  if (f32_operands && ctx.math_mode() == MathMode::BF16) compute = CUBLAS_COMPUTE_32F_FAST_16BF;
  if (f32_operands && ctx.math_mode() == MathMode::FP16) compute = CUBLAS_COMPUTE_32F_FAST_16F;
  NLPF_CUDA_CHECK(cublasLtMatmulDescCreate(&plan->desc, compute, CUDA_R_32F));
  const cublasOperation_t op_a = p.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = p.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  NLPF_CUDA_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
  NLPF_CUDA_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
  const cublasLtEpilogue_t epilogue = epilogue_of(p);
  NLPF_CUDA_CHECK(
      cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
  if (p.outer_vec_scales) {  // cuBLASLt's A is b (scales per column of d), its B is a (per row of d)
    const auto mode = static_cast<int32_t>(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F);
    NLPF_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode));
    NLPF_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode));
  }
  if (p.alpha_vector) {
    const auto mode = static_cast<int32_t>(p.c ? CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_HOST
                                               : CUBLASLT_POINTER_MODE_ALPHA_DEVICE_VECTOR_BETA_ZERO);
    NLPF_CUDA_CHECK(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_POINTER_MODE, &mode, sizeof mode));
  }
  if (p.fp8 && p.bias) {  // the bias in D's type (cuBLASLt's default for 16-bit D, said explicitly for fp8)
    const auto bias_type = static_cast<int32_t>(type);
    NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                   &bias_type, sizeof bias_type));
  }
  // Layouts as stored (rows, columns, leading dimension), column-major.
  if (p.transpose_b) {
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->a, operand_type, p.K, p.N, p.ldb));
  } else {
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->a, operand_type, p.N, p.K, p.ldb));
  }
  if (p.transpose_a) {
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->b, operand_type, p.M, p.K, p.lda));
  } else {
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->b, operand_type, p.K, p.M, p.lda));
  }
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->c, type, p.N, p.M, p.ldd));
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->d, p.fp8_out ? CUDA_R_8F_E4M3 : type, p.N, p.M, p.ldd));
  if (p.pointer_arrays) {
    for (cublasLtMatrixLayout_t layout : {plan->a, plan->b, plan->c, plan->d})
      set_pointer_batch(layout, p.batch);
  } else if (p.batch > 1) {  // cuBLASLt's A is b, its B is a; C is d when accumulating: both take d's stride
    set_batch(plan->a, p.batch, p.stride_b);
    set_batch(plan->b, p.batch, p.stride_a);
    set_batch(plan->c, p.batch, p.stride_d);
    set_batch(plan->d, p.batch, p.stride_d);
  }

  cublasLtMatmulPreference_t preference = nullptr;
  NLPF_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const size_t workspace = ctx.workspace_bytes();
  const uint32_t alignments[4] = {static_cast<uint32_t>(align.a), static_cast<uint32_t>(align.b),
                                  static_cast<uint32_t>(align.c), static_cast<uint32_t>(align.d)};
  cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace);
  const cublasLtMatmulPreferenceAttributes_t alignment_attributes[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4 && status == CUBLAS_STATUS_SUCCESS; ++i) {
    status = cublasLtMatmulPreferenceSetAttribute(preference, alignment_attributes[i], &alignments[i],
                                                  sizeof alignments[i]);
  }
  // One candidate for the heuristic's choice; the context's autotune_candidates() when the plan may be
  // autotuned.
  const bool tune = ctx.gemm_selection() == GemmSelection::AUTOTUNE && repeatable(p) && !capturing(ctx);
  cublasLtMatmulHeuristicResult_t results[ExecutionContext::kMaxAutotuneCandidates] = {};
  const int requested = tune ? ctx.autotune_candidates() : 1;
  int found = 0;
  if (status == CUBLAS_STATUS_SUCCESS && ctx.gemm_selection() == GemmSelection::HEURISTIC_INPLACE_REDUCTION) {
    const uint32_t in_place = CUBLASLT_REDUCTION_SCHEME_INPLACE;
    status = cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                  &in_place, sizeof in_place);
    if (status == CUBLAS_STATUS_SUCCESS) {
      status = cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt(), plan->desc, plan->a, plan->b, plan->c, plan->d,
                                              preference, 1, results, &found);
    }
    if (status != CUBLAS_STATUS_SUCCESS || found == 0) {  // none offered: the unrestricted heuristic's
      const uint32_t any = CUBLASLT_REDUCTION_SCHEME_MASK;
      status = cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                    &any, sizeof any);
      found = 0;
    }
  }
  if (status == CUBLAS_STATUS_SUCCESS && found == 0) {
    status = cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt(), plan->desc, plan->a, plan->b, plan->c, plan->d,
                                            preference, requested, results, &found);
  }
  cublasLtMatmulPreferenceDestroy(preference);
  NLPF_CUDA_CHECK(status);
  NLPF_CHECK(found > 0, ErrorCode::CUBLAS, "gemm: cuBLASLt has no algorithm for ", dtype_name(p.dtype),
             p.operand_dtype != p.dtype ? std::string(" from ") + dtype_name(p.operand_dtype) : std::string(),
             " M=", p.M, " N=", p.N, " K=", p.K, " lda=", p.lda, " ldb=", p.ldb, " ldd=", p.ldd,
             " transposes ", p.transpose_a, p.transpose_b, " batch ", p.batch);
  plan->algo = results[0].algo;
  if (tune && ctx.autotune_replaying()) {
    plan->algo = replayed_choice(ctx, *plan, name, results, found);
  } else if (tune) {
    plan->algo = fastest(ctx, *plan, p, name, results, found);  // one candidate too: its record
  }
  return plan;
}

// A plan's cache key as text, its fields in order, comma-separated: the plan's name in the autotune's
// records.
std::string key_text(const GemmPlanCache::Key& key) {
  std::string text;
  std::apply(
      [&](const auto&... field) { ((text += (text.empty() ? "" : ",") + std::to_string(field)), ...); }, key);
  return text;
}

// The cached plan of p (built on first use; throws CUBLAS when cuBLASLt has none).
GemmPlanCache::Plan& plan_of(CudaContext& ctx, const Problem& p) {
  const size_t element = dtype_size(p.fp8 ? DType::F8E4M3 : p.operand_dtype);
  const size_t d_element = dtype_size(p.fp8_out ? DType::F8E4M3 : p.dtype);
  const Alignments align =
      p.pointer_arrays
          ? Alignments{p.pointer_alignment, p.pointer_alignment, p.pointer_alignment, p.pointer_alignment}
          : Alignments{alignment_of(p.b, p.batch, p.stride_b * element),
                       alignment_of(p.a, p.batch, p.stride_a * element),
                       alignment_of(p.c ? p.c : p.d, p.batch, p.stride_d * d_element),
                       alignment_of(p.d, p.batch, p.stride_d * d_element)};
  const GemmPlanCache::Key key{
      static_cast<int>(p.dtype),
      static_cast<int>(p.operand_dtype),
      static_cast<int>(ctx.math_mode()),
      p.transpose_a,
      p.transpose_b,
      p.M,
      p.N,
      p.K,
      p.lda,
      p.ldb,
      p.ldd,
      static_cast<int>(epilogue_of(p)),
      p.c != nullptr,
      align.a,
      align.b,
      align.c,
      align.d,
      p.fp8 ? (p.fp8_out ? 2 : 1) + (p.outer_vec_scales ? 2 : 0) + (p.alpha_vector ? 4 : 0) : 0,
      static_cast<int>(ctx.gemm_selection()),
      ctx.gemm_selection() == GemmSelection::AUTOTUNE ? ctx.autotune_candidates() : 0,
      ctx.gemm_selection() == GemmSelection::AUTOTUNE ? ctx.autotune_rounds() : 0,
      p.batch,
      p.stride_a,
      p.stride_b,
      p.stride_d,
      p.pointer_arrays};
  std::unique_ptr<GemmPlanCache::Plan>& plan = ctx.gemm_plans().plans[key];
  if (!plan) plan = make_plan(ctx, p, align, key_text(key));
  return *plan;
}

// The operand dtype of gemm and matmul: `dtype`'s, or 16 bits beside an F32 output.
DType operand_dtype_of(const char* op, DType dtype, const std::optional<DType>& operand_dtype) {
  const DType operands = operand_dtype.value_or(dtype);
  NLPF_CHECK(operands == dtype || (dtype_is_16bit(operands) && dtype == DType::F32), ErrorCode::UNSUPPORTED,
             op, ": ", dtype_name(operands), " operands with a ", dtype_name(dtype),
             " output (expected the operands' dtype, or f32 from bf16 or f16 operands)");
  return operands;
}

void run(ExecutionContext& base, const Problem& p) {
  CudaContext& ctx = cuda_context(base);
  GemmPlanCache::Plan& plan = plan_of(ctx, p);
  bind_pointers(plan, p);
  NLPF_CUDA_CHECK(launch(ctx, plan, p, plan.algo));
}

// nn.Linear's form, y [N, OC] = x [N, C] op(W) with W stored [OC, C] and transposed (cuBLASLt's "TN", also
// the one layout of its fp8 products): the Problem of gemm and gemm_fp8.
Problem linear_problem(void* y, const void* x, const void* weight, const void* bias, DType dtype, int64_t N,
                       int64_t C, int64_t OC, int64_t ldx) {
  Problem p;
  p.d = y;
  p.a = x;
  p.b = weight;
  p.bias = bias;
  p.transpose_b = true;
  p.dtype = dtype;
  p.operand_dtype = dtype;
  p.M = N;
  p.N = OC;
  p.K = C;
  p.lda = ldx;
  p.ldb = C;
  p.ldd = OC;
  return p;
}

}  // namespace

int gemm_alignment(const void* ptr, std::initializer_list<int64_t> step_bytes) {
  const auto address = reinterpret_cast<uintptr_t>(ptr);
  int alignment = 256;
  const auto divides = [&](int a) {
    if (address % a != 0) return false;
    for (const int64_t step : step_bytes) {
      if (static_cast<uintptr_t>(step) % a != 0) return false;
    }
    return true;
  };
  while (alignment > 1 && !divides(alignment)) alignment /= 2;
  return alignment;
}

void gemm(ExecutionContext& ctx, const GemmArgs& g) {
  NLPF_CHECK(g.N > 0 && g.C > 0 && g.OC > 0 && g.ldx >= g.C, ErrorCode::INVALID_ARGUMENT, "gemm: N=", g.N,
             " C=", g.C, " OC=", g.OC, " ldx=", g.ldx);
  NLPF_CHECK(!(g.gelu && g.residual), ErrorCode::INVALID_ARGUMENT,
             "gemm: GELU after a residual is not BERT's");
  Problem p = linear_problem(g.y, g.x, g.weight, g.bias, g.dtype, g.N, g.C, g.OC, g.ldx);
  p.operand_dtype = operand_dtype_of("gemm", g.dtype, g.operand_dtype);
  p.c = g.residual;
  p.gelu = g.gelu;
  run(ctx, p);
}

namespace {

// gemm_fp8's checks and its Problem.
Problem fp8_problem(const Fp8GemmArgs& g) {
  NLPF_CHECK(g.N > 0 && g.C > 0 && g.OC > 0 && g.C % 16 == 0 && g.OC % 16 == 0, ErrorCode::INVALID_ARGUMENT,
             "gemm_fp8: N=", g.N, " C=", g.C, " OC=", g.OC, " (C and OC must be positive multiples of 16)");
  const bool fp8_out = g.out_dtype == DType::F8E4M3;
  NLPF_CHECK(g.out_dtype == DType::BF16 || g.out_dtype == DType::F16 || fp8_out, ErrorCode::UNSUPPORTED,
             "gemm_fp8: output dtype ", dtype_name(g.out_dtype), " (expected bf16, f16 or f8e4m3)");
  NLPF_CHECK(g.x_scale != nullptr && g.weight_scale != nullptr, ErrorCode::INVALID_ARGUMENT,
             "gemm_fp8: the scales of x and the weight are required");
  NLPF_CHECK(g.weight_scale_count == 1 || g.weight_scale_count == g.OC, ErrorCode::INVALID_ARGUMENT,
             "gemm_fp8: weight_scale_count=", g.weight_scale_count, " (expected 1 per tensor or OC=", g.OC,
             " per output channel)");
  // cuBLAS's outer-vector scaling has no D scale (its D is f16, bf16 or f32): gemm.h.
  NLPF_CHECK(!(fp8_out && g.weight_scale_count != 1), ErrorCode::UNSUPPORTED,
             "gemm_fp8: an E4M3 output with per-channel weight scales (cuBLASLt's outer-vector scaling "
             "writes f16, bf16 or f32 only)");
  NLPF_CHECK(fp8_out == (g.y_scale_inverse != nullptr), ErrorCode::INVALID_ARGUMENT,
             "gemm_fp8: y_scale_inverse is required for an E4M3 output and only for it");
  NLPF_CHECK(!(fp8_out && g.residual), ErrorCode::INVALID_ARGUMENT,
             "gemm_fp8: no residual with an E4M3 output");
  NLPF_CHECK(!(g.gelu && g.residual), ErrorCode::INVALID_ARGUMENT,
             "gemm_fp8: GELU after a residual is not BERT's");
  // With E4M3 codes out, C (unread) and the bias are BF16, the pairing cuBLASLt's fp8 table lists.
  Problem p =
      linear_problem(g.y, g.x, g.weight, g.bias, fp8_out ? DType::BF16 : g.out_dtype, g.N, g.C, g.OC, g.C);
  p.c = g.residual;
  p.gelu = g.gelu;
  p.fp8 = true;
  p.scale_a = g.x_scale;
  p.scale_b = g.weight_scale;
  // OC = 1 is rejected above (not a multiple of 16), so a count of OC is never mistaken for per tensor.
  p.outer_vec_scales = g.weight_scale_count != 1;
  p.fp8_out = fp8_out;
  p.scale_d = g.y_scale_inverse;
  return p;
}

// y [N, OC] = act(product [N, OC] f32 * weight_scale[oc] + bias[oc]) (+ residual [N, OC]), T = __half or
// __nv_bfloat16 (residual may be y: each element is read before it is written, by the same thread). act is
// cuBLASLt's GELU epilogue's tanh form where gelu is set; GELU and residual are never both set (fp8_problem).
template <typename T>
__global__ void fp8_channel_scale_kernel(T* y, const float* __restrict__ product,
                                         const float* __restrict__ weight_scale, const T* __restrict__ bias,
                                         const T* residual, bool gelu, int64_t N, int64_t OC) {
  const int64_t total = N * OC;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t oc = i % OC;
    float v = product[i] * weight_scale[oc];
    if (bias != nullptr) v += to_float(bias[oc]);
    if (gelu) v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    if (residual != nullptr) v += to_float(residual[i]);
    y[i] = from_float<T>(v);
  }
}

// gemm_fp8 with per-channel weight scales in two passes (gemm.h); g is checked (fp8_problem), 16-bit out.
// The product goes to an f32 scratch [N, OC] (cuBLASLt's fp8 GEMM writes f32): no 16-bit range or rounding
// between the product and its per-channel scale, so the result is rounded once, as the one-GEMM form's.
void gemm_fp8_per_channel_two_pass(CudaContext& cuda, const Fp8GemmArgs& g) {
  const size_t bytes = static_cast<size_t>(g.N * g.OC) * sizeof(float);
  auto* product = static_cast<float*>(cuda.allocator().allocate(bytes));
  Problem p = linear_problem(product, g.x, g.weight, nullptr, DType::F32, g.N, g.C, g.OC, g.C);
  p.fp8 = true;
  p.scale_a = g.x_scale;  // scalar mode reads its first value: every row's scale is the same calibrated one
  p.scale_b = nullptr;    // 1: the weight's scales follow per column in the kernel
  try {
    run(cuda, p);
    constexpr int kThreads = 256;
    const int64_t total = g.N * g.OC;
    const int blocks = static_cast<int>(
        std::min<int64_t>((total + kThreads - 1) / kThreads, int64_t{32} * cuda.multiprocessor_count()));
    if (g.out_dtype == DType::BF16) {
      fp8_channel_scale_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(
          static_cast<__nv_bfloat16*>(g.y), product, g.weight_scale,
          static_cast<const __nv_bfloat16*>(g.bias), static_cast<const __nv_bfloat16*>(g.residual), g.gelu,
          g.N, g.OC);
    } else {
      fp8_channel_scale_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(
          static_cast<__half*>(g.y), product, g.weight_scale, static_cast<const __half*>(g.bias),
          static_cast<const __half*>(g.residual), g.gelu, g.N, g.OC);
    }
    NLPF_CUDA_CHECK(cudaGetLastError());
  } catch (...) {
    cuda.allocator().deallocate(product, bytes);
    throw;
  }
  cuda.allocator().deallocate(product, bytes);  // stream-ordered: after the kernel has read it
}

// Plans (once) and launches p; false where cuBLASLt refuses it, at its heuristic (CUBLAS error) or at launch.
bool try_run(CudaContext& cuda, const Problem& p) {
  try {
    GemmPlanCache::Plan& plan = plan_of(cuda, p);
    bind_pointers(plan, p);
    return launch(cuda, plan, p, plan.algo) == CUBLAS_STATUS_SUCCESS;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::CUBLAS) return false;  // no algorithm, or the combination not supported
    throw;
  }
}

}  // namespace

void gemm_fp8(ExecutionContext& ctx, const Fp8GemmArgs& g) {
  const Problem p = fp8_problem(g);
  if (!p.outer_vec_scales) {
    run(ctx, p);
    return;
  }
  // Per-channel weight scales: the first form cuBLASLt runs on this context, in gemm.h's order. A form it
  // refuses (at its heuristic or at launch: a status, before anything runs) is remembered and not asked
  // again. A first call comes before any graph capture (the engine runs a shape eagerly before capturing it).
  CudaContext& cuda = cuda_context(ctx);
  Fp8ChannelForm& form = cuda.gemm_plans().fp8_channel_form;
  if (form == Fp8ChannelForm::NOT_CHOSEN || form == Fp8ChannelForm::OUTER_VECTOR) {
    if (try_run(cuda, p)) {
      form = Fp8ChannelForm::OUTER_VECTOR;
      return;
    }
    form = Fp8ChannelForm::ALPHA_VECTOR;
  }
  if (form == Fp8ChannelForm::ALPHA_VECTOR) {
    Problem q = p;  // the weight's scales as cuBLASLt's alpha, x's scale (its first value) as a scalar
    q.outer_vec_scales = false;
    q.scale_b = nullptr;
    q.alpha_vector = g.weight_scale;
    if (try_run(cuda, q)) return;
    form = Fp8ChannelForm::TWO_PASS;
  }
  gemm_fp8_per_channel_two_pass(cuda, g);
}

bool gemm_fp8_available(ExecutionContext& ctx, const Fp8GemmArgs& g) {
  if (g.out_dtype == DType::F8E4M3 && g.weight_scale_count != 1 && g.weight_scale_count == g.OC) {
    return false;  // E4M3 output with outer-vector scales: not offered by cuBLASLt (gemm.h)
  }
  // A plan, and one launch on the given buffers: cuBLASLt may offer an algorithm for a combination it then
  // refuses at launch (it returns a status before running anything, so a refusal leaves no CUDA error).
  return try_run(cuda_context(ctx), fp8_problem(g));
}

void matmul(ExecutionContext& ctx, const MatmulArgs& m) {
  const bool transpose_a = m.transpose_a == Transpose::YES, transpose_b = m.transpose_b == Transpose::YES;
  NLPF_CHECK(m.M > 0 && m.N > 0 && m.K > 0 && m.lda >= (transpose_a ? m.M : m.K) &&
                 m.ldb >= (transpose_b ? m.K : m.N) && m.ldd >= m.N,
             ErrorCode::INVALID_ARGUMENT, "matmul: M=", m.M, " N=", m.N, " K=", m.K, " lda=", m.lda,
             " ldb=", m.ldb, " ldd=", m.ldd, " (transposes ", transpose_a, ", ", transpose_b, ")");
  NLPF_CHECK(m.batch >= 1 && m.batch <= INT32_MAX && m.stride_a >= 0 && m.stride_b >= 0 &&
                 (m.batch == 1 || m.pointer_arrays || m.stride_d >= m.M * m.ldd),
             ErrorCode::INVALID_ARGUMENT, "matmul: batch=", m.batch, " stride_a=", m.stride_a,
             " stride_b=", m.stride_b, " stride_d=", m.stride_d, " (M=", m.M, " ldd=", m.ldd,
             "; the matrices of d must not overlap)");
  Problem p;
  p.d = m.d;
  p.a = m.a;
  p.b = m.b;
  p.c = m.accumulate ? m.d : nullptr;
  p.transpose_a = transpose_a;
  p.transpose_b = transpose_b;
  p.dtype = m.dtype;
  p.operand_dtype = operand_dtype_of("matmul", m.dtype, m.operand_dtype);
  p.M = m.M;
  p.N = m.N;
  p.K = m.K;
  p.lda = m.lda;
  p.ldb = m.ldb;
  p.ldd = m.ldd;
  if (m.pointer_arrays) {
    NLPF_CHECK(m.pointer_alignment >= 1 && m.pointer_alignment <= 256 &&
                   (m.pointer_alignment & (m.pointer_alignment - 1)) == 0,
               ErrorCode::INVALID_ARGUMENT, "matmul: pointer_alignment=", m.pointer_alignment,
               " (a power of two up to 256)");
    p.batch = m.batch;
    p.pointer_arrays = true;
    p.pointer_alignment = m.pointer_alignment;
  } else if (m.batch > 1) {  // batch 1 keys like an unbatched GEMM whatever strides the caller left
    p.batch = m.batch;
    p.stride_a = m.stride_a;
    p.stride_b = m.stride_b;
    p.stride_d = m.stride_d;
  }
  run(ctx, p);
}

}  // namespace nlpf::cuda
