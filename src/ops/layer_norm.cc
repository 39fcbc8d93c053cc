// layer_norm_forward / layer_norm_backward: argument checks and device dispatch (kernels in
// layer_norm_cpu.cc and layer_norm_cuda.cu). Parameter gradients accumulate (+=), activation gradients
// overwrite (=).
#include "ops/layer_norm.h"
#include "backend/device.h"
#include "ops/add.h"
#include "ops/dropout_cuda.h"
#include "ops/layer_norm_cpu.h"
#include "ops/layer_norm_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {
namespace {
constexpr const char* kForward = "layer_norm_forward";
constexpr const char* kBackward = "layer_norm_backward";

void check_common(const char* op, const Tensor& x, const Tensor& weight, const Tensor& mean,
                  const Tensor& rstd) {
  detail::check_dtype(op, "x", x, DType::F32);
  detail::check_min_rank(op, "x", x, 1);
  const int64_t C = x.dim(-1), N = x.numel() / C;
  detail::check_dtype(op, "weight", weight, DType::F32);
  detail::check_shape(op, "weight", weight, {C});
  detail::check_dtype(op, "mean", mean, DType::F32);
  detail::check_shape(op, "mean", mean, {N});
  detail::check_dtype(op, "rstd", rstd, DType::F32);
  detail::check_shape(op, "rstd", rstd, {N});
}

// The training forward's checks (op names the caller), x the LayerNorm input; the tensors' common device.
Device check_forward(const char* op, const ExecutionContext& ctx, const Tensor& out, const Tensor& mean,
                     const Tensor& rstd, const Tensor& x, const Tensor& weight, const Tensor& bias,
                     double eps, const Tensor* twin) {
  check_common(op, x, weight, mean, rstd);
  const int64_t C = x.dim(-1);
  detail::check_dtype(op, "bias", bias, DType::F32);
  detail::check_shape(op, "bias", bias, {C});
  detail::check_dtype(op, "out", out, DType::F32);
  detail::check_shape(op, "out", out, x.shape());
  NLPF_CHECK(eps >= 0, ErrorCode::INVALID_ARGUMENT, op, ": eps = ", eps, " is negative");
  if (twin != nullptr) detail::check_16bit(op, "twin", *twin, x.shape());
  const Tensor& twin_or_out = twin != nullptr ? *twin : out;
  return detail::common_device(op, ctx,
                               {{"out", &out},
                                {"mean", &mean},
                                {"rstd", &rstd},
                                {"x", &x},
                                {"weight", &weight},
                                {"bias", &bias},
                                {"twin", &twin_or_out}});
}

}  // namespace

void layer_norm_forward(ExecutionContext& ctx, Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, Tensor* twin) {
  const Device device = check_forward(kForward, ctx, out, mean, rstd, x, weight, bias, eps, twin);
  const int64_t C = x.dim(-1), N = x.numel() / C;
  switch (device.type) {
    case DeviceType::CPU:
      cpu::layer_norm_forward(out.data<float>(), mean.data<float>(), rstd.data<float>(), x.data<float>(),
                              weight.data<float>(), bias.data<float>(), eps, N, C);
      if (twin != nullptr) detail::round_into(*twin, out);
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::layer_norm_forward(ctx, out.data<float>(), mean.data<float>(), rstd.data<float>(),
                                 x.data<float>(), weight.data<float>(), bias.data<float>(), N, C, eps,
                                 detail::data_or_null(twin), detail::dtype_or(twin, DType::BF16));
        return;
      }
      detail::throw_no_cuda_kernel(kForward);
  }
}

void dropout_add_layer_norm_forward(ExecutionContext& ctx, Tensor& sum, Tensor& out, Tensor& mean,
                                    Tensor& rstd, const Tensor& x, const Tensor& residual,
                                    const Tensor& weight, const Tensor& bias, double eps, double p,
                                    const DropoutDraw& draw, Tensor* twin) {
  constexpr const char* kOp = "dropout_add_layer_norm_forward";
  NLPF_CHECK(p >= 0 && p < 1, ErrorCode::INVALID_ARGUMENT, kOp, ": p = ", p, " is outside [0, 1)");
  check_dropout_draw(kOp, draw);
  detail::check_elementwise(kOp, ctx, {{"x", &x}, {"residual", &residual}, {"sum", &sum}});
  const Device device = check_forward(kOp, ctx, out, mean, rstd, sum, weight, bias, eps, twin);
  switch (device.type) {
    case DeviceType::CPU:  // the two ops in turn: the reference
      if (p > 0) {
        dropout_add_forward(ctx, sum, x, residual, p, draw);
      } else {
        add_forward(ctx, sum, x, residual);
      }
      layer_norm_forward(ctx, out, mean, rstd, sum, weight, bias, eps, twin);
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        const int64_t C = sum.dim(-1), N = sum.numel() / C;
        const cuda::KeepSource keep = p > 0 ? cuda::drawn_keep(draw, p) : cuda::KeepSource{};
        cuda::dropout_add_layer_norm_forward(ctx, sum.data<float>(), out.data<float>(), mean.data<float>(),
                                             rstd.data<float>(), x.data<float>(), residual.data<float>(),
                                             keep, static_cast<float>(1 / (1 - p)), weight.data<float>(),
                                             bias.data<float>(), N, C, eps, detail::data_or_null(twin),
                                             detail::dtype_or(twin, DType::BF16));
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void layer_norm_backward(ExecutionContext& ctx, Tensor& dx, Tensor& dweight, Tensor& dbias,
                         const Tensor& dout, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const LayerNormGradientCopy* copy) {
  check_common(kBackward, x, weight, mean, rstd);
  const int64_t C = x.dim(-1), N = x.numel() / C;
  detail::check_dtype(kBackward, "dout", dout, DType::F32);
  detail::check_shape(kBackward, "dout", dout, x.shape());
  detail::check_dtype(kBackward, "dx", dx, DType::F32);
  detail::check_shape(kBackward, "dx", dx, x.shape());
  detail::check_dtype(kBackward, "dweight", dweight, DType::F32);
  detail::check_shape(kBackward, "dweight", dweight, {C});
  detail::check_dtype(kBackward, "dbias", dbias, DType::F32);
  detail::check_shape(kBackward, "dbias", dbias, {C});
  if (copy != nullptr) {
    NLPF_CHECK(copy->out != nullptr && copy->p >= 0 && copy->p < 1, ErrorCode::INVALID_ARGUMENT, kBackward,
               ": a gradient copy without a tensor or with p = ", copy->p, " outside [0, 1)");
    detail::check_f32_or_16bit(kBackward, "copy", *copy->out, x.shape());
    check_dropout_draw(kBackward, copy->draw);
  }
  const Tensor& copy_or_dx = copy != nullptr ? *copy->out : dx;
  const Device device = detail::common_device(kBackward, ctx,
                                              {{"dx", &dx},
                                               {"dweight", &dweight},
                                               {"dbias", &dbias},
                                               {"dout", &dout},
                                               {"x", &x},
                                               {"weight", &weight},
                                               {"mean", &mean},
                                               {"rstd", &rstd},
                                               {"copy", &copy_or_dx}});
  switch (device.type) {
    case DeviceType::CPU:
      cpu::layer_norm_backward(dx.data<float>(), dweight.data<float>(), dbias.data<float>(),
                               dout.data<float>(), x.data<float>(), weight.data<float>(), mean.data<float>(),
                               rstd.data<float>(), N, C);
      if (copy == nullptr) return;
      if (copy->p > 0) {
        dropout_backward(ctx, *copy->out, dx, copy->p, copy->draw);
      } else if (copy->out->dtype() == DType::F32) {
        copy_tensor(ctx, *copy->out, dx);
      } else {
        detail::round_into(*copy->out, dx);
      }
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        const bool dropout = copy != nullptr && copy->p > 0;
        cuda::layer_norm_backward(ctx, dx.data<float>(), dweight.data<float>(), dbias.data<float>(),
                                  dout.data<float>(), x.data<float>(), weight.data<float>(),
                                  mean.data<float>(), rstd.data<float>(), N, C,
                                  detail::data_or_null(copy != nullptr ? copy->out : nullptr),
                                  detail::dtype_or(copy != nullptr ? copy->out : nullptr, DType::F32),
                                  dropout ? cuda::drawn_keep(copy->draw, copy->p) : cuda::KeepSource{},
                                  dropout ? static_cast<float>(1 / (1 - copy->p)) : 1.0f);
        return;
      }
      detail::throw_no_cuda_kernel(kBackward);
  }
}

}  // namespace nlpf::ops
