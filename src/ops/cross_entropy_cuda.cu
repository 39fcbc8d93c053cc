// Softmax cross-entropy on CUDA (cross_entropy_cuda.h): one thread per row for softmax and row loss in double
// (B is a batch of examples and NL a few classes: a classifier head), then one thread adds the row losses in
// row order and finds the first invalid label, so the loss is the CPU's sum in the CPU's order.
// Activation gradients overwrite (=).
#include "ops/cross_entropy_cuda.h"

#include <cuda_runtime.h>

#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "core/tensor.h"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 128;

// What the host reads back after the forward.
struct CrossEntropyResult {
  double loss;        // mean over the batch
  int64_t bad_index;  // first row whose label is outside [0, NL); -1 if none
  int64_t bad_label;  // its label
};

// probs [B,NL] (=), row_loss [B] (=); grid ceil(B / kThreads), kThreads threads, a thread per row b. The
// arithmetic is the CPU reference's: the max of the float logits, exp and the sum in double, probs rounded to
// f32 once; a row with an invalid label gets loss 0 (the finish kernel reports it).
__global__ void cross_entropy_rows_kernel(float* __restrict__ probs, double* __restrict__ row_loss,
                                          const float* __restrict__ logits,
                                          const int32_t* __restrict__ labels, int64_t B, int64_t NL) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const float* z = logits + b * NL;
  float max_f = z[0];
  for (int64_t j = 1; j < NL; ++j) max_f = fmaxf(max_f, z[j]);
  const double max_z = max_f;
  double sum = 0;
  for (int64_t j = 0; j < NL; ++j) sum += exp(static_cast<double>(z[j]) - max_z);
  for (int64_t j = 0; j < NL; ++j)
    probs[b * NL + j] = static_cast<float>(exp(static_cast<double>(z[j]) - max_z) / sum);
  const int32_t label = labels[b];
  row_loss[b] = label >= 0 && label < NL ? max_z + log(sum) - static_cast<double>(z[label]) : 0.0;
}

// result (=) the mean of row_loss [B] added in row order, and the first invalid label; one thread.
__global__ void cross_entropy_finish_kernel(CrossEntropyResult* __restrict__ result,
                                            const double* __restrict__ row_loss,
                                            const int32_t* __restrict__ labels, int64_t B, int64_t NL) {
  double loss = 0;
  int64_t bad_index = -1, bad_label = 0;
  for (int64_t b = 0; b < B; ++b) {
    loss += row_loss[b];
    if (bad_index < 0 && (labels[b] < 0 || labels[b] >= NL)) {
      bad_index = b;
      bad_label = labels[b];
    }
  }
  result->loss = loss / static_cast<double>(B);
  result->bad_index = bad_index;
  result->bad_label = bad_label;
}

// loss (=) the mean of row_loss [B] added in row order (the finish kernel's sum); one thread.
__global__ void cross_entropy_loss_kernel(double* __restrict__ loss, const double* __restrict__ row_loss,
                                          int64_t B) {
  double sum = 0;
  for (int64_t b = 0; b < B; ++b) sum += row_loss[b];
  *loss = sum / static_cast<double>(B);
}

// dlogits [B,NL] (=); a thread per element. The gradient reaching the loss is dloss_in_memory's value where
// that is given (the loss scale of a step kept on the device), else dloss; divided by B here as on the host.
__global__ void cross_entropy_backward_kernel(float* __restrict__ dlogits, const float* __restrict__ probs,
                                              const int32_t* __restrict__ labels, double dloss,
                                              const double* __restrict__ dloss_in_memory, int64_t B,
                                              int64_t NL) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= B * NL) return;
  const double scale = (dloss_in_memory != nullptr ? *dloss_in_memory : dloss) / static_cast<double>(B);
  const int64_t b = i / NL, j = i - b * NL;
  const double target = j == labels[b] ? 1.0 : 0.0;
  dlogits[i] = static_cast<float>(scale * (static_cast<double>(probs[i]) - target));
}

unsigned blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  NLPF_CHECK(blocks <= 0x7fffffff, ErrorCode::UNSUPPORTED, "cross_entropy (cuda): ", n,
             " elements exceed the grid");
  return static_cast<unsigned>(blocks);
}

}  // namespace

double cross_entropy_forward(ExecutionContext& base, float* probs, const float* logits, const int32_t* labels,
                             int64_t B, int64_t NL) {
  CudaContext& ctx = cuda_context(base);
  // Stream-ordered scratch: row losses [B], then the result (16-byte aligned after B doubles rounded up).
  const size_t result_offset = (static_cast<size_t>(B) * sizeof(double) + 15) / 16 * 16;
  Buffer scratch(ctx.allocator(), result_offset + sizeof(CrossEntropyResult));
  double* row_loss = static_cast<double*>(scratch.data());
  auto* result = reinterpret_cast<CrossEntropyResult*>(static_cast<char*>(scratch.data()) + result_offset);
  cross_entropy_rows_kernel<<<blocks_for(B), kThreads, 0, ctx.stream()>>>(probs, row_loss, logits, labels, B,
                                                                          NL);
  NLPF_CUDA_CHECK_LAUNCH();
  cross_entropy_finish_kernel<<<1, 1, 0, ctx.stream()>>>(result, row_loss, labels, B, NL);
  NLPF_CUDA_CHECK_LAUNCH();
  CrossEntropyResult host{};
  ctx.copy_bytes(&host, false, result, true, sizeof host);
  NLPF_CHECK(host.bad_index < 0, ErrorCode::INVALID_ARGUMENT, "cross_entropy_forward: labels[",
             host.bad_index, "] = ", host.bad_label, " is outside [0, ", NL, ")");
  return host.loss;
}

void cross_entropy_forward(ExecutionContext& base, float* probs, const float* logits, const int32_t* labels,
                           int64_t B, int64_t NL, double* loss) {
  CudaContext& ctx = cuda_context(base);
  Buffer scratch(ctx.allocator(), static_cast<size_t>(B) * sizeof(double));  // stream-ordered row losses
  double* row_loss = static_cast<double*>(scratch.data());
  cross_entropy_rows_kernel<<<blocks_for(B), kThreads, 0, ctx.stream()>>>(probs, row_loss, logits, labels, B,
                                                                          NL);
  NLPF_CUDA_CHECK_LAUNCH();
  cross_entropy_loss_kernel<<<1, 1, 0, ctx.stream()>>>(loss, row_loss, B);
  NLPF_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(ExecutionContext& base, float* dlogits, const float* probs, const int32_t* labels,
                            double dloss, const double* dloss_in_memory, int64_t B, int64_t NL) {
  CudaContext& ctx = cuda_context(base);
  cross_entropy_backward_kernel<<<blocks_for(B * NL), kThreads, 0, ctx.stream()>>>(dlogits, probs, labels, dloss,
                                                                                   dloss_in_memory, B, NL);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
