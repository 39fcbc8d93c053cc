// CUDA kernel of the AdamW step (adamw_cuda.cu), declared without CUDA headers for the dispatch in adamw.cc.
#pragma once

#include <cstdint>
#include <span>

#include "backend/context.h"
#include "ops/optimizer_step.h"

namespace nlpf::cuda {

// param [N], m [N], v [N] updated in place from grad [N], all f32 (formula and order in adamw.h);
// weight_decay is 0 for a parameter without decay. The scalars are rounded to f32 on the host exactly as the
// CPU kernel rounds them, and the element math is the CPU's f32 operations, each rounded (no fused
// multiply-add), so the two agree to the rounding of sqrt and division (both IEEE here).
void adamw_update(ExecutionContext& ctx, float* param, const float* grad, float* m, float* v, int64_t N,
                  double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step);

// One parameter of a multi-tensor step: param, m, v [N] in place, grad [N]; weight_decay 0 for no decay.
struct AdamWArrays {
  float* param;
  const float* grad;
  float* m;
  float* v;
  int64_t N;
  double weight_decay;
};
// The step above on every parameter, in a few launches (up to 64 parameters each); each element gets the
// single-tensor kernel's operations and scalars, so the results are the same bits.
void adamw_update(ExecutionContext& ctx, std::span<const AdamWArrays> parameters, double lr, double beta1,
                  double beta2, double eps, int64_t step);
// The same with the step's scalars read from `scalars` (device memory, decide_step's): every block returns at
// once when scalars->skip is set; a parameter with weight_decay 0 gets decay 1 (the host's 1 - lr 0), any
// other scalars->decay, so each weight_decay given must be 0 or the one decide_step was given.
void adamw_update(ExecutionContext& ctx, std::span<const AdamWArrays> parameters,
                  const ops::AdamWStepScalars* scalars, double beta1, double beta2, double eps);

}  // namespace nlpf::cuda
