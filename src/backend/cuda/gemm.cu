// cuBLASLt GEMM plans and launches (see gemm.h).
#include "backend/cuda/gemm.h"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"

namespace nlpf::cuda {

struct GemmPlanCache::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
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

namespace {

cudaDataType_t cuda_data_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: break;
  }
  NLPF_THROW(ErrorCode::UNSUPPORTED, "gemm: dtype ", dtype_name(dtype), " (expected f32, bf16 or f16)");
}

// The largest power of two (up to 256, cuBLASLt's default assumption) dividing the address.
int alignment_of(const void* ptr) {
  const auto address = reinterpret_cast<uintptr_t>(ptr);
  int alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

std::unique_ptr<GemmPlanCache::Plan> make_plan(CudaContext& ctx, const GemmArgs& g, int align_x, int align_w,
                                               int align_r, int align_y) {
  auto plan = std::make_unique<GemmPlanCache::Plan>();
  const cudaDataType_t type = cuda_data_type(g.dtype);
  const cublasComputeType_t compute =
      g.dtype == DType::F32 && ctx.math_mode() == MathMode::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  NLPF_CUDA_CHECK(cublasLtMatmulDescCreate(&plan->desc, compute, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
  NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none));
  const cublasLtEpilogue_t epilogue = g.gelu ? (g.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                             : (g.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
  // Column-major views: A = W (C x OC, ld C, transposed), B = X (C x N, ld ldx), C = residual and D = Y (OC x N).
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->a, type, g.C, g.OC, g.C));
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->b, type, g.C, g.N, g.ldx));
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->c, type, g.OC, g.N, g.OC));
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&plan->d, type, g.OC, g.N, g.OC));

  cublasLtMatmulPreference_t preference = nullptr;
  NLPF_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  const size_t workspace = ctx.workspace_bytes();
  const uint32_t alignments[4] = {static_cast<uint32_t>(align_w), static_cast<uint32_t>(align_x),
                                  static_cast<uint32_t>(align_r), static_cast<uint32_t>(align_y)};
  cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace);
  const cublasLtMatmulPreferenceAttributes_t alignment_attributes[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4 && status == CUBLAS_STATUS_SUCCESS; ++i) {
    status = cublasLtMatmulPreferenceSetAttribute(preference, alignment_attributes[i], &alignments[i],
                                                  sizeof alignments[i]);
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (status == CUBLAS_STATUS_SUCCESS) {
    status = cublasLtMatmulAlgoGetHeuristic(ctx.cublaslt(), plan->desc, plan->a, plan->b, plan->c, plan->d,
                                            preference, 1, &result, &found);
  }
  cublasLtMatmulPreferenceDestroy(preference);
  NLPF_CUDA_CHECK(status);
  NLPF_CHECK(found > 0, ErrorCode::CUBLAS, "gemm: cuBLASLt has no algorithm for ", dtype_name(g.dtype), " N=", g.N,
             " C=", g.C, " OC=", g.OC, " ldx=", g.ldx);
  plan->algo = result.algo;
  return plan;
}

}  // namespace

void gemm(ExecutionContext& base, const GemmArgs& g) {
  CudaContext& ctx = cuda_context(base);
  NLPF_CHECK(g.N > 0 && g.C > 0 && g.OC > 0 && g.ldx >= g.C, ErrorCode::INVALID_ARGUMENT, "gemm: N=", g.N,
             " C=", g.C, " OC=", g.OC, " ldx=", g.ldx);
  NLPF_CHECK(!(g.gelu && g.residual), ErrorCode::INVALID_ARGUMENT, "gemm: GELU after a residual is not BERT's");
  const int align_x = alignment_of(g.x), align_w = alignment_of(g.weight), align_y = alignment_of(g.y);
  const int align_r = g.residual ? alignment_of(g.residual) : align_y;
  const GemmPlanCache::Key key{static_cast<int>(g.dtype), static_cast<int>(ctx.math_mode()), g.N, g.C, g.OC, g.ldx,
                               g.bias != nullptr, g.residual != nullptr, g.gelu, align_x, align_w, align_r, align_y};
  std::unique_ptr<GemmPlanCache::Plan>& plan = ctx.gemm_plans().plans[key];
  if (!plan) plan = make_plan(ctx, g, align_x, align_w, align_r, align_y);
  if (g.bias) {
    NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias,
                                                   sizeof g.bias));
  }
  const float alpha = 1.0f, beta = g.residual ? 1.0f : 0.0f;
  NLPF_CUDA_CHECK(cublasLtMatmul(ctx.cublaslt(), plan->desc, &alpha, g.weight, plan->a, g.x, plan->b, &beta,
                                 g.residual ? g.residual : g.y, plan->c, g.y, plan->d, &plan->algo, ctx.workspace(),
                                 ctx.workspace_bytes(), ctx.stream()));
}

}  // namespace nlpf::cuda
