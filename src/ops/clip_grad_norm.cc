// clip_grad_norm: argument checks and device dispatch (kernels in clip_grad_norm_cpu.cc).
#include "ops/clip_grad_norm.h"
#include <cmath>
#include <string>
#include "ops/clip_grad_norm_cpu.h"

#include "ops/op_util.h"

namespace nlpf::ops {

double clip_grad_norm(ExecutionContext& ctx, std::span<Tensor> grads, double max_norm) {
  constexpr const char* kOp = "clip_grad_norm";
  NLPF_CHECK(max_norm > 0, ErrorCode::INVALID_ARGUMENT, kOp, ": max_norm = ", max_norm, ", expected > 0");
  if (grads.empty()) return 0.0;
  for (size_t i = 0; i < grads.size(); ++i) {
    const std::string name = "grads[" + std::to_string(i) + "]";
    detail::check_dtype(kOp, name.c_str(), grads[i], DType::F32);
    detail::common_device(kOp, ctx, {{"grads[0]", &grads[0]}, {name.c_str(), &grads[i]}});
  }
  switch (grads[0].device().type) {
    case DeviceType::CPU: {
      double sum = 0;
      for (Tensor& g : grads) sum += cpu::sum_squares(g.data<float>(), g.numel());
      const double norm = std::sqrt(sum);
      const double coefficient = max_norm / (norm + 1e-6);  // torch's formula, 1e-6 included
      if (std::isfinite(norm) && coefficient < 1.0) {
        for (Tensor& g : grads) cpu::scale_inplace(g.data<float>(), g.numel(), coefficient);
      }
      return norm;
    }
    case DeviceType::CUDA:  // cuda::sum_squares / cuda::scale_inplace (clip_grad_norm_cuda.cu) go here
      detail::throw_no_cuda_kernel(kOp);
  }
  NLPF_THROW(ErrorCode::INTERNAL, kOp, ": unknown device type");
}

}  // namespace nlpf::ops
