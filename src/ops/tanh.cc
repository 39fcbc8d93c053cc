// tanh_forward / tanh_backward: argument checks and device dispatch (kernels in tanh_cpu.cc and
// tanh_cuda.cu). Activation gradients overwrite (=).
#include "ops/tanh.h"
#include "backend/device.h"
#include "ops/op_util.h"
#include "ops/tanh_cpu.h"
#include "ops/tanh_cuda.h"

namespace nlpf::ops {

void tanh_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x) {
  constexpr const char* kOp = "tanh_forward";
  switch (detail::check_elementwise(kOp, ctx, {{"x", &x}, {"out", &out}}).type) {
    case DeviceType::CPU:
      cpu::tanh_forward(out.data<float>(), x.data<float>(), x.numel());
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::tanh_forward(ctx, out.data<float>(), x.data<float>(), x.numel());
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void tanh_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, const Tensor& out) {
  constexpr const char* kOp = "tanh_backward";
  switch (detail::check_elementwise(kOp, ctx, {{"out", &out}, {"dout", &dout}, {"dx", &dx}}).type) {
    case DeviceType::CPU:
      cpu::tanh_backward(dx.data<float>(), dout.data<float>(), out.data<float>(), out.numel());
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::tanh_backward(ctx, dx.data<float>(), dout.data<float>(), out.data<float>(), out.numel());
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
