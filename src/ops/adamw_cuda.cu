// The AdamW step on CUDA (adamw_cuda.h): one elementwise kernel, a thread per element in a grid-stride loop,
// for one parameter or, multi-tensor, for up to kParametersPerLaunch parameters per launch (their pointers
// travel in a table argument; each block belongs to one parameter). The step's scalars come from the host as
// arguments (the CPU reference's roundings, see adamw_cpu.cc).
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

// Elements [first, N) with stride of param, m, v (in place) and grad. __fmul_rn / __fadd_rn / __fsub_rn keep
// each operation rounded on its own as in the CPU reference (nvcc would otherwise contract a * b + c into one
// fma).
__device__ __forceinline__ void adamw_elements(float* __restrict__ param, const float* __restrict__ grad,
                                               float* __restrict__ m, float* __restrict__ v, int64_t N,
                                               int64_t first, int64_t stride, const AdamWScalars& s,
                                               float decay, float grad_scale = 1.0f) {
  for (int64_t i = first; i < N; i += stride) {
    const float g = __fmul_rn(grad[i], grad_scale);  // x 1 is exact: the other kernels' gradients as they are
    float p = __fmul_rn(param[i], decay);
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

// param, m, v [N] (in place), grad [N].
__global__ void adamw_update_kernel(float* __restrict__ param, const float* __restrict__ grad,
                                    float* __restrict__ m, float* __restrict__ v, int64_t N, AdamWScalars s) {
  adamw_elements(param, grad, m, v, N, static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                 static_cast<int64_t>(gridDim.x) * blockDim.x, s, s.decay);
}

constexpr int kParametersPerLaunch = 48;  // the table stays under the 4 KB of classic kernel arguments

// Parameter a of a launch: its arrays, its decay factor (1 - lr wd, or 1 without decay) and its blocks
// [first_block[a], first_block[a + 1]).
struct ParameterTable {
  float* param[kParametersPerLaunch];
  const float* grad[kParametersPerLaunch];
  float* m[kParametersPerLaunch];
  float* v[kParametersPerLaunch];
  int64_t size[kParametersPerLaunch];
  float decay[kParametersPerLaunch];
  int64_t first_block[kParametersPerLaunch + 1];
  int count;
};

// The parameter of this block in table t, and the block's place among that parameter's blocks.
struct TableBlock {
  int a;
  int64_t block, blocks;
};
__device__ __forceinline__ TableBlock table_block(const ParameterTable& t) {
  int a = 0;
  while (a + 1 < t.count && t.first_block[a + 1] <= static_cast<int64_t>(blockIdx.x)) ++a;
  return {a, static_cast<int64_t>(blockIdx.x) - t.first_block[a], t.first_block[a + 1] - t.first_block[a]};
}

__global__ void adamw_update_multi_kernel(const ParameterTable t, AdamWScalars s) {
  const TableBlock b = table_block(t);
  adamw_elements(t.param[b.a], t.grad[b.a], t.m[b.a], t.v[b.a], t.size[b.a], b.block * kThreads + threadIdx.x,
                 b.blocks * kThreads, s, t.decay[b.a]);
}

// The multi-tensor kernel with the step's scalars from device memory; t.decay[a] is 1 for a parameter without
// decay and 0 for one with it (then scalars->decay); gradients read times scalars->grad_scale.
__global__ void adamw_update_device_scalars_kernel(const ParameterTable t, AdamWScalars s,
                                                   const ops::AdamWStepScalars* __restrict__ scalars) {
  if (scalars->skip != 0) return;
  s.decay = scalars->decay;
  s.step_size = scalars->step_size;
  s.bias_correction2_sqrt = scalars->bias_correction2_sqrt;
  const TableBlock b = table_block(t);
  adamw_elements(t.param[b.a], t.grad[b.a], t.m[b.a], t.v[b.a], t.size[b.a], b.block * kThreads + threadIdx.x,
                 b.blocks * kThreads, s, t.decay[b.a] == 1.0f ? 1.0f : s.decay, scalars->grad_scale);
}

// Fills tables of up to kParametersPerLaunch parameters (decay_of(p): a parameter's decay entry) and calls
// launch(table) for each; each parameter gets the blocks a launch of its own would take, bounded so that one
// table's grid stays small.
template <typename DecayOf, typename Launch>
void for_each_table(std::span<const AdamWArrays> parameters, DecayOf decay_of, Launch launch) {
  constexpr int64_t kElementsPerBlock = int64_t{kThreads} * 8, kMaxBlocks = 1024;
  ParameterTable table{};
  for (const AdamWArrays& p : parameters) {
    if (p.N == 0) continue;
    const int a = table.count;
    table.param[a] = p.param;
    table.grad[a] = p.grad;
    table.m[a] = p.m;
    table.v[a] = p.v;
    table.size[a] = p.N;
    table.decay[a] = decay_of(p);
    table.first_block[a + 1] =
        table.first_block[a] + std::min(kMaxBlocks, (p.N + kElementsPerBlock - 1) / kElementsPerBlock);
    if (++table.count == kParametersPerLaunch) {
      launch(table);
      table = ParameterTable{};
    }
  }
  if (table.count > 0) launch(table);
}

// 1 - lr wd, rounded as the CPU kernel rounds it.
float decay_factor(double lr, double weight_decay) {
  return static_cast<float>(1.0 - lr * weight_decay);
}

// The step's scalars as the CPU kernel rounds them (decay for a parameter with weight_decay).
AdamWScalars scalars_for(double lr, double beta1, double beta2, double eps, double weight_decay,
                         int64_t step) {
  AdamWScalars s;
  s.decay = decay_factor(lr, weight_decay);
  s.one_minus_beta1 = static_cast<float>(1.0 - beta1);
  s.beta2 = static_cast<float>(beta2);
  s.one_minus_beta2 = static_cast<float>(1.0 - beta2);
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  s.step_size = static_cast<float>(lr / bias_correction1);
  s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  s.eps = static_cast<float>(eps);
  return s;
}

}  // namespace

void adamw_update(ExecutionContext& base, float* param, const float* grad, float* m, float* v, int64_t N,
                  double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  if (N == 0) return;
  CudaContext& ctx = cuda_context(base);
  const AdamWScalars s = scalars_for(lr, beta1, beta2, eps, weight_decay, step);
  // Enough blocks to fill the device several times over; the grid-stride loop covers the rest.
  const int64_t blocks =
      std::min<int64_t>((N + kThreads - 1) / kThreads, int64_t{32} * ctx.multiprocessor_count());
  adamw_update_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(param, grad, m, v, N, s);
  NLPF_CUDA_CHECK_LAUNCH();
}

void adamw_update(ExecutionContext& base, std::span<const AdamWArrays> parameters, double lr, double beta1,
                  double beta2, double eps, int64_t step) {
  CudaContext& ctx = cuda_context(base);
  const AdamWScalars s = scalars_for(lr, beta1, beta2, eps, 0.0, step);
  for_each_table(
      parameters, [&](const AdamWArrays& p) { return decay_factor(lr, p.weight_decay); },
      [&](const ParameterTable& table) {
        adamw_update_multi_kernel<<<static_cast<unsigned>(table.first_block[table.count]), kThreads, 0,
                                    ctx.stream()>>>(table, s);
        NLPF_CUDA_CHECK_LAUNCH();
      });
}

void adamw_update(ExecutionContext& base, std::span<const AdamWArrays> parameters,
                  const ops::AdamWStepScalars* scalars, double beta1, double beta2, double eps) {
  CudaContext& ctx = cuda_context(base);
  // The step-independent scalars; decay, step_size and bias_correction2_sqrt come from `scalars`.
  const AdamWScalars s = scalars_for(0.0, beta1, beta2, eps, 0.0, 1);
  for_each_table(
      parameters,
      [](const AdamWArrays& p) { return p.weight_decay == 0.0 ? 1.0f : 0.0f; },  // 0: scalars->decay
      [&](const ParameterTable& table) {
        adamw_update_device_scalars_kernel<<<static_cast<unsigned>(table.first_block[table.count]), kThreads,
                                             0, ctx.stream()>>>(table, s, scalars);
        NLPF_CUDA_CHECK_LAUNCH();
      });
}

}  // namespace nlpf::cuda
