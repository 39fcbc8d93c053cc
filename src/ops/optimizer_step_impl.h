// decide_step's body, shared by the CPU (optimizer_step_cpu.cc) and the CUDA kernel (optimizer_step_cuda.cu)
// so the two cannot drift apart. Every double operation is one IEEE operation rounded on its own: on the
// device through __dmul_rn and friends (nvcc would contract a * b + c into an fma), on the host as written
// (the same roundings), so the learning rate and AdamW's scalars are the host's bits.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/optimizer_step.h"

#if defined(__CUDACC__)
#define NLPF_HOST_DEVICE __host__ __device__
#else
#define NLPF_HOST_DEVICE
#endif

namespace nlpf::ops::detail {

NLPF_HOST_DEVICE inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
NLPF_HOST_DEVICE inline double div_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
NLPF_HOST_DEVICE inline double sub_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
NLPF_HOST_DEVICE inline double sqrt_rn(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}
NLPF_HOST_DEVICE inline bool finite(double x) {
#if defined(__CUDA_ARCH__)
  return isfinite(x);
#else
  return std::isfinite(x);
#endif
}

// The linear warm-up and decay of transformers' _get_linear_schedule_with_warmup_lr_lambda, in double; also
// train/lr_schedule.cc's linear_warmup_decay_lr on the host.
NLPF_HOST_DEVICE inline double scheduled_learning_rate(double peak_lr, int64_t step, int64_t warmup_steps,
                                                       int64_t total_steps) {
  if (step < warmup_steps) {
    const int64_t warmup = warmup_steps > 1 ? warmup_steps : 1;
    return mul_rn(peak_lr, div_rn(static_cast<double>(step), static_cast<double>(warmup)));
  }
  const int64_t decay = total_steps - warmup_steps > 1 ? total_steps - warmup_steps : 1;
  const double remaining = div_rn(static_cast<double>(total_steps - step), static_cast<double>(decay));
  return mul_rn(peak_lr, remaining > 0.0 ? remaining : 0.0);
}

NLPF_HOST_DEVICE inline void decide_step(OptimizerStepState& s, StepRecord* ring, int64_t ring_steps,
                                         const OptimizerStepConstants& c) {
  const int64_t step = s.step;
  s.step = step + 1;
  StepRecord& record = ring[step % ring_steps];
  const int64_t updates = s.updates_done;
  const double learning_rate =
      scheduled_learning_rate(c.peak_learning_rate, updates, c.warmup_steps, c.total_steps);
  record.step = step;
  record.loss = s.loss;
  record.grad_norm = s.grad_norm;
  record.learning_rate = learning_rate;
  record.loss_scale = s.loss_scale;
  record.skipped = 0;
  record.error = StepError::NONE;
  if (s.failed_step >= 0) {
    record.error = StepError::AFTER_FAILURE;
  } else if (!finite(s.loss)) {
    record.error = StepError::LOSS_NOT_FINITE;
  } else if (!finite(s.grad_norm)) {
    if (c.loss_scaling != 0) {
      record.skipped = 1;
      s.loss_scale = mul_rn(s.loss_scale, c.backoff);
      s.updates_since_scale_change = 0;
    } else {
      record.error = StepError::NORM_NOT_FINITE;
    }
  }
  if (record.error != StepError::NONE && s.failed_step < 0) s.failed_step = step;
  AdamWStepScalars& a = s.adamw;
  a.skip = record.skipped != 0 || record.error != StepError::NONE ? 1 : 0;
  if (a.skip != 0) return;
  // adamw_cpu.cc's scalars (and adamw_cuda.cu's scalars_for) in the same operations.
  a.learning_rate = learning_rate;
  a.step = updates + 1;
  a.decay = static_cast<float>(sub_rn(1.0, mul_rn(learning_rate, c.weight_decay)));
  a.step_size = static_cast<float>(div_rn(learning_rate, c.bias_correction1[a.step]));
  a.bias_correction2_sqrt = static_cast<float>(sqrt_rn(c.bias_correction2[a.step]));
  a.grad_scale = static_cast<float>(s.clip_factor);  // clip_grad_norm_'s scaling, applied as AdamW reads
  s.updates_done = updates + 1;
  if (c.loss_scaling != 0 && ++s.updates_since_scale_change == c.growth_interval) {
    s.loss_scale = mul_rn(s.loss_scale, c.growth);
    s.updates_since_scale_change = 0;
  }
}

}  // namespace nlpf::ops::detail
