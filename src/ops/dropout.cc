// dropout_forward / dropout_backward / dropout_mask: argument checks and device dispatch (kernels in
// dropout_cpu.cc and dropout_cuda.cu). Activation gradients overwrite (=).
#include "ops/dropout.h"
#include "backend/device.h"
#include "ops/dropout_cpu.h"
#include "ops/dropout_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {
namespace {

void dropout_apply(ExecutionContext& ctx, const char* op, Tensor& out, const char* out_name, const Tensor& in,
                   const char* in_name, const Tensor& keep, double p) {
  NLPF_CHECK(p >= 0 && p < 1, ErrorCode::INVALID_ARGUMENT, op, ": p = ", p, " is outside [0, 1)");
  const Device device =
      detail::check_elementwise(op, ctx, {{in_name, &in}, {"keep", &keep}, {out_name, &out}});
  switch (device.type) {
    case DeviceType::CPU:
      cpu::dropout_forward(out.data<float>(), in.data<float>(), keep.data<float>(),
                           static_cast<float>(1 / (1 - p)), in.numel());
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::dropout_forward(ctx, out.data<float>(), in.data<float>(), keep.data<float>(),
                              static_cast<float>(1 / (1 - p)), in.numel());
        return;
      }
      detail::throw_no_cuda_kernel(op);
  }
}

}  // namespace

void dropout_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, const Tensor& keep, double p) {
  dropout_apply(ctx, "dropout_forward", out, "out", x, "x", keep, p);
}

void dropout_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, const Tensor& keep, double p) {
  dropout_apply(ctx, "dropout_backward", dx, "dx", dout, "dout", keep, p);
}

void dropout_mask(ExecutionContext& ctx, Tensor& keep, double p, uint64_t seed, uint64_t offset) {
  constexpr const char* kOp = "dropout_mask";
  NLPF_CHECK(p >= 0 && p < 1, ErrorCode::INVALID_ARGUMENT, kOp, ": p = ", p, " is outside [0, 1)");
  detail::check_dtype(kOp, "keep", keep, DType::F32);
  switch (detail::common_device(kOp, ctx, {{"keep", &keep}}).type) {
    case DeviceType::CPU:
      cpu::dropout_mask(keep.data<float>(), p, seed, offset, keep.numel());
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::dropout_mask(ctx, keep.data<float>(), p, seed, offset, keep.numel());
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void dropout_mask(ExecutionContext& ctx, Tensor& keep, double p, uint64_t seed, uint64_t offset,
                  const int64_t* step, uint64_t step_stride) {
  constexpr const char* kOp = "dropout_mask";
  NLPF_CHECK(step != nullptr && offset % 4 == 0 && step_stride % 4 == 0, ErrorCode::INVALID_ARGUMENT, kOp,
             ": a null step, or offset ", offset, " or step stride ", step_stride, " not a multiple of 4");
  NLPF_CHECK(p >= 0 && p < 1, ErrorCode::INVALID_ARGUMENT, kOp, ": p = ", p, " is outside [0, 1)");
  detail::check_dtype(kOp, "keep", keep, DType::F32);
  switch (detail::common_device(kOp, ctx, {{"keep", &keep}}).type) {
    case DeviceType::CPU:  // the context's memory is the host's
      cpu::dropout_mask(keep.data<float>(), p, seed, offset + static_cast<uint64_t>(*step) * step_stride,
                        keep.numel());
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::dropout_mask(ctx, keep.data<float>(), p, seed, offset, keep.numel(), step, step_stride);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
