// The fused BERT inference ops (bert_fused.h): argument checks, the CPU chains of reference ops, and the
// CUDA dispatch.
#include "ops/bert_fused.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "backend/device.h"
#include "ops/add.h"
#include "ops/attention.h"
#include "ops/attention_cuda.h"
#include "ops/attention_mma_cuda.h"
#include "ops/classifier_head_cuda.h"
#include "ops/embeddings.h"
#include "ops/gelu.h"
#include "ops/gelu_cuda.h"
#include "ops/layer_norm.h"
#include "ops/layer_norm_cuda.h"
#include "ops/linear.h"
#include "ops/linear_cuda.h"
#include "ops/op_util.h"
#include "ops/padded_rows.h"
#include "ops/quantize.h"
#include "ops/tanh.h"
#include "ops/token_select.h"

namespace nlpf::ops {
namespace {

// The compute dtype of an op on `device`: f32 on the CPU; f32, bf16 or f16 on CUDA.
void check_compute_dtype(const char* op, const char* name, const Tensor& t, Device device) {
  if (device.type == DeviceType::CPU) {
    detail::check_dtype(op, name, t, DType::F32);
    return;
  }
  NLPF_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16 || t.dtype() == DType::F16,
             ErrorCode::UNSUPPORTED, op, ": ", name, " has dtype ", dtype_name(t.dtype()),
             ", expected f32, bf16 or f16");
}

// Every tensor of the list has the dtype of the first.
void check_same_dtype(const char* op, std::initializer_list<detail::NamedTensor> tensors) {
  const detail::NamedTensor& first = *tensors.begin();
  for (const detail::NamedTensor& t : tensors) {
    NLPF_CHECK(t.tensor->dtype() == first.tensor->dtype(), ErrorCode::INVALID_ARGUMENT, op, ": ", t.name,
               " has dtype ", dtype_name(t.tensor->dtype()), " but ", first.name, " has ",
               dtype_name(first.tensor->dtype()));
  }
}

// Checks x [..., C] and weight [OC, C]; returns y's shape.
Shape linear_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_min_rank(op, "x", x, 1);
  NLPF_CHECK(weight.rank() == 2 && weight.dim(1) == x.dim(-1), ErrorCode::INVALID_ARGUMENT, op,
             ": weight has shape ", shape_string(weight.shape()), ", expected [OC, ", x.dim(-1), "]");
  detail::check_shape(op, "bias", bias, {weight.dim(0)});
  Shape shape = x.shape();
  shape.back() = weight.dim(0);
  return shape;
}

// The checks of a linear op y [..., OC] = x [..., C] W^T + bias: one device (ctx's), shapes, one compute
// dtype. Returns the device.
Device check_linear(const char* op, const ExecutionContext& ctx, const Tensor& y, const Tensor& x,
                    const Tensor& weight, const Tensor& bias) {
  const Device device =
      detail::common_device(op, ctx, {{"y", &y}, {"x", &x}, {"weight", &weight}, {"bias", &bias}});
  detail::check_shape(op, "y", y, linear_shape(op, x, weight, bias));
  check_compute_dtype(op, "x", x, device);
  check_same_dtype(op, {{"x", &x}, {"weight", &weight}, {"bias", &bias}, {"y", &y}});
  return device;
}

// The checks of linear_residual_forward's operands (check_linear's, and residual, when given, of y's device,
// shape and dtype). Returns the device.
Device check_linear_residual(const char* op, const ExecutionContext& ctx, const Tensor& y, const Tensor& x,
                             const Tensor& weight, const Tensor& bias, const Tensor* residual) {
  const Device device = check_linear(op, ctx, y, x, weight, bias);
  if (residual) {
    detail::common_device(op, ctx, {{"y", &y}, {"residual", residual}});
    detail::check_shape(op, "residual", *residual, y.shape());
    check_same_dtype(op, {{"y", &y}, {"residual", residual}});
  }
  return device;
}

// The checks of a LayerNorm's parameters: weight and bias f32 [C] (named as the op names them).
void check_layer_norm_parameters(const char* op, const Tensor& weight, const Tensor& bias, int64_t C,
                                 const char* weight_name = "weight", const char* bias_name = "bias") {
  detail::check_dtype(op, weight_name, weight, DType::F32);
  detail::check_dtype(op, bias_name, bias, DType::F32);
  detail::check_shape(op, weight_name, weight, {C});
  detail::check_shape(op, bias_name, bias, {C});
}

// A host copy of a contiguous slice: columns [begin, begin + width) of every row of a [rows, stride] f32
// array.
void copy_columns(float* out, const float* in, int64_t rows, int64_t stride, int64_t begin, int64_t width) {
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out + r * width, in + r * stride + begin, width * sizeof(float));
}

// The checks of an E4M3 copy of `out`: codes F8E4M3 of out's shape, scale [1] f32, both on out's device.
void check_e4m3_copy(const char* op, const ExecutionContext& ctx, const Tensor& out, const E4m3Copy& e4m3) {
  NLPF_CHECK(e4m3.codes != nullptr && e4m3.scale != nullptr, ErrorCode::INVALID_ARGUMENT, op,
             ": an E4M3 copy needs both codes and scale");
  detail::common_device(op, ctx, {{"out", &out}, {"codes", e4m3.codes}, {"scale", e4m3.scale}});
  detail::check_dtype(op, "codes", *e4m3.codes, DType::F8E4M3);
  detail::check_shape(op, "codes", *e4m3.codes, out.shape());
  detail::check_dtype(op, "scale", *e4m3.scale, DType::F32);
  detail::check_shape(op, "scale", *e4m3.scale, {1});
}

// The checks of a padding mask: attention_mask [B,T] i32 for out [B,T,C], on out's device. Returns the
// mask's CUDA form (ops/padded_rows.h), or none without a mask.
cuda::PaddedRows check_padding_mask(const char* op, const ExecutionContext& ctx, const Tensor& out,
                                    const Tensor* attention_mask) {
  if (attention_mask == nullptr) return {};
  detail::common_device(op, ctx, {{"out", &out}, {"attention_mask", attention_mask}});
  detail::check_dtype(op, "attention_mask", *attention_mask, DType::I32);
  NLPF_CHECK(out.rank() == 3, ErrorCode::INVALID_ARGUMENT, op, ": out has shape ", shape_string(out.shape()),
             ", expected [B, T, C] with an attention_mask");
  detail::check_shape(op, "attention_mask", *attention_mask, {out.dim(0), out.dim(1)});
  return {attention_mask->data<int32_t>(), out.dim(1)};
}

// The CPU form of ops/padded_rows.h: rows of out [B,T,C] f32 whose token is padding in a
// sequence whose token 0 is real become 0.
void zero_padded_rows(Tensor& out, const Tensor& attention_mask) {
  const int64_t B = out.dim(0), T = out.dim(1), C = out.dim(2);
  const int32_t* mask = attention_mask.data<int32_t>();
  float* y = out.data<float>();
  for (int64_t b = 0; b < B; ++b) {
    if (mask[b * T] == 0) continue;
    for (int64_t t = 1; t < T; ++t) {
      if (mask[b * T + t] == 0) std::fill_n(y + (b * T + t) * C, C, 0.0f);
    }
  }
}

// The checks of an fp8 linear: x [..., C] and weight [OC, C] F8E4M3, f32 scales per tensor or per output
// channel (detail::check_fp8_operands), bias [OC] and y [..., OC] of one 16-bit dtype (or y F8E4M3 when
// y_codes), one CUDA device (ctx's). Returns the number of weight scales (1 or OC).
int64_t check_linear_fp8(const char* op, const ExecutionContext& ctx, const Tensor& y, const Tensor& x,
                         const Tensor& weight, const Tensor& x_scale, const Tensor& weight_scale,
                         const Tensor& bias, bool y_codes) {
  const Device device = detail::common_device(op, ctx,
                                              {{"y", &y},
                                               {"x", &x},
                                               {"weight", &weight},
                                               {"x_scale", &x_scale},
                                               {"weight_scale", &weight_scale},
                                               {"bias", &bias}});
  NLPF_CHECK(device.type == DeviceType::CUDA, ErrorCode::UNSUPPORTED, op,
             ": the fp8 linears run on CUDA only (the CPU engine is fp32)");
  const int64_t weight_scale_count = detail::check_fp8_operands(op, x, weight, x_scale, weight_scale);
  NLPF_CHECK(bias.dtype() == DType::BF16 || bias.dtype() == DType::F16, ErrorCode::UNSUPPORTED, op,
             ": bias has dtype ", dtype_name(bias.dtype()), ", expected bf16 or f16");
  if (y_codes) {
    detail::check_dtype(op, "y", y, DType::F8E4M3);
    detail::check_dtype(op, "bias", bias, DType::BF16);
  } else {
    check_same_dtype(op, {{"bias", &bias}, {"y", &y}});
  }
  detail::check_shape(op, "y", y, linear_shape(op, x, weight, bias));
  return weight_scale_count;
}

// The checks both attention ops share: out, qkv [B,T,3C] and attention_mask [B,T] i32 on one device, NH heads
// dividing C, out [B,T,C] (or [B,1,C] with first_query_only), qkv of a compute dtype and out of qkv's.
// Returns the device.
Device check_attention(const char* op, ExecutionContext& ctx, const Tensor& out, const Tensor& qkv,
                       const Tensor& attention_mask, int64_t NH, bool first_query_only) {
  const Device device =
      detail::common_device(op, ctx, {{"out", &out}, {"qkv", &qkv}, {"attention_mask", &attention_mask}});
  NLPF_CHECK(qkv.rank() == 3 && qkv.dim(2) % 3 == 0, ErrorCode::INVALID_ARGUMENT, op, ": qkv has shape ",
             shape_string(qkv.shape()), ", expected [B, T, 3C]");
  const int64_t B = qkv.dim(0), T = qkv.dim(1), C = qkv.dim(2) / 3;
  NLPF_CHECK(NH > 0 && C % NH == 0, ErrorCode::INVALID_ARGUMENT, op, ": C = ", C,
             " is not a multiple of NH = ", NH);
  detail::check_shape(op, "out", out, {B, first_query_only ? 1 : T, C});
  detail::check_dtype(op, "attention_mask", attention_mask, DType::I32);
  detail::check_shape(op, "attention_mask", attention_mask, {B, T});
  check_compute_dtype(op, "qkv", qkv, device);
  check_same_dtype(op, {{"qkv", &qkv}, {"out", &out}});
  return device;
}

}  // namespace

void embeddings_layer_norm_forward(ExecutionContext& ctx, Tensor& out, const Tensor& input_ids,
                                   const Tensor& token_type_ids, const Tensor& word, const Tensor& position,
                                   const Tensor& token_type, const Tensor& weight, const Tensor& bias,
                                   double eps, const E4m3Copy* e4m3, const Tensor* attention_mask) {
  constexpr const char* kOp = "embeddings_layer_norm_forward";
  const Device device = detail::common_device(kOp, ctx,
                                              {{"out", &out},
                                               {"input_ids", &input_ids},
                                               {"token_type_ids", &token_type_ids},
                                               {"word", &word},
                                               {"position", &position},
                                               {"token_type", &token_type},
                                               {"weight", &weight},
                                               {"bias", &bias}});
  detail::check_dtype(kOp, "input_ids", input_ids, DType::I32);
  detail::check_dtype(kOp, "token_type_ids", token_type_ids, DType::I32);
  NLPF_CHECK(input_ids.rank() == 2, ErrorCode::INVALID_ARGUMENT, kOp, ": input_ids has shape ",
             shape_string(input_ids.shape()), ", expected [B, T]");
  const int64_t B = input_ids.dim(0), T = input_ids.dim(1), C = word.dim(-1);
  detail::check_shape(kOp, "token_type_ids", token_type_ids, {B, T});
  check_compute_dtype(kOp, "word", word, device);
  check_same_dtype(kOp,
                   {{"word", &word}, {"position", &position}, {"token_type", &token_type}, {"out", &out}});
  detail::check_shape(kOp, "out", out, {B, T, C});
  NLPF_CHECK(position.rank() == 2 && position.dim(0) >= T && position.dim(1) == C,
             ErrorCode::INVALID_ARGUMENT, kOp, ": position has shape ", shape_string(position.shape()),
             ", expected [P >= ", T, ", ", C, "]");
  check_layer_norm_parameters(kOp, weight, bias, C);
  if (e4m3) check_e4m3_copy(kOp, ctx, out, *e4m3);
  const cuda::PaddedRows padded = check_padding_mask(kOp, ctx, out, attention_mask);
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor sum = Tensor::empty(DType::F32, {B, T, C}), mean = Tensor::empty(DType::F32, {B * T}),
             rstd = Tensor::empty(DType::F32, {B * T});
      embeddings_forward(ctx, sum, input_ids, token_type_ids, word, position, token_type);
      layer_norm_forward(ctx, out, mean, rstd, sum, weight, bias, eps);
      if (attention_mask) zero_padded_rows(out, *attention_mask);
      if (e4m3) quantize_e4m3_forward(ctx, *e4m3->codes, out, *e4m3->scale);
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::embeddings_layer_norm_forward(
            ctx, out.raw_data(), input_ids.data<int32_t>(), token_type_ids.data<int32_t>(), word.raw_data(),
            position.raw_data(), token_type.raw_data(), weight.data<float>(), bias.data<float>(), out.dtype(),
            B, T, C, eps, e4m3 ? static_cast<uint8_t*>(e4m3->codes->raw_data()) : nullptr,
            e4m3 ? e4m3->scale->data<float>() : nullptr, padded);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void linear_residual_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor* residual) {
  constexpr const char* kOp = "linear_residual_forward";
  const Device device = check_linear_residual(kOp, ctx, y, x, weight, bias, residual);
  const Shape& y_shape = y.shape();
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor product = Tensor::empty(DType::F32, y_shape);
      linear_forward(ctx, product, x, weight, bias);
      if (residual) {
        add_forward(ctx, y, product, *residual);
      } else {
        std::memcpy(y.raw_data(), product.raw_data(), product.nbytes());
      }
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        const int64_t C = x.dim(-1), OC = weight.dim(0);
        cuda::linear_forward(ctx, y.raw_data(), x.raw_data(), weight.raw_data(), bias.raw_data(),
                             residual ? residual->raw_data() : nullptr, y.dtype(), x.numel() / C, C, OC, C);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void linear_gelu_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                         const Tensor& bias, const Tensor* attention_mask, F32Gelu f32_gelu) {
  const cuda::PaddedRows padded = check_padding_mask("linear_gelu_forward", ctx, y, attention_mask);
  NLPF_CHECK(
      f32_gelu == F32Gelu::EXACT_PASS || ctx.math_mode() == MathMode::TF32, ErrorCode::INVALID_ARGUMENT,
      "linear_gelu_forward: the tanh GELU epilogue for f32 needs TF32 math (fp32 keeps the exact GELU)");
  if constexpr (kCudaBuilt) {
    if (y.device().type == DeviceType::CUDA &&
        (y.dtype() != DType::F32 || f32_gelu == F32Gelu::TANH_EPILOGUE)) {
      // 16-bit (and tf32 when asked): GELU in the GEMM's epilogue (tanh form; linear_cuda.h says why that is
      // close enough here), saving a read and a write of the [N, I] activations.
      check_linear("linear_gelu_forward", ctx, y, x, weight, bias);
      const int64_t C = x.dim(-1);
      cuda::linear_gelu_tanh_forward(ctx, y.raw_data(), x.raw_data(), weight.raw_data(), bias.raw_data(),
                                     y.dtype(), x.numel() / C, C, weight.dim(0));
      return;
    }
  }
  switch (y.device().type) {
    case DeviceType::CPU:
      linear_residual_forward(ctx, y, x, weight, bias, nullptr);
      gelu_forward(ctx, y, y);
      if (attention_mask) zero_padded_rows(y, *attention_mask);
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        // f32: the GEMM without bias, whose rows from x's zero rows are exact zeros, then bias + GELU over
        // the other rows (with or without a mask, the same GEMM, so zeroing moves no bit of a real row).
        check_linear("linear_gelu_forward", ctx, y, x, weight, bias);
        const int64_t C = x.dim(-1), OC = weight.dim(0), N = x.numel() / C;
        cuda::linear_forward(ctx, y.raw_data(), x.raw_data(), weight.raw_data(), nullptr, nullptr, y.dtype(),
                             N, C, OC, C);
        cuda::bias_gelu_forward(ctx, y.data<float>(), bias.data<float>(), N, OC, padded);
        return;
      }
      detail::throw_no_cuda_kernel("linear_gelu_forward");
  }
}

void layer_norm_inference_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, const Tensor& weight,
                                  const Tensor& bias, double eps, const E4m3Copy* e4m3,
                                  const Tensor* attention_mask) {
  constexpr const char* kOp = "layer_norm_inference_forward";
  const Device device =
      detail::common_device(kOp, ctx, {{"out", &out}, {"x", &x}, {"weight", &weight}, {"bias", &bias}});
  detail::check_min_rank(kOp, "x", x, 1);
  const int64_t C = x.dim(-1), N = x.numel() / C;
  detail::check_shape(kOp, "out", out, x.shape());
  check_compute_dtype(kOp, "x", x, device);
  check_same_dtype(kOp, {{"x", &x}, {"out", &out}});
  check_layer_norm_parameters(kOp, weight, bias, C);
  if (e4m3) check_e4m3_copy(kOp, ctx, out, *e4m3);
  const cuda::PaddedRows padded = check_padding_mask(kOp, ctx, out, attention_mask);
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor input = x.clone(), mean = Tensor::empty(DType::F32, {N}), rstd = Tensor::empty(DType::F32, {N});
      layer_norm_forward(ctx, out, mean, rstd, input, weight, bias, eps);
      if (attention_mask) zero_padded_rows(out, *attention_mask);
      if (e4m3) quantize_e4m3_forward(ctx, *e4m3->codes, out, *e4m3->scale);
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::layer_norm_forward(ctx, out.raw_data(), x.raw_data(), weight.data<float>(), bias.data<float>(),
                                 x.dtype(), N, C, eps,
                                 e4m3 ? static_cast<uint8_t*>(e4m3->codes->raw_data()) : nullptr,
                                 e4m3 ? e4m3->scale->data<float>() : nullptr, padded);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void linear_residual_layer_norm_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x,
                                        const Tensor& weight, const Tensor& bias, const Tensor& residual,
                                        const Tensor& ln_weight, const Tensor& ln_bias, double eps,
                                        const Tensor* attention_mask, F32Residual f32_residual) {
  constexpr const char* kOp = "linear_residual_layer_norm_forward";
  if (!kCudaBuilt || y.device().type != DeviceType::CUDA || y.dtype() != DType::F32) {
    linear_residual_forward(ctx, y, x, weight, bias, &residual);
    layer_norm_inference_forward(ctx, y, y, ln_weight, ln_bias, eps, nullptr, attention_mask);
    return;
  }
  if constexpr (kCudaBuilt) {
    check_linear_residual(kOp, ctx, y, x, weight, bias, &residual);
    detail::common_device(kOp, ctx, {{"y", &y}, {"ln_weight", &ln_weight}, {"ln_bias", &ln_bias}});
    const int64_t C = x.dim(-1), OC = weight.dim(0), N = x.numel() / C;
    check_layer_norm_parameters(kOp, ln_weight, ln_bias, OC, "ln_weight", "ln_bias");
    cuda::PaddedRows padded = check_padding_mask(kOp, ctx, y, attention_mask);
    padded.already_zero = true;
    const bool in_layer_norm = f32_residual == F32Residual::LAYER_NORM;
    if (in_layer_norm) {
      const auto* y_begin = static_cast<const std::byte*>(y.raw_data());
      const auto* r_begin = static_cast<const std::byte*>(residual.raw_data());
      NLPF_CHECK(r_begin + residual.nbytes() <= y_begin || y_begin + y.nbytes() <= r_begin,
                 ErrorCode::INVALID_ARGUMENT, kOp,
                 ": the residual added in the LayerNorm overlaps y, which the GEMM writes first");
    }
    cuda::linear_forward(ctx, y.raw_data(), x.raw_data(), weight.raw_data(), nullptr,
                         in_layer_norm ? nullptr : residual.raw_data(), DType::F32, N, C, OC, C);
    cuda::layer_norm_forward(ctx, y.raw_data(), y.raw_data(), ln_weight.data<float>(), ln_bias.data<float>(),
                             DType::F32, N, OC, eps, nullptr, nullptr, padded, bias.data<float>(),
                             in_layer_norm ? residual.data<float>() : nullptr);
  }
}

void linear_fp8_residual_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                                 const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias,
                                 const Tensor* residual) {
  constexpr const char* kOp = "linear_fp8_residual_forward";
  const int64_t scales =
      check_linear_fp8(kOp, ctx, y, x, weight, x_scale, weight_scale, bias, /*y_codes=*/false);
  if (residual) {
    detail::common_device(kOp, ctx, {{"y", &y}, {"residual", residual}});
    detail::check_shape(kOp, "residual", *residual, y.shape());
    check_same_dtype(kOp, {{"y", &y}, {"residual", residual}});
  }
  if constexpr (kCudaBuilt) {
    const int64_t C = x.dim(-1), OC = weight.dim(0);
    cuda::linear_fp8_residual_forward(
        ctx, y.raw_data(), x.raw_data(), weight.raw_data(), x_scale.data<float>(), weight_scale.data<float>(),
        scales, bias.raw_data(), residual ? residual->raw_data() : nullptr, y.dtype(), x.numel() / C, C, OC);
    return;
  }
  detail::throw_no_cuda_kernel(kOp);
}

void linear_fp8_gelu_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                             const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias,
                             const Tensor* y_scale_inverse) {
  constexpr const char* kOp = "linear_fp8_gelu_forward";
  const bool codes = y.dtype() == DType::F8E4M3;
  const int64_t scales = check_linear_fp8(kOp, ctx, y, x, weight, x_scale, weight_scale, bias, codes);
  NLPF_CHECK(codes == (y_scale_inverse != nullptr), ErrorCode::INVALID_ARGUMENT, kOp,
             ": y_scale_inverse is given for an F8E4M3 y and only for it");
  if (codes) {
    detail::common_device(kOp, ctx, {{"y", &y}, {"y_scale_inverse", y_scale_inverse}});
    detail::check_dtype(kOp, "y_scale_inverse", *y_scale_inverse, DType::F32);
    detail::check_shape(kOp, "y_scale_inverse", *y_scale_inverse, {1});
  }
  if constexpr (kCudaBuilt) {
    const int64_t C = x.dim(-1), OC = weight.dim(0), N = x.numel() / C;
    if (codes) {
      cuda::linear_fp8_gelu_e4m3_forward(ctx, static_cast<uint8_t*>(y.raw_data()), x.raw_data(),
                                         weight.raw_data(), x_scale.data<float>(), weight_scale.data<float>(),
                                         scales, bias.raw_data(), y_scale_inverse->data<float>(), N, C, OC);
    } else {
      cuda::linear_fp8_gelu_forward(ctx, y.raw_data(), x.raw_data(), weight.raw_data(), x_scale.data<float>(),
                                    weight_scale.data<float>(), scales, bias.raw_data(), y.dtype(), N, C, OC);
    }
    return;
  }
  detail::throw_no_cuda_kernel(kOp);
}

bool linear_fp8_gelu_e4m3_supported(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                                    const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias,
                                    const Tensor& y_scale_inverse) {
  constexpr const char* kOp = "linear_fp8_gelu_e4m3_supported";
  const int64_t scales =
      check_linear_fp8(kOp, ctx, y, x, weight, x_scale, weight_scale, bias, /*y_codes=*/true);
  if constexpr (kCudaBuilt) {
    const int64_t C = x.dim(-1), OC = weight.dim(0);
    return cuda::linear_fp8_gelu_e4m3_available(ctx, static_cast<uint8_t*>(y.raw_data()), x.raw_data(),
                                                weight.raw_data(), x_scale.data<float>(),
                                                weight_scale.data<float>(), scales, bias.raw_data(),
                                                y_scale_inverse.data<float>(), x.numel() / C, C, OC);
  }
  return false;
}

void fused_attention_forward(ExecutionContext& ctx, Tensor& out, const Tensor& qkv,
                             const Tensor& attention_mask, int64_t NH, const E4m3Copy* e4m3,
                             bool tf32_tensor_cores) {
  constexpr const char* kOp = "fused_attention_forward";
  NLPF_CHECK(!tf32_tensor_cores || ctx.math_mode() == MathMode::TF32, ErrorCode::INVALID_ARGUMENT, kOp,
             ": the tf32 tensor-core attention needs TF32 math (fp32 keeps IEEE products)");
  const Device device = check_attention(kOp, ctx, out, qkv, attention_mask, NH, false);
  const int64_t B = qkv.dim(0), T = qkv.dim(1), C = qkv.dim(2) / 3;
  if (e4m3) check_e4m3_copy(kOp, ctx, out, *e4m3);
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor q = Tensor::empty(DType::F32, {B, T, C}), k = Tensor::empty(DType::F32, {B, T, C}),
             v = Tensor::empty(DType::F32, {B, T, C}), probs = Tensor::empty(DType::F32, {B, NH, T, T});
      copy_columns(q.data<float>(), qkv.data<float>(), B * T, 3 * C, 0, C);
      copy_columns(k.data<float>(), qkv.data<float>(), B * T, 3 * C, C, C);
      copy_columns(v.data<float>(), qkv.data<float>(), B * T, 3 * C, 2 * C, C);
      attention_forward(ctx, out, probs, q, k, v, attention_mask, NH);
      const int32_t* mask = attention_mask.data<int32_t>();
      for (int64_t b = 0; b < B; ++b) {
        if (std::all_of(mask + b * T, mask + (b + 1) * T, [](int32_t m) { return m == 0; })) continue;
        for (int64_t t = 0; t < T; ++t) {
          if (mask[b * T + t] == 0) std::fill_n(out.data<float>() + (b * T + t) * C, C, 0.0f);
        }
      }
      if (e4m3) quantize_e4m3_forward(ctx, *e4m3->codes, out, *e4m3->scale);
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        // 16-bit at BERT's head sizes: the tensor-core kernel (writing the E4M3 copy itself); f32 and other
        // head sizes: the CUDA-core one, then a quantisation pass for an E4M3 copy.
        if (tf32_tensor_cores && qkv.dtype() == DType::F32 &&
            cuda::fused_attention_tf32_supports(C / NH, T)) {
          cuda::fused_attention_forward_tf32(ctx, out.data<float>(), qkv.data<float>(),
                                             attention_mask.data<int32_t>(), B, T, NH, C / NH);
          if (e4m3) quantize_e4m3_forward(ctx, *e4m3->codes, out, *e4m3->scale);
        } else if (cuda::fused_attention_mma_supports(qkv.dtype(), C / NH, T)) {
          cuda::fused_attention_forward_mma(ctx, out.raw_data(), qkv.raw_data(),
                                            attention_mask.data<int32_t>(), qkv.dtype(), B, T, NH, C / NH,
                                            e4m3 ? static_cast<uint8_t*>(e4m3->codes->raw_data()) : nullptr,
                                            e4m3 ? e4m3->scale->data<float>() : nullptr);
        } else {
          cuda::fused_attention_forward(ctx, out.raw_data(), qkv.raw_data(), attention_mask.data<int32_t>(),
                                        qkv.dtype(), B, T, NH, C / NH);
          if (e4m3) quantize_e4m3_forward(ctx, *e4m3->codes, out, *e4m3->scale);
        }
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void first_query_attention_forward(ExecutionContext& ctx, Tensor& out, const Tensor& qkv,
                                   const Tensor& attention_mask, int64_t NH) {
  constexpr const char* kOp = "first_query_attention_forward";
  const Device device = check_attention(kOp, ctx, out, qkv, attention_mask, NH, true);
  const int64_t B = qkv.dim(0), T = qkv.dim(1), C = qkv.dim(2) / 3;
  NLPF_CHECK(T > 0, ErrorCode::INVALID_ARGUMENT, kOp, ": qkv has no token");
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor all = Tensor::empty(DType::F32, {B, T, C});
      fused_attention_forward(ctx, all, qkv, attention_mask, NH);
      Tensor rows = out.view({B, C});
      token_select_forward(ctx, rows, all, 0);
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::first_query_attention_forward(ctx, out.raw_data(), qkv.raw_data(),
                                            attention_mask.data<int32_t>(), qkv.dtype(), B, T, NH, C / NH);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void classifier_head_forward(ExecutionContext& ctx, Tensor& logits, Tensor& predictions, Tensor* correct,
                             Tensor& pooler_scratch, const Tensor& hidden, const Tensor& pooler_weight,
                             const Tensor& pooler_bias, const Tensor& classifier_weight,
                             const Tensor& classifier_bias, const Tensor* labels) {
  constexpr const char* kOp = "classifier_head_forward";
  const Device device = detail::common_device(kOp, ctx,
                                              {{"logits", &logits},
                                               {"predictions", &predictions},
                                               {"pooler_scratch", &pooler_scratch},
                                               {"hidden", &hidden},
                                               {"pooler_weight", &pooler_weight},
                                               {"pooler_bias", &pooler_bias},
                                               {"classifier_weight", &classifier_weight},
                                               {"classifier_bias", &classifier_bias}});
  NLPF_CHECK(hidden.rank() == 3, ErrorCode::INVALID_ARGUMENT, kOp, ": hidden has shape ",
             shape_string(hidden.shape()), ", expected [B, T, C]");
  const int64_t B = hidden.dim(0), T = hidden.dim(1), C = hidden.dim(2), NL = classifier_weight.dim(0);
  check_compute_dtype(kOp, "hidden", hidden, device);
  check_same_dtype(kOp, {{"hidden", &hidden},
                         {"pooler_weight", &pooler_weight},
                         {"pooler_bias", &pooler_bias},
                         {"pooler_scratch", &pooler_scratch},
                         {"classifier_weight", &classifier_weight}});
  detail::check_shape(kOp, "pooler_weight", pooler_weight, {C, C});
  detail::check_shape(kOp, "pooler_bias", pooler_bias, {C});
  detail::check_shape(kOp, "pooler_scratch", pooler_scratch, {B, C});
  detail::check_shape(kOp, "classifier_weight", classifier_weight, {NL, C});
  detail::check_dtype(kOp, "classifier_bias", classifier_bias, DType::F32);
  detail::check_shape(kOp, "classifier_bias", classifier_bias, {NL});
  detail::check_dtype(kOp, "logits", logits, DType::F32);
  detail::check_shape(kOp, "logits", logits, {B, NL});
  detail::check_dtype(kOp, "predictions", predictions, DType::I32);
  detail::check_shape(kOp, "predictions", predictions, {B});
  NLPF_CHECK((correct == nullptr) == (labels == nullptr), ErrorCode::INVALID_ARGUMENT, kOp,
             ": correct and labels are given together or not at all");
  if (labels) {
    detail::common_device(kOp, ctx, {{"logits", &logits}, {"labels", labels}, {"correct", correct}});
    detail::check_dtype(kOp, "labels", *labels, DType::I32);
    detail::check_shape(kOp, "labels", *labels, {B});
    detail::check_dtype(kOp, "correct", *correct, DType::I32);
    detail::check_shape(kOp, "correct", *correct, {1});
  }
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor cls = Tensor::empty(DType::F32, {B, C});
      token_select_forward(ctx, cls, hidden, 0);
      linear_forward(ctx, pooler_scratch, cls, pooler_weight, pooler_bias);
      tanh_forward(ctx, pooler_scratch, pooler_scratch);
      linear_forward(ctx, logits, pooler_scratch, classifier_weight, classifier_bias);
      const float* l = logits.data<float>();
      int32_t* p = predictions.data<int32_t>();
      for (int64_t b = 0; b < B; ++b) {
        int32_t best = 0;
        for (int64_t j = 1; j < NL; ++j) {
          if (l[b * NL + j] > l[b * NL + best]) best = static_cast<int32_t>(j);
        }
        p[b] = best;
        if (labels && best == labels->data<int32_t>()[b]) ++correct->data<int32_t>()[0];
      }
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        // The pooler reads token 0 of every sequence in place: rows of hidden at stride T C.
        cuda::linear_forward(ctx, pooler_scratch.raw_data(), hidden.raw_data(), pooler_weight.raw_data(),
                             pooler_bias.raw_data(), nullptr, hidden.dtype(), B, C, C, T * C);
        cuda::classifier_head_forward(ctx, logits.data<float>(), predictions.data<int32_t>(),
                                      correct ? correct->data<int32_t>() : nullptr, pooler_scratch.raw_data(),
                                      classifier_weight.raw_data(), classifier_bias.data<float>(),
                                      labels ? labels->data<int32_t>() : nullptr, hidden.dtype(), B, C, NL);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
