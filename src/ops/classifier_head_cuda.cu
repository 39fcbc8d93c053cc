// The classifier head after the pooler GEMM on CUDA (classifier_head_cuda.h): tanh of the pooler output, the
// NL logits in fp32, the argmax and the count of correct predictions, in one kernel with one block per
// sequence. The work is tiny (B rows of C): the point is that logits, predictions and the count stay on the
// device, so a pass reads back one number, and that no extra launches sit on the critical path.
#include "ops/classifier_head_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/float_convert.cuh"
#include "backend/cuda/cuda_context.h"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kMaxSharedFloats = 12 * 1024;  // 48 KB of dynamic shared memory: C + NL floats

// logits [B,NL] f32, predictions [B] i32, *correct (+=, when labels is not null); pooler_pre [B,C] and
// weight [NL,C] of T, bias [NL] f32, labels [B] i32 or null. Grid B, kThreads threads, dynamic shared memory
// (C + NL) floats. The block stages pooled = tanh(pooler_pre[b]) rounded to T (what a 16-bit model stores, so
// the logits match one that runs the pooler's tanh as its own op), then warp w computes logits w, w + kWarps,
// ... with lane-strided fp32 dot products, and thread 0 takes the first maximum (torch.argmax) and adds at
// most one to *correct.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    classifier_head_forward_kernel(float* __restrict__ logits, int32_t* __restrict__ predictions,
                                   int32_t* __restrict__ correct, const T* __restrict__ pooler_pre,
                                   const T* __restrict__ weight, const float* __restrict__ bias,
                                   const int32_t* __restrict__ labels, int C, int NL) {
  extern __shared__ float shared[];
  float* pooled = shared;          // [C]
  float* row_logits = shared + C;  // [NL]
  const int64_t b = blockIdx.x;
  const T* pre = pooler_pre + b * C;
  for (int c = threadIdx.x; c < C; c += kThreads)
    pooled[c] = to_float(from_float<T>(tanhf(to_float(pre[c]))));
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int j = warp; j < NL; j += kWarps) {
    const T* w = weight + static_cast<int64_t>(j) * C;
    float dot = 0.0f;
    for (int c = lane; c < C; c += 32) dot = fmaf(pooled[c], to_float(w[c]), dot);
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    if (lane == 0) {
      const float logit = dot + bias[j];
      logits[b * NL + j] = logit;
      row_logits[j] = logit;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t best = 0;
    for (int j = 1; j < NL; ++j) {
      if (row_logits[j] > row_logits[best]) best = j;
    }
    predictions[b] = best;
    if (labels != nullptr && labels[b] == best) atomicAdd(correct, 1);
  }
}

template <typename T>
void launch(CudaContext& ctx, float* logits, int32_t* predictions, int32_t* correct, const void* pooler_pre,
            const void* classifier_weight, const float* classifier_bias, const int32_t* labels, int64_t B,
            int64_t C, int64_t NL) {
  const size_t shared_bytes = static_cast<size_t>(C + NL) * sizeof(float);
  classifier_head_forward_kernel<T><<<static_cast<unsigned>(B), kThreads, shared_bytes, ctx.stream()>>>(
      logits, predictions, correct, static_cast<const T*>(pooler_pre),
      static_cast<const T*>(classifier_weight), classifier_bias, labels, static_cast<int>(C),
      static_cast<int>(NL));
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace

void classifier_head_forward(ExecutionContext& ctx, float* logits, int32_t* predictions, int32_t* correct,
                             const void* pooler_pre, const void* classifier_weight,
                             const float* classifier_bias, const int32_t* labels, DType dtype, int64_t B,
                             int64_t C, int64_t NL) {
  constexpr const char* kOp = "classifier_head_forward (cuda)";
  NLPF_CHECK(B >= 0 && C > 0 && NL > 0, ErrorCode::INVALID_ARGUMENT, kOp, ": B = ", B, ", C = ", C,
             ", NL = ", NL);
  NLPF_CHECK(C + NL <= kMaxSharedFloats, ErrorCode::UNSUPPORTED, kOp, ": C + NL = ", C + NL, " exceeds ",
             kMaxSharedFloats, " (the pooled row and logits live in 48 KB of shared memory)");
  NLPF_CHECK(B <= 0x7fffffff, ErrorCode::UNSUPPORTED, kOp, ": B = ", B, " exceeds the grid");
  NLPF_CHECK((labels == nullptr) == (correct == nullptr), ErrorCode::INVALID_ARGUMENT, kOp,
             ": correct and labels are given together or not at all");
  if (B == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  switch (dtype) {
    case DType::F32:
      return launch<float>(cuda, logits, predictions, correct, pooler_pre, classifier_weight, classifier_bias,
                           labels, B, C, NL);
    case DType::BF16:
      return launch<__nv_bfloat16>(cuda, logits, predictions, correct, pooler_pre, classifier_weight,
                                   classifier_bias, labels, B, C, NL);
    case DType::F16:
      return launch<__half>(cuda, logits, predictions, correct, pooler_pre, classifier_weight,
                            classifier_bias, labels, B, C, NL);
    default:
      break;
  }
  NLPF_THROW(ErrorCode::UNSUPPORTED, kOp, ": dtype ", dtype_name(dtype), ", expected f32, bf16 or f16");
}

}  // namespace nlpf::cuda
