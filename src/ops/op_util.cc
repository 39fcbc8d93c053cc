// Argument checks and device dispatch helpers of src/ops (see op_util.h).
#include "ops/op_util.h"

#include <cstring>
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

int64_t check_fp8_operands(const char* op, const Tensor& x, const Tensor& weight, const Tensor& x_scale,
                           const Tensor& weight_scale) {
  check_dtype(op, "x", x, DType::F8E4M3);
  check_dtype(op, "weight", weight, DType::F8E4M3);
  check_min_rank(op, "x", x, 1);
  NLPF_CHECK(weight.rank() == 2 && weight.dim(1) == x.dim(-1), ErrorCode::INVALID_ARGUMENT, op,
             ": weight has shape ", shape_string(weight.shape()), ", expected [OC, ", x.dim(-1), "] for x ",
             shape_string(x.shape()));
  check_dtype(op, "x_scale", x_scale, DType::F32);
  check_dtype(op, "weight_scale", weight_scale, DType::F32);
  const int64_t OC = weight.dim(0), N = x.numel() / x.dim(-1);
  NLPF_CHECK(weight_scale.rank() == 1 && (weight_scale.dim(0) == 1 || weight_scale.dim(0) == OC),
             ErrorCode::INVALID_ARGUMENT, op, ": weight_scale has shape ", shape_string(weight_scale.shape()),
             ", expected [1] (per tensor) or [", OC, "] (per output channel)");
  if (weight_scale.dim(0) == 1) {
    check_shape(op, "x_scale", x_scale, {1});
    return 1;
  }
  NLPF_CHECK(x_scale.rank() == 1 && x_scale.dim(0) >= N, ErrorCode::INVALID_ARGUMENT, op,
             ": x_scale has shape ", shape_string(x_scale.shape()), ", expected [R >= ", N,
             "] (x's scale per row, which per-channel weight scales need)");
  return OC;
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

void check_16bit(const char* op, const char* name, const Tensor& t, const Shape& shape) {
  NLPF_CHECK(dtype_is_16bit(t.dtype()), ErrorCode::INVALID_ARGUMENT, op, ": ", name, " has dtype ",
             dtype_name(t.dtype()), ", expected bf16 or f16");
  check_shape(op, name, t, shape);
}

void check_f32_or_16bit(const char* op, const char* name, const Tensor& t, const Shape& shape) {
  if (t.dtype() == DType::F32) {
    check_shape(op, name, t, shape);
  } else {
    check_16bit(op, name, t, shape);
  }
}

Device check_elementwise_out(const char* op, const ExecutionContext& ctx,
                             std::initializer_list<NamedTensor> inputs, NamedTensor out) {
  const Device device = check_elementwise(op, ctx, inputs);
  const NamedTensor& first = *inputs.begin();
  check_f32_or_16bit(op, out.name, *out.tensor, first.tensor->shape());
  common_device(op, ctx, {first, out});
  return device;
}

void round_into(Tensor& out, const Tensor& f32) {
  const Tensor rounded = f32.to(out.dtype());
  std::memcpy(out.raw_data(), rounded.raw_data(), out.nbytes());
}

}  // namespace nlpf::ops::detail
