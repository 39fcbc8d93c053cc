// add_forward: argument checks and device dispatch (kernels in add_cpu.cc and add_cuda.cu).
#include "ops/add.h"
#include "backend/device.h"
#include "ops/add_cpu.h"
#include "ops/add_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {

void add_forward(ExecutionContext& ctx, Tensor& out, const Tensor& a, const Tensor& b) {
  constexpr const char* kOp = "add_forward";
  switch (detail::check_elementwise(kOp, ctx, {{"a", &a}, {"b", &b}, {"out", &out}}).type) {
    case DeviceType::CPU:
      cpu::add_forward(out.data<float>(), a.data<float>(), b.data<float>(), a.numel());
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::add_forward(ctx, out.data<float>(), a.data<float>(), b.data<float>(), a.numel());
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
