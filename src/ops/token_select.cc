// token_select_forward / token_select_backward: argument checks and device dispatch (kernels in
// token_select_cpu.cc and token_select_cuda.cu). Activation gradients overwrite (=).
#include "ops/token_select.h"
#include "backend/device.h"
#include "ops/op_util.h"
#include "ops/token_select_cpu.h"
#include "ops/token_select_cuda.h"

namespace nlpf::ops {
namespace {

void check(const char* op, const char* full_name, const Tensor& full, const char* row_name,
           const Tensor& rows, int64_t index, bool sixteen_bit_on_cuda) {
  const bool sixteen_bit = sixteen_bit_on_cuda && full.device().type == DeviceType::CUDA &&
                           (full.dtype() == DType::BF16 || full.dtype() == DType::F16);
  if (!sixteen_bit) detail::check_dtype(op, full_name, full, DType::F32);
  NLPF_CHECK(full.rank() == 3, ErrorCode::INVALID_ARGUMENT, op, ": ", full_name, " has shape ",
             shape_string(full.shape()), ", expected [B, T, C]");
  NLPF_CHECK(index >= 0 && index < full.dim(1), ErrorCode::INVALID_ARGUMENT, op, ": index = ", index,
             " is outside the sequence of ", full_name, " ", shape_string(full.shape()));
  detail::check_dtype(op, row_name, rows, full.dtype());
  detail::check_shape(op, row_name, rows, {full.dim(0), full.dim(2)});
}

}  // namespace

void token_select_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, int64_t index) {
  constexpr const char* kOp = "token_select_forward";
  check(kOp, "x", x, "out", out, index, true);
  switch (detail::common_device(kOp, ctx, {{"out", &out}, {"x", &x}}).type) {
    case DeviceType::CPU:
      cpu::token_select_forward(out.data<float>(), x.data<float>(), index, x.dim(0), x.dim(1), x.dim(2));
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        if (x.dtype() == DType::F32) {
          cuda::token_select_forward(ctx, out.data<float>(), x.data<float>(), index, x.dim(0), x.dim(1),
                                     x.dim(2));
        } else {
          cuda::token_select_forward_16bit(ctx, static_cast<uint16_t*>(out.raw_data()),
                                           static_cast<const uint16_t*>(x.raw_data()), index, x.dim(0),
                                           x.dim(1), x.dim(2));
        }
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void token_select_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, int64_t index) {
  constexpr const char* kOp = "token_select_backward";
  check(kOp, "dx", dx, "dout", dout, index, false);
  switch (detail::common_device(kOp, ctx, {{"dx", &dx}, {"dout", &dout}}).type) {
    case DeviceType::CPU:
      cpu::token_select_backward(dx.data<float>(), dout.data<float>(), index, dx.dim(0), dx.dim(1),
                                 dx.dim(2));
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::token_select_backward(ctx, dx.data<float>(), dout.data<float>(), index, dx.dim(0), dx.dim(1),
                                    dx.dim(2));
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
