// dropout_forward / dropout_backward / dropout_mask: argument checks and device dispatch (kernels in
// dropout_cpu.cc and dropout_cuda.cu). Activation gradients overwrite (=).
#include "ops/dropout.h"

#include "backend/device.h"
#include "ops/add.h"
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

// dropout_apply with the mask of `draw` (drawn inside the CUDA kernel, into a scratch mask on the CPU), plus
// `residual` where it is given (dropout_add_forward: on the CPU the two ops in turn, through a scratch since
// out may be the residual; on CUDA the same kernel's one pass). out may be 16-bit (the f32 result rounded
// once); twin, where given beside an f32 out, receives the result rounded to its 16-bit dtype.
void dropout_apply_drawn(ExecutionContext& ctx, const char* op, Tensor& out, const char* out_name,
                         const Tensor& in, const char* in_name, double p, const DropoutDraw& draw,
                         const Tensor* residual = nullptr, Tensor* twin = nullptr) {
  NLPF_CHECK(p >= 0 && p < 1, ErrorCode::INVALID_ARGUMENT, op, ": p = ", p, " is outside [0, 1)");
  check_dropout_draw(op, draw);
  const Device device =
      residual != nullptr
          ? detail::check_elementwise_out(op, ctx, {{in_name, &in}, {"residual", residual}}, {out_name, &out})
          : detail::check_elementwise_out(op, ctx, {{in_name, &in}}, {out_name, &out});
  if (twin != nullptr) {
    detail::check_16bit(op, "twin", *twin, in.shape());
    NLPF_CHECK(out.dtype() == DType::F32, ErrorCode::INVALID_ARGUMENT, op, ": a 16-bit copy beside a ",
               dtype_name(out.dtype()), " ", out_name, " (expected f32)");
  }
  const Tensor& twin_or_out = twin != nullptr ? *twin : out;
  detail::common_device(op, ctx, {{in_name, &in}, {"twin", &twin_or_out}});
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor keep = Tensor::empty(DType::F32, in.shape());
      dropout_mask(ctx, keep, p, draw);
      detail::with_f32_result(out, [&](Tensor& f32) {
        if (residual == nullptr) {
          dropout_apply(ctx, op, f32, out_name, in, in_name, keep, p);
        } else {
          Tensor dropped = Tensor::empty(DType::F32, in.shape());
          dropout_apply(ctx, op, dropped, out_name, in, in_name, keep, p);
          add_forward(ctx, f32, dropped, *residual);
        }
        if (twin != nullptr) detail::round_into(*twin, f32);
      });
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::dropout_forward(ctx, out.raw_data(), out.dtype(), in.data<float>(), cuda::drawn_keep(draw, p),
                              static_cast<float>(1 / (1 - p)), in.numel(),
                              residual != nullptr ? residual->data<float>() : nullptr,
                              detail::data_or_null(twin), detail::dtype_or(twin, DType::BF16));
        return;
      }
      detail::throw_no_cuda_kernel(op);
  }
}

}  // namespace

void dropout_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, double p, const DropoutDraw& draw,
                     Tensor* twin) {
  dropout_apply_drawn(ctx, "dropout_forward", out, "out", x, "x", p, draw, nullptr, twin);
}

void dropout_add_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, const Tensor& residual,
                         double p, const DropoutDraw& draw) {
  dropout_apply_drawn(ctx, "dropout_add_forward", out, "out", x, "x", p, draw, &residual);
}

void dropout_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, double p,
                      const DropoutDraw& draw) {
  dropout_apply_drawn(ctx, "dropout_backward", dx, "dx", dout, "dout", p, draw);
}

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
  NLPF_CHECK(step != nullptr, ErrorCode::INVALID_ARGUMENT, kOp, ": a null step");
  check_dropout_draw(kOp, DropoutDraw{seed, offset, step, step_stride});
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

void dropout_mask(ExecutionContext& ctx, Tensor& keep, double p, const DropoutDraw& draw) {
  if (draw.step != nullptr) {
    dropout_mask(ctx, keep, p, draw.seed, draw.offset, draw.step, draw.step_stride);
  } else {
    dropout_mask(ctx, keep, p, draw.seed, draw.offset);
  }
}

void check_dropout_draw(const char* op, const DropoutDraw& draw) {
  NLPF_CHECK(draw.step == nullptr || (draw.offset % 4 == 0 && draw.step_stride % 4 == 0),
             ErrorCode::INVALID_ARGUMENT, op, ": offset ", draw.offset, " or step stride ", draw.step_stride,
             " not a multiple of 4 with a step in context memory");
}

}  // namespace nlpf::ops
