// attention_gemm_probe (issue 12, the training step): can the training attention's per-head products read q
// and k where the packed projection [B,T,3C] holds them, through cuBLASLt's pointer-array batches (one
// pointer per head (b, h)), instead of copying them head-major [B,NH,T,HS] first? (The copies were ~0.85 ms
// of a bert-base fp32 step on the H200; IEEE fp32 takes pointer arrays since 1422e25, the other math modes
// still copy.) For the scores S = q k^T of every head (B NH products of T x T x HS), run through the engine's
// matmul (backend/cuda/gemm.h: its plans, alignment preferences and heuristic, as the training attention runs
// them) with f32 operands in each math mode (IEEE, TF32, BF16, FP16: training's) and with bf16 operands (f32
// output), it reports whether cuBLASLt offers an algorithm for each form (matmul throws CUBLAS when it has
// none), the time of each form (CUDA events: the median of 5 runs of 50 launches; the head-major form without
// its copy), and the largest difference between their outputs. Usage: attention_gemm_probe [B T NH HS]
// (default 32 128 12 64, bert-base's training step). Exit 0 when it measured (whatever it found), 3 on a CUDA
// error.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/gemm.h"
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

struct Outcome {
  bool offered = false;
  std::string note;
  double ms = NAN;  // per launch
  std::vector<float> scores;
};

// One form: `launch` queues its product on ctx's stream; scores (count floats) is where the products land,
// zeroed first so that a form that wrote nothing cannot pass. A first launch the engine refuses (no
// algorithm: an Error) is the form's note.
Outcome run_form(CudaContext& ctx, const std::function<void()>& launch, void* scores, size_t count) {
  Outcome out;
  NLPF_CUDA_CHECK(cudaMemsetAsync(scores, 0, count * sizeof(float), ctx.stream()));
  try {
    launch();
  } catch (const Error& e) {
    out.note = std::string("refused: ") + e.what();
    return out;
  }
  out.offered = true;
  constexpr int kRuns = 5, kLaunches = 50;
  cudaEvent_t start = nullptr, stop = nullptr;
  NLPF_CUDA_CHECK(cudaEventCreate(&start));
  NLPF_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> per_launch;
  for (int run = 0; run < kRuns; ++run) {
    NLPF_CUDA_CHECK(cudaEventRecord(start, ctx.stream()));
    for (int i = 0; i < kLaunches; ++i) launch();
    NLPF_CUDA_CHECK(cudaEventRecord(stop, ctx.stream()));
    NLPF_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    NLPF_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    per_launch.push_back(static_cast<double>(ms) / kLaunches);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(per_launch.begin(), per_launch.end());
  out.ms = per_launch[kRuns / 2];
  out.scores.resize(count);
  NLPF_CUDA_CHECK(cudaMemcpy(out.scores.data(), scores, count * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

// Host-side packing: packed [B,T,3C] (q in channels [0, C), k in [C, 2C)) of V values, head-major copies
// [B,NH,T,HS] of q and k, and the pointer arrays of q and k rows and of the score matrices per head (b, h),
// all uploaded; then both forms of S = q k^T under `mode` with V operands.
template <typename V>
void probe(CudaContext& ctx, const Shape& s, DType operand, MathMode mode, const char* name) {
  ctx.set_math_mode(mode);
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

  // S [T, T] = q [T, HS] k^T per head; the two forms differ in where q, k and S lie.
  cuda::MatmulArgs m;
  m.transpose_b = cuda::Transpose::YES;
  m.operand_dtype = operand == DType::F32 ? std::nullopt : std::optional<DType>(operand);
  m.M = s.T;
  m.N = s.T;
  m.K = s.HS;
  m.ldd = s.T;
  m.batch = s.heads();
  cuda::MatmulArgs strided = m;
  strided.d = scores_d.data();
  strided.a = q_d->data();
  strided.b = k_d->data();
  strided.lda = strided.ldb = s.HS;
  strided.stride_a = strided.stride_b = s.T * s.HS;
  strided.stride_d = s.T * s.T;
  cuda::MatmulArgs pointers = m;
  pointers.d = score_heads_d->data();
  pointers.a = q_rows_d->data();
  pointers.b = k_rows_d->data();
  pointers.lda = pointers.ldb = 3 * C;
  pointers.pointer_arrays = true;
  const auto element = static_cast<int64_t>(sizeof(V));
  pointers.pointer_alignment =
      std::min(cuda::gemm_alignment(packed_d->data(), {C * element, s.T * 3 * C * element, s.HS * element}),
               cuda::gemm_alignment(scores_d.data(), {s.T * s.T * 4}));
  const Outcome strided_out = run_form(
      ctx, [&] { cuda::matmul(ctx, strided); }, scores_d.data(), score_count);
  const Outcome pointers_out = run_form(
      ctx, [&] { cuda::matmul(ctx, pointers); }, scores_d.data(), score_count);
  double max_diff = NAN;
  if (strided_out.offered && pointers_out.offered) {
    max_diff = 0.0;
    for (size_t i = 0; i < score_count; ++i) {
      max_diff =
          std::max(max_diff, static_cast<double>(std::fabs(strided_out.scores[i] - pointers_out.scores[i])));
    }
  }
  std::printf(
      "%s B=%lld T=%lld NH=%lld HS=%lld: head-major strided %s %.4f ms/launch; pointer-array %s %.4f "
      "ms/launch; max |difference| %g\n",
      name, static_cast<long long>(s.B), static_cast<long long>(s.T), static_cast<long long>(s.NH),
      static_cast<long long>(s.HS), strided_out.offered ? "offered" : strided_out.note.c_str(),
      strided_out.ms, pointers_out.offered ? "offered" : pointers_out.note.c_str(), pointers_out.ms,
      max_diff);
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
  CudaContext ctx(0);  // its stream, cuBLASLt handle, 32 MiB workspace, allocator and GEMM plans
  probe<float>(ctx, s, DType::F32, MathMode::IEEE_FP32, "f32");
  // Training's other math modes: f32 operands with TF32 or down-converted 16-bit products.
  probe<float>(ctx, s, DType::F32, MathMode::TF32, "f32 tf32");
  probe<float>(ctx, s, DType::F32, MathMode::BF16, "f32 bf16-products");
  probe<float>(ctx, s, DType::F32, MathMode::FP16, "f32 f16-products");
  probe<__nv_bfloat16>(ctx, s, DType::BF16, MathMode::IEEE_FP32, "bf16");
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
