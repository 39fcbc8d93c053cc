// linear_forward / linear_backward: argument checks and device dispatch (kernels in linear_cpu.cc and
// linear_cuda.cu). Parameter gradients accumulate (+=), activation gradients overwrite (=).
#include "ops/linear.h"

#include <optional>

#include "backend/device.h"
#include "ops/linear_cpu.h"
#include "ops/linear_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {
namespace {
constexpr const char* kForward = "linear_forward";
constexpr const char* kBackward = "linear_backward";

// Checks x [..., C] and weight [OC, C] and their dtypes: both f32, both of one 16-bit dtype (mixed-precision
// training's operands), or (forward only) f32 x with a bf16 weight (the CPU's bf16 inference). The shape of y
// is x's with C replaced by OC.
Shape check_x_weight(const char* op, const Tensor& x, const Tensor& weight) {
  const bool same_16bit = dtype_is_16bit(x.dtype()) && weight.dtype() == x.dtype();
  const bool f32_x = x.dtype() == DType::F32 &&
                     (weight.dtype() == DType::F32 || (weight.dtype() == DType::BF16 && op == kForward));
  NLPF_CHECK(same_16bit || f32_x, ErrorCode::INVALID_ARGUMENT, op, ": x has dtype ", dtype_name(x.dtype()),
             " and weight ", dtype_name(weight.dtype()), ", expected both f32, both bf16 or both f16",
             op == kForward ? ", or f32 x with a bf16 weight" : "");
  detail::check_min_rank(op, "x", x, 1);
  detail::check_min_rank(op, "weight", weight, 2);
  NLPF_CHECK(weight.rank() == 2 && weight.dim(1) == x.dim(-1), ErrorCode::INVALID_ARGUMENT, op,
             ": weight has shape ", shape_string(weight.shape()), ", expected [OC, ", x.dim(-1), "] for x ",
             shape_string(x.shape()));
  Shape y_shape = x.shape();
  y_shape.back() = weight.dim(0);
  return y_shape;
}

// A 16-bit operand widened to f32 on the host (exactly): the CPU reference of the mixed-precision forms
// runs the f32 kernels on the operands' values.
Tensor widened(const Tensor& t) {
  return t.dtype() == DType::F32 ? t : t.to(DType::F32);
}

}  // namespace

void linear_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                    const Tensor& bias) {
  const Shape y_shape = check_x_weight(kForward, x, weight);
  const int64_t C = x.dim(-1), N = x.numel() / C, OC = weight.dim(0);
  detail::check_dtype(kForward, "bias", bias, DType::F32);
  detail::check_shape(kForward, "bias", bias, {OC});
  detail::check_dtype(kForward, "y", y, DType::F32);
  detail::check_shape(kForward, "y", y, y_shape);
  const Device device =
      detail::common_device(kForward, ctx, {{"y", &y}, {"x", &x}, {"weight", &weight}, {"bias", &bias}});
  switch (device.type) {
    case DeviceType::CPU:
      if (x.dtype() == DType::F32 && weight.dtype() == DType::BF16) {
        cpu::linear_forward_bf16(y.data<float>(), x.data<float>(), weight.data_u16(), bias.data<float>(), N,
                                 C, OC);
      } else {
        const Tensor x32 = widened(x), weight32 = widened(weight);
        cpu::linear_forward(y.data<float>(), x32.data<float>(), weight32.data<float>(), bias.data<float>(), N,
                            C, OC);
      }
      return;
    case DeviceType::CUDA:
      // The bf16 weight with f32 activations is the CPU's bf16 inference path; the GPU runs 16-bit
      // inference through the fused ops (bert_fused.h), with every operand in the compute dtype.
      NLPF_CHECK(weight.dtype() == x.dtype(), ErrorCode::UNSUPPORTED, kForward,
                 ": a bf16 weight with f32 x is CPU only (CUDA: linear_residual_forward in bf16)");
      if constexpr (kCudaBuilt) {
        const std::optional<DType> operands =
            dtype_is_16bit(x.dtype()) ? std::optional<DType>(x.dtype()) : std::nullopt;
        cuda::linear_forward(ctx, y.raw_data(), x.raw_data(), weight.raw_data(), bias.raw_data(), nullptr,
                             DType::F32, N, C, OC, C, operands);
        return;
      }
      detail::throw_no_cuda_kernel(kForward);
  }
}

void linear_fp8_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                        const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias) {
  constexpr const char* kOp = "linear_fp8_forward";
  const int64_t weight_scale_count = detail::check_fp8_operands(kOp, x, weight, x_scale, weight_scale);
  const int64_t C = x.dim(-1), N = x.numel() / C, OC = weight.dim(0);
  NLPF_CHECK(y.dtype() == DType::BF16 || y.dtype() == DType::F16, ErrorCode::UNSUPPORTED, kOp,
             ": y has dtype ", dtype_name(y.dtype()), ", expected bf16 or f16 (fp8 products write 16 bits)");
  Shape y_shape = x.shape();
  y_shape.back() = OC;
  detail::check_shape(kOp, "y", y, y_shape);
  detail::check_dtype(kOp, "bias", bias, y.dtype());
  detail::check_shape(kOp, "bias", bias, {OC});
  const Device device = detail::common_device(kOp, ctx,
                                              {{"y", &y},
                                               {"x", &x},
                                               {"weight", &weight},
                                               {"x_scale", &x_scale},
                                               {"weight_scale", &weight_scale},
                                               {"bias", &bias}});
  switch (device.type) {
    case DeviceType::CPU:
      cpu::linear_fp8_forward(y.data_u16(), static_cast<const uint8_t*>(x.raw_data()),
                              static_cast<const uint8_t*>(weight.raw_data()), x_scale.data<float>(),
                              weight_scale.data<float>(), weight_scale_count, bias.data_u16(), y.dtype(), N,
                              C, OC);
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::linear_fp8_forward(ctx, y.raw_data(), x.raw_data(), weight.raw_data(), x_scale.data<float>(),
                                 weight_scale.data<float>(), weight_scale_count, bias.raw_data(), y.dtype(),
                                 N, C, OC);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

std::string fp8_channel_gemm_form(ExecutionContext& ctx) {
  if constexpr (kCudaBuilt) {
    if (ctx.device().type == DeviceType::CUDA) return cuda::fp8_channel_gemm_form(ctx);
  }
  return "";
}

std::vector<GemmAutotuneRecord> gemm_autotune_records(ExecutionContext& ctx) {
  if constexpr (kCudaBuilt) {
    if (ctx.device().type == DeviceType::CUDA) return cuda::gemm_autotune_records(ctx);
  }
  return {};
}

void set_fp8_channel_gemm_form(ExecutionContext& ctx, const std::string& form) {
  constexpr const char* kOp = "set_fp8_channel_gemm_form";
  NLPF_CHECK(ctx.device().type == DeviceType::CUDA, ErrorCode::INVALID_ARGUMENT, kOp,
             ": fp8 GEMMs run on CUDA contexts only");
  if constexpr (kCudaBuilt) {
    cuda::set_fp8_channel_gemm_form(ctx, form);
    return;
  }
  detail::throw_no_cuda_kernel(kOp);
}

void linear_backward(ExecutionContext& ctx, Tensor& dx, Tensor& dweight, Tensor& dbias, const Tensor& dy,
                     const Tensor& x, const Tensor& weight, GradientOutput dx_output) {
  const bool accumulate = dx_output == GradientOutput::ACCUMULATE;
  const Shape y_shape = check_x_weight(kBackward, x, weight);
  const int64_t C = x.dim(-1), N = x.numel() / C, OC = weight.dim(0);
  detail::check_dtype(kBackward, "dy", dy, x.dtype());
  detail::check_shape(kBackward, "dy", dy, y_shape);
  detail::check_dtype(kBackward, "dx", dx, DType::F32);
  detail::check_shape(kBackward, "dx", dx, x.shape());
  detail::check_dtype(kBackward, "dweight", dweight, DType::F32);
  detail::check_shape(kBackward, "dweight", dweight, weight.shape());
  detail::check_dtype(kBackward, "dbias", dbias, DType::F32);
  detail::check_shape(kBackward, "dbias", dbias, {OC});
  const Device device = detail::common_device(
      kBackward, ctx,
      {{"dx", &dx}, {"dweight", &dweight}, {"dbias", &dbias}, {"dy", &dy}, {"x", &x}, {"weight", &weight}});
  switch (device.type) {
    case DeviceType::CPU: {
      const Tensor dy32 = widened(dy), x32 = widened(x), weight32 = widened(weight);
      cpu::linear_backward(dx.data<float>(), dweight.data<float>(), dbias.data<float>(), dy32.data<float>(),
                           x32.data<float>(), weight32.data<float>(), N, C, OC, accumulate);
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::linear_backward(ctx, dx.data<float>(), dweight.data<float>(), dbias.data<float>(),
                              dy.raw_data(), x.raw_data(), weight.raw_data(), x.dtype(), N, C, OC,
                              accumulate);
        return;
      }
      detail::throw_no_cuda_kernel(kBackward);
  }
}

}  // namespace nlpf::ops
