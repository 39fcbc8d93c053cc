// gelu_forward / gelu_backward: argument checks and device dispatch (kernels in gelu_cpu.cc and
// gelu_cuda.cu). Activation gradients overwrite (=).
#include "ops/gelu.h"
#include "backend/device.h"
#include "ops/gelu_cpu.h"
#include "ops/gelu_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {

void gelu_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x) {
  constexpr const char* kOp = "gelu_forward";
  switch (detail::check_elementwise_out(kOp, ctx, {{"x", &x}}, {"out", &out}).type) {
    case DeviceType::CPU:
      detail::with_f32_result(
          out, [&](Tensor& f32) { cpu::gelu_forward(f32.data<float>(), x.data<float>(), x.numel()); });
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        if (out.dtype() == DType::F32) {
          cuda::gelu_forward(ctx, out.raw_data(), x.raw_data(), DType::F32, x.numel());
        } else {
          cuda::gelu_forward_rounded(ctx, out.raw_data(), out.dtype(), x.data<float>(), x.numel());
        }
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void gelu_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, const Tensor& x) {
  constexpr const char* kOp = "gelu_backward";
  switch (detail::check_elementwise_out(kOp, ctx, {{"x", &x}, {"dout", &dout}}, {"dx", &dx}).type) {
    case DeviceType::CPU:
      detail::with_f32_result(dx, [&](Tensor& f32) {
        cpu::gelu_backward(f32.data<float>(), dout.data<float>(), x.data<float>(), x.numel());
      });
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::gelu_backward(ctx, dx.raw_data(), dx.dtype(), dout.data<float>(), x.data<float>(), x.numel());
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
