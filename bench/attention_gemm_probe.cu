// attention_gemm_probe (issue 12, the training step): can the training attention's per-head products read q
// and k where the packed projection [B,T,3C] holds them, through cuBLASLt's pointer-array batches (one
// pointer per head (b, h)), instead of copying them head-major [B,NH,T,HS] first? (The copies were ~0.85 ms
// of a bert-base fp32 step on the H200; IEEE fp32 takes pointer arrays since 1422e25, the other math modes
// still copy.) For the scores S = q k^T of every head (B NH products of T x T x HS) in f32 (IEEE,
// CUBLAS_COMPUTE_32F; and f32 operands under training's other math modes, the FAST_TF32 / FAST_16BF /
// FAST_16F compute types) and with bf16 operands (f32 output), it reports whether cuBLASLt offers an
// algorithm for the pointer-array form, the time of each form (CUDA events: the median of 5 runs of 50
// launches; the head-major form without its copy), and the largest difference between their outputs. Usage:
// attention_gemm_probe [B T NH HS] (default 32 128 12 64, bert-base's training step). Exit 0 when it measured
// (whatever it found), 3 on a CUDA error.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "core/error.h"
#include "core/tensor.h"

namespace nlpf {
namespace {

using cuda::CudaContext;

struct Shape {
  int64_t B, T, NH, HS;
  int64_t C() const { return NH * HS; }
  int64_t heads() const { return B * NH; }
};

// The layouts of one form of S^T = K Q^T per head in cuBLASLt's column-major terms: a row-major q or k of the
// head [T, HS] at row stride ld is the column-major HS x T matrix q^T; S row-major [T, T] is column-major
// S^T.
struct Form {
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  ~Form() {
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(d);
  }
};

void set_int(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attribute, int64_t value) {
  if (attribute == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT || attribute == CUBLASLT_MATRIX_LAYOUT_BATCH_MODE) {
    const auto v = static_cast<int32_t>(value);
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(layout, attribute, &v, sizeof v));
  } else {
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(layout, attribute, &value, sizeof value));
  }
}

// head_major: operands [B NH, T, HS] contiguous (stride T HS); else pointer arrays into rows of stride 3C.
void make_form(Form& f, const Shape& s, cudaDataType_t operand, bool head_major) {
  const int64_t ld = head_major ? s.HS : 3 * s.C();
  for (cublasLtMatrixLayout_t* layout : {&f.a, &f.b}) {
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(layout, operand, s.HS, s.T, ld));
  }
  NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&f.d, CUDA_R_32F, s.T, s.T, s.T));
  for (cublasLtMatrixLayout_t layout : {f.a, f.b, f.d}) {
    set_int(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, s.heads());
    if (!head_major) set_int(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_MODE, CUBLASLT_BATCH_MODE_POINTER_ARRAY);
  }
  if (head_major) {
    set_int(f.a, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, s.T * s.HS);
    set_int(f.b, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, s.T * s.HS);
    set_int(f.d, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, s.T * s.T);
  }
}

struct Outcome {
  bool offered = false;
  std::string note;
  double ms = NAN;  // per launch
  std::vector<float> scores;
};

// a, b, d: the operands as cuBLASLt takes them (the pointer arrays in the pointer-array form); scores: where
// the products land (read back after zeroing it first, so a form that wrote nothing cannot pass).
Outcome run_form(CudaContext& ctx, const Shape& s, cudaDataType_t operand, cublasComputeType_t compute,
                 bool head_major, const void* a, const void* b, void* d, void* scores) {
  cublasLtHandle_t lt = ctx.cublaslt();
  cudaStream_t stream = ctx.stream();
  void* workspace = ctx.workspace();
  size_t workspace_bytes = ctx.workspace_bytes();
  Outcome out;
  Form form;
  make_form(form, s, operand, head_major);
  cublasLtMatmulDesc_t desc = nullptr;
  NLPF_CUDA_CHECK(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;  // A = k^T (op T gives k), B = q^T
  NLPF_CUDA_CHECK(
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
  NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none));
  cublasLtMatmulPreference_t preference = nullptr;
  NLPF_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  NLPF_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                       &workspace_bytes, sizeof workspace_bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(lt, desc, form.a, form.b, form.d, form.d,
                                                               preference, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
    out.note = std::string("no algorithm: ") + cublasLtGetStatusName(status) + ", " + std::to_string(found) +
               " found";
    cublasLtMatmulDescDestroy(desc);
    return out;
  }
  const float alpha = 1.0f, beta = 0.0f;
  const auto launch = [&] {
    return cublasLtMatmul(lt, desc, &alpha, a, form.a, b, form.b, &beta, d, form.d, d, form.d, &result.algo,
                          workspace, workspace_bytes, stream);
  };
  const size_t score_count = static_cast<size_t>(s.heads() * s.T * s.T);
  NLPF_CUDA_CHECK(cudaMemsetAsync(scores, 0, score_count * sizeof(float), stream));
  const cublasStatus_t first = launch();
  if (first != CUBLAS_STATUS_SUCCESS) {
    out.note = std::string("launch refused: ") + cublasLtGetStatusName(first);
    cublasLtMatmulDescDestroy(desc);
    return out;
  }
  out.offered = true;
  constexpr int kRuns = 5, kLaunches = 50;
  cudaEvent_t start = nullptr, stop = nullptr;
  NLPF_CUDA_CHECK(cudaEventCreate(&start));
  NLPF_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> per_launch;
  for (int run = 0; run < kRuns; ++run) {
    NLPF_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < kLaunches; ++i) NLPF_CUDA_CHECK(launch());
    NLPF_CUDA_CHECK(cudaEventRecord(stop, stream));
    NLPF_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    NLPF_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    per_launch.push_back(static_cast<double>(ms) / kLaunches);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cublasLtMatmulDescDestroy(desc);
  std::sort(per_launch.begin(), per_launch.end());
  out.ms = per_launch[kRuns / 2];
  out.scores.resize(score_count);
  NLPF_CUDA_CHECK(cudaMemcpy(out.scores.data(), scores, score_count * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

// Host-side packing: packed [B,T,3C] (q in channels [0, C), k in [C, 2C)) of `operand` values, head-major
// copies [B,NH,T,HS] of q and k, and the pointer arrays of q and k rows per head (b, h), all uploaded.
template <typename V>
void probe(CudaContext& ctx, const Shape& s, cudaDataType_t operand, cublasComputeType_t compute,
           const char* name) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int64_t C = s.C(), rows = s.B * s.T;
  std::vector<V> packed(static_cast<size_t>(rows * 3 * C));
  for (V& v : packed) v = static_cast<V>(uniform(rng));
  std::vector<V> q_heads(static_cast<size_t>(rows * C)), k_heads(q_heads.size());
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.NH; ++h) {
      for (int64_t t = 0; t < s.T; ++t) {
        for (int64_t e = 0; e < s.HS; ++e) {
          const size_t head = static_cast<size_t>(((b * s.NH + h) * s.T + t) * s.HS + e);
          const size_t token = static_cast<size_t>((b * s.T + t) * 3 * C + h * s.HS + e);
          q_heads[head] = packed[token];
          k_heads[head] = packed[token + static_cast<size_t>(C)];
        }
      }
    }
  }
  // Device copies (the context's allocator) and their upload.
  const auto upload = [&](const void* host, size_t bytes) {
    auto buffer = std::make_unique<Buffer>(ctx.allocator(), bytes);
    ctx.copy_bytes(buffer->data(), true, host, false, bytes);
    return buffer;
  };
  const auto packed_d = upload(packed.data(), packed.size() * sizeof(V));
  const auto q_d = upload(q_heads.data(), q_heads.size() * sizeof(V));
  const auto k_d = upload(k_heads.data(), k_heads.size() * sizeof(V));
  const size_t score_count = static_cast<size_t>(s.heads() * s.T * s.T);
  Buffer scores_d(ctx.allocator(), score_count * sizeof(float));
  std::vector<const void*> q_rows, k_rows;
  std::vector<void*> score_heads;
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.NH; ++h) {
      const V* base = static_cast<const V*>(packed_d->data()) + b * s.T * 3 * C + h * s.HS;
      q_rows.push_back(base);
      k_rows.push_back(base + C);
      score_heads.push_back(static_cast<float*>(scores_d.data()) + (b * s.NH + h) * s.T * s.T);
    }
  }
  const size_t pointer_bytes = q_rows.size() * sizeof(void*);
  const auto q_rows_d = upload(q_rows.data(), pointer_bytes);
  const auto k_rows_d = upload(k_rows.data(), pointer_bytes);
  const auto score_heads_d = upload(score_heads.data(), pointer_bytes);
  ctx.synchronize();

  const Outcome strided =
      run_form(ctx, s, operand, compute, true, k_d->data(), q_d->data(), scores_d.data(), scores_d.data());
  const Outcome pointers = run_form(ctx, s, operand, compute, false, k_rows_d->data(), q_rows_d->data(),
                                    score_heads_d->data(), scores_d.data());
  double max_diff = NAN;
  if (strided.offered && pointers.offered) {
    max_diff = 0.0;
    for (size_t i = 0; i < score_count; ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(strided.scores[i] - pointers.scores[i])));
    }
  }
  std::printf(
      "%s B=%lld T=%lld NH=%lld HS=%lld: head-major strided %s %.4f ms/launch; pointer-array %s %.4f "
      "ms/launch; max |difference| %g\n",
      name, static_cast<long long>(s.B), static_cast<long long>(s.T), static_cast<long long>(s.NH),
      static_cast<long long>(s.HS), strided.offered ? "offered" : strided.note.c_str(), strided.ms,
      pointers.offered ? "offered" : pointers.note.c_str(), pointers.ms, max_diff);
}

int run(int argc, char** argv) {
  Shape s{32, 128, 12, 64};
  if (argc == 5) {
    s = Shape{std::atoll(argv[1]), std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4])};
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: attention_gemm_probe [B T NH HS]\n");
    return 2;
  }
  if (s.B < 1 || s.T < 1 || s.NH < 1 || s.HS < 1) {
    std::fprintf(stderr, "attention_gemm_probe: B, T, NH and HS must be positive\n");
    return 2;
  }
  CudaContext ctx(0);  // its stream, cuBLASLt handle, 32 MiB workspace and allocator
  probe<float>(ctx, s, CUDA_R_32F, CUBLAS_COMPUTE_32F, "f32");
  // Training's other math modes: f32 operands with TF32 or down-converted 16-bit products.
  probe<float>(ctx, s, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, "f32 fast-tf32");
  probe<float>(ctx, s, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_16BF, "f32 fast-16bf");
  probe<float>(ctx, s, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_16F, "f32 fast-16f");
  probe<__nv_bfloat16>(ctx, s, CUDA_R_16BF, CUBLAS_COMPUTE_32F, "bf16");
  return 0;
}

}  // namespace
}  // namespace nlpf

int main(int argc, char** argv) {
  try {
    return nlpf::run(argc, argv);
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "attention_gemm_probe: %s\n", e.what());
    return 3;
  }
}
