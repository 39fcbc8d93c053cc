// clip_grad_norm: argument checks and device dispatch (kernels in clip_grad_norm_cpu.cc and
// clip_grad_norm_cuda.cu). The norm and the decision to scale are the host's on both devices.
#include "ops/clip_grad_norm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/device.h"
#include "ops/clip_grad_norm_cpu.h"
#include "ops/clip_grad_norm_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {

namespace {

constexpr const char* kOp = "clip_grad_norm";

void check_grads(ExecutionContext& ctx, std::span<Tensor> grads, double max_norm) {
  NLPF_CHECK(max_norm > 0, ErrorCode::INVALID_ARGUMENT, kOp, ": max_norm = ", max_norm, ", expected > 0");
  for (size_t i = 0; i < grads.size(); ++i) {
    const std::string name = "grads[" + std::to_string(i) + "]";
    detail::check_dtype(kOp, name.c_str(), grads[i], DType::F32);
    detail::common_device(kOp, ctx, {{"grads[0]", &grads[0]}, {name.c_str(), &grads[i]}});
  }
}

// torch's norm and clip factor from the sum of squares (the factor 1 / scale included), in the operations
// the CUDA kernel repeats (clip_grad_norm_cuda.cu's clip_factor_kernel).
struct NormAndFactor {
  double norm, factor;
};
NormAndFactor norm_and_factor(double sum, double max_norm, double inverse_scale) {
  const double norm = std::sqrt(sum) * inverse_scale;
  const double coefficient = max_norm / (norm + 1e-6);  // torch's formula, 1e-6 included
  return {norm, std::min(coefficient, 1.0) * inverse_scale};
}

// The sum of squares of `grads` (on ctx's device, read back to the host), torch's norm and factor from it,
// and, with `scale`, the gradients multiplied by the factor (where the norm is finite and the factor not 1).
NormAndFactor norm_and_scale(ExecutionContext& ctx, std::span<Tensor> grads, double max_norm,
                             double inverse_scale, bool scale) {
  const bool on_cuda = ctx.device().type == DeviceType::CUDA;
  if (on_cuda && !kCudaBuilt) detail::throw_no_cuda_kernel(kOp);
  double sum = 0;
  std::vector<float*> arrays;
  std::vector<int64_t> sizes;
  for (Tensor& g : grads) {
    arrays.push_back(g.data<float>());
    sizes.push_back(g.numel());
  }
  if (!on_cuda) {
    for (size_t i = 0; i < arrays.size(); ++i) sum += cpu::sum_squares(arrays[i], sizes[i]);
  } else if constexpr (kCudaBuilt) {
    const std::vector<const float*> read(arrays.begin(), arrays.end());
    sum = cuda::sum_squares(ctx, read, sizes);  // read back to the host
  }
  const NormAndFactor result = norm_and_factor(sum, max_norm, inverse_scale);
  if (scale && std::isfinite(result.norm) && result.factor != 1.0) {
    if (!on_cuda) {
      for (size_t i = 0; i < arrays.size(); ++i) cpu::scale_inplace(arrays[i], sizes[i], result.factor);
    } else if constexpr (kCudaBuilt) {
      cuda::scale_inplace(ctx, arrays, sizes, result.factor);
    }
  }
  return result;
}

}  // namespace

double clip_grad_norm(ExecutionContext& ctx, std::span<Tensor> grads, double max_norm, double inverse_scale) {
  check_grads(ctx, grads, max_norm);
  NLPF_CHECK(inverse_scale > 0 && std::isfinite(inverse_scale), ErrorCode::INVALID_ARGUMENT, kOp,
             ": inverse_scale = ", inverse_scale, ", expected a finite value > 0");
  if (grads.empty()) return 0.0;
  return norm_and_scale(ctx, grads, max_norm, inverse_scale, /*scale=*/true).norm;
}

void clip_grad_norm(ExecutionContext& ctx, std::span<Tensor> grads, double max_norm, const double* loss_scale,
                    double* norm, double* factor, ClipScaling scaling) {
  check_grads(ctx, grads, max_norm);
  NLPF_CHECK(loss_scale != nullptr && norm != nullptr && factor != nullptr, ErrorCode::INVALID_ARGUMENT, kOp,
             ": null loss scale, norm or factor");
  const bool on_cuda = ctx.device().type == DeviceType::CUDA;
  if (!on_cuda) {  // host memory: the host form's operations
    const NormAndFactor computed =
        norm_and_scale(ctx, grads, max_norm, 1.0 / *loss_scale, scaling == ClipScaling::IN_PLACE);
    *norm = computed.norm;
    *factor = std::isfinite(computed.norm) ? computed.factor : 1.0;
    return;
  }
  if constexpr (kCudaBuilt) {
    std::vector<float*> arrays;
    std::vector<int64_t> sizes;
    for (Tensor& g : grads) {
      arrays.push_back(g.data<float>());
      sizes.push_back(g.numel());
    }
    cuda::clip_grad_norm(ctx, arrays, sizes, max_norm, loss_scale, norm, factor,
                         scaling == ClipScaling::IN_PLACE);
    return;
  }
  detail::throw_no_cuda_kernel(kOp);
}

}  // namespace nlpf::ops
