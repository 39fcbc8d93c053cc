// Argument checks and device dispatch helpers of src/ops (see op_util.h).
#include "ops/op_util.h"

#include <string>

namespace nlpf::ops::detail {

void check_dtype(const char* op, const char* name, const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return;
  const ErrorCode code = dtype_is_float(t.dtype()) && dtype_is_float(dtype) ? ErrorCode::UNSUPPORTED
                                                                            : ErrorCode::INVALID_ARGUMENT;
  NLPF_THROW(code, op, ": ", name, " ", shape_string(t.shape()), " has dtype ", dtype_name(t.dtype()),
             ", expected ", dtype_name(dtype));
}

void check_shape(const char* op, const char* name, const Tensor& t, const Shape& shape) {
  NLPF_CHECK(t.shape() == shape, ErrorCode::INVALID_ARGUMENT, op, ": ", name, " has shape ",
             shape_string(t.shape()), ", expected ", shape_string(shape));
}

void check_fp8_operands(const char* op, const Tensor& x, const Tensor& weight, const Tensor& x_scale,
                        const Tensor& weight_scale) {
  check_dtype(op, "x", x, DType::F8E4M3);
  check_dtype(op, "weight", weight, DType::F8E4M3);
  check_dtype(op, "x_scale", x_scale, DType::F32);
  check_shape(op, "x_scale", x_scale, {1});
  check_dtype(op, "weight_scale", weight_scale, DType::F32);
  check_shape(op, "weight_scale", weight_scale, {1});
}

void check_min_rank(const char* op, const char* name, const Tensor& t, int min_rank) {
  NLPF_CHECK(t.rank() >= min_rank, ErrorCode::INVALID_ARGUMENT, op, ": ", name, " has shape ",
             shape_string(t.shape()), ", expected rank >= ", min_rank);
  for (int64_t d : t.shape()) {
    NLPF_CHECK(d > 0, ErrorCode::INVALID_ARGUMENT, op, ": ", name, " has shape ", shape_string(t.shape()),
               ", expected positive dimensions");
  }
}

Device common_device(const char* op, const ExecutionContext& ctx,
                     std::initializer_list<NamedTensor> tensors) {
  const NamedTensor& first = *tensors.begin();
  const Device device = first.tensor->device();
  for (const NamedTensor& t : tensors) {
    NLPF_CHECK(t.tensor->device() == device, ErrorCode::INVALID_ARGUMENT, op, ": ", t.name,
               " is on another device than ", first.name);
  }
  NLPF_CHECK(device == ctx.device(), ErrorCode::INVALID_ARGUMENT, op, ": ", first.name, " is on ",
             device.type == DeviceType::CPU ? "the CPU" : "cuda:" + std::to_string(device.index),
             " but the execution context is on ",
             ctx.device().type == DeviceType::CPU ? "the CPU" : "cuda:" + std::to_string(ctx.device().index));
  return device;
}

void throw_no_cuda_kernel(const char* op) {
  NLPF_THROW(ErrorCode::UNSUPPORTED, op, ": no CUDA kernel yet (CPU tensors only)");
}

}  // namespace nlpf::ops::detail

namespace nlpf::ops::detail {

Device check_elementwise(const char* op, const ExecutionContext& ctx,
                         std::initializer_list<NamedTensor> tensors) {
  const Shape& shape = tensors.begin()->tensor->shape();
  for (const NamedTensor& t : tensors) {
    check_dtype(op, t.name, *t.tensor, DType::F32);
    check_shape(op, t.name, *t.tensor, shape);
  }
  return common_device(op, ctx, tensors);
}

}  // namespace nlpf::ops::detail
