// adamw_update: argument checks and device dispatch (kernels in adamw_cpu.cc and adamw_cuda.cu).
#include "ops/adamw.h"

#include <cmath>
#include <vector>

#include "backend/device.h"
#include "ops/adamw_cpu.h"
#include "ops/adamw_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {

namespace {

constexpr const char* kOp = "adamw_update";

void check_config(const AdamWConfig& config, int64_t step) {
  NLPF_CHECK(step >= 1, ErrorCode::INVALID_ARGUMENT, kOp, ": step = ", step, ", expected >= 1");
  NLPF_CHECK(std::isfinite(config.lr) && config.lr >= 0, ErrorCode::INVALID_ARGUMENT, kOp,
             ": lr = ", config.lr, " is negative or not finite");
  NLPF_CHECK(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1,
             ErrorCode::INVALID_ARGUMENT, kOp, ": betas (", config.beta1, ", ", config.beta2,
             ") are outside [0, 1)");
  NLPF_CHECK(config.eps > 0, ErrorCode::INVALID_ARGUMENT, kOp, ": eps = ", config.eps, ", expected > 0");
  NLPF_CHECK(config.weight_decay >= 0, ErrorCode::INVALID_ARGUMENT, kOp,
             ": weight_decay = ", config.weight_decay, " is negative");
}

double weight_decay_of(WeightDecay decay, const AdamWConfig& config) {
  return decay == WeightDecay::APPLY ? config.weight_decay : 0.0;
}

// The CPU reference on one parameter's checked tensors, each gradient element read times grad_scale.
void update_on_cpu(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWConfig& config,
                   int64_t step, WeightDecay decay, float grad_scale) {
  cpu::adamw_update(param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(), grad.numel(),
                    config.lr, config.beta1, config.beta2, config.eps, weight_decay_of(decay, config), step,
                    grad_scale);
}

}  // namespace

void adamw_update(ExecutionContext& ctx, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                  const AdamWConfig& config, int64_t step, WeightDecay decay) {
  check_config(config, step);
  const Device device =
      detail::check_elementwise(kOp, ctx, {{"grad", &grad}, {"param", &param}, {"m", &m}, {"v", &v}});
  switch (device.type) {
    case DeviceType::CPU:
      update_on_cpu(param, grad, m, v, config, step, decay, 1.0f);
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::adamw_update(ctx, param.data<float>(), grad.data<float>(), m.data<float>(), v.data<float>(),
                           grad.numel(), config.lr, config.beta1, config.beta2, config.eps,
                           weight_decay_of(decay, config), step);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void adamw_update(ExecutionContext& ctx, std::span<AdamWParameter> parameters, const AdamWConfig& config,
                  int64_t step) {
  check_config(config, step);
  if (parameters.empty()) return;
  std::vector<cuda::AdamWArrays> arrays;
  for (AdamWParameter& p : parameters) {
    const Device device = detail::check_elementwise(
        kOp, ctx, {{"grad", &p.grad}, {"param", &p.param}, {"m", &p.m}, {"v", &p.v}});
    if (device.type == DeviceType::CPU) {
      adamw_update(ctx, p.param, p.grad, p.m, p.v, config, step, p.decay);
      continue;
    }
    arrays.push_back({p.param.data<float>(), p.grad.data<float>(), p.m.data<float>(), p.v.data<float>(),
                      p.grad.numel(), weight_decay_of(p.decay, config)});
  }
  if (arrays.empty()) return;
  if constexpr (kCudaBuilt) {
    cuda::adamw_update(ctx, arrays, config.lr, config.beta1, config.beta2, config.eps, step);
  } else {
    detail::throw_no_cuda_kernel(kOp);
  }
}

void adamw_update(ExecutionContext& ctx, std::span<AdamWParameter> parameters, const AdamWConfig& config,
                  const AdamWStepScalars* scalars) {
  NLPF_CHECK(scalars != nullptr, ErrorCode::INVALID_ARGUMENT, kOp, ": null step scalars");
  if (ctx.device().type == DeviceType::CPU) {  // host memory: the host form with the scalars read here
    if (scalars->skip != 0) return;
    AdamWConfig step_config = config;
    step_config.lr = scalars->learning_rate;
    check_config(step_config, scalars->step);
    for (AdamWParameter& p : parameters) {
      detail::check_elementwise(kOp, ctx, {{"grad", &p.grad}, {"param", &p.param}, {"m", &p.m}, {"v", &p.v}});
      update_on_cpu(p.param, p.grad, p.m, p.v, step_config, scalars->step, p.decay, scalars->grad_scale);
    }
    return;
  }
  check_config(config, 1);
  if (parameters.empty()) return;
  std::vector<cuda::AdamWArrays> arrays;
  for (AdamWParameter& p : parameters) {
    detail::check_elementwise(kOp, ctx, {{"grad", &p.grad}, {"param", &p.param}, {"m", &p.m}, {"v", &p.v}});
    arrays.push_back({p.param.data<float>(), p.grad.data<float>(), p.m.data<float>(), p.v.data<float>(),
                      p.grad.numel(), weight_decay_of(p.decay, config)});
  }
  if constexpr (kCudaBuilt) {
    cuda::adamw_update(ctx, arrays, scalars, config.beta1, config.beta2, config.eps);
  } else {
    detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
