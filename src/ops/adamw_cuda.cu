// The AdamW step on CUDA (adamw_cuda.h): one elementwise kernel, a thread per element in a grid-stride loop.
// The step's scalars come from the host as arguments (the CPU reference's roundings, see adamw_cpu.cc).
#include "ops/adamw_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 256;

struct AdamWScalars {
  float decay;            // 1 - lr wd
  float one_minus_beta1;  // 1 - beta1
  float beta2;
  float one_minus_beta2;        // 1 - beta2
  float step_size;              // lr / (1 - beta1^step)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^step)
  float eps;
};

// param, m, v [N] (in place), grad [N]. __fmul_rn / __fadd_rn / __fsub_rn keep each operation rounded on its
// own as in the CPU reference (nvcc would otherwise contract a * b + c into one fma).
__global__ void adamw_update_kernel(float* __restrict__ param, const float* __restrict__ grad,
                                    float* __restrict__ m, float* __restrict__ v, int64_t N, AdamWScalars s) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < N; i += stride) {
    const float g = grad[i];
    float p = __fmul_rn(param[i], s.decay);
    const float m_old = m[i];
    const float m_i = __fadd_rn(m_old, __fmul_rn(s.one_minus_beta1, __fsub_rn(g, m_old)));
    const float v_i = __fadd_rn(__fmul_rn(v[i], s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
    const float denominator = __fadd_rn(__fdiv_rn(__fsqrt_rn(v_i), s.bias_correction2_sqrt), s.eps);
    p = __fsub_rn(p, __fmul_rn(s.step_size, __fdiv_rn(m_i, denominator)));
    param[i] = p;
    m[i] = m_i;
    v[i] = v_i;
  }
}

}  // namespace

void adamw_update(ExecutionContext& base, float* param, const float* grad, float* m, float* v, int64_t N,
                  double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  if (N == 0) return;
  CudaContext& ctx = cuda_context(base);
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - lr * weight_decay);
  s.one_minus_beta1 = static_cast<float>(1.0 - beta1);
  s.beta2 = static_cast<float>(beta2);
  s.one_minus_beta2 = static_cast<float>(1.0 - beta2);
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  s.step_size = static_cast<float>(lr / bias_correction1);
  s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  s.eps = static_cast<float>(eps);
  // Enough blocks to fill the device several times over; the grid-stride loop covers the rest.
  const int64_t blocks =
      std::min<int64_t>((N + kThreads - 1) / kThreads, int64_t{32} * ctx.multiprocessor_count());
  adamw_update_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(param, grad, m, v, N, s);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
