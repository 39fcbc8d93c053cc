// attention_forward / attention_backward: argument checks and device dispatch (kernels in attention_cpu.cc
// and attention_training_cuda.cu). Activation gradients overwrite (=).
#include "ops/attention.h"

#include "backend/device.h"
#include "ops/attention_cpu.h"
#include "ops/attention_cuda.h"
#include "ops/dropout_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {
namespace {

struct Dims {
  int64_t B, T, C, NH, HS;
};

Dims check_inputs(const ExecutionContext& ctx, const char* op, const Tensor& q, const Tensor& k,
                  const Tensor& v, const Tensor& attention_mask, const Tensor& probs, int64_t NH,
                  const AttentionDropout& dropout) {
  detail::check_dtype(op, "q", q, DType::F32);
  NLPF_CHECK(q.rank() == 3 && q.numel() > 0, ErrorCode::INVALID_ARGUMENT, op, ": q has shape ",
             shape_string(q.shape()), ", expected non-empty [B, T, C]");
  const Dims d{q.dim(0), q.dim(1), q.dim(2), NH, NH > 0 ? q.dim(2) / NH : 0};
  NLPF_CHECK(NH > 0 && d.C % NH == 0, ErrorCode::INVALID_ARGUMENT, op, ": C = ", d.C,
             " of q is not a multiple of the number of heads NH = ", NH);
  detail::check_dtype(op, "k", k, DType::F32);
  detail::check_shape(op, "k", k, q.shape());
  detail::check_dtype(op, "v", v, DType::F32);
  detail::check_shape(op, "v", v, q.shape());
  detail::check_dtype(op, "attention_mask", attention_mask, DType::I32);
  detail::check_shape(op, "attention_mask", attention_mask, {d.B, d.T});
  detail::check_dtype(op, "probs", probs, DType::F32);
  detail::check_shape(op, "probs", probs, {d.B, NH, d.T, d.T});
  NLPF_CHECK(dropout.p >= 0 && dropout.p < 1, ErrorCode::INVALID_ARGUMENT, op, ": dropout p = ", dropout.p,
             " is outside [0, 1)");
  NLPF_CHECK(dropout.keep == nullptr || dropout.draw == nullptr, ErrorCode::INVALID_ARGUMENT, op,
             ": dropout has both a keep mask and a draw");
  if (dropout.draw != nullptr) check_dropout_draw(op, *dropout.draw);
  if (dropout.keep != nullptr) {
    detail::check_dtype(op, "keep", *dropout.keep, DType::F32);
    detail::check_shape(op, "keep", *dropout.keep, {d.B, NH, d.T, d.T});
    detail::common_device(op, ctx, {{"q", &q}, {"keep", dropout.keep}});
  }
  return d;
}

// The CPU's keep mask: the caller's, or `draw`'s drawn into `scratch` [B,NH,T,T]; nullptr without dropout.
const float* cpu_keep(ExecutionContext& ctx, const AttentionDropout& dropout, const Dims& d,
                      Tensor& scratch) {
  if (dropout.keep != nullptr) return dropout.keep->data<float>();
  if (dropout.draw == nullptr) return nullptr;
  scratch = Tensor::empty(DType::F32, {d.B, d.NH, d.T, d.T});
  dropout_mask(ctx, scratch, dropout.p, *dropout.draw);
  return scratch.data<float>();
}

// The CUDA kernels' keep values (ops/dropout_cuda.h).
cuda::KeepSource cuda_keep(const AttentionDropout& dropout) {
  if (dropout.draw != nullptr) return cuda::drawn_keep(*dropout.draw, dropout.p);
  cuda::KeepSource keep;
  if (dropout.keep != nullptr) keep.mask = dropout.keep->data<float>();
  return keep;
}

}  // namespace

void attention_forward(ExecutionContext& ctx, Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k,
                       const Tensor& v, const Tensor& attention_mask, int64_t NH, AttentionDropout dropout) {
  constexpr const char* kOp = "attention_forward";
  const Dims d = check_inputs(ctx, kOp, q, k, v, attention_mask, probs, NH, dropout);
  detail::check_dtype(kOp, "out", out, DType::F32);
  detail::check_shape(kOp, "out", out, q.shape());
  const Device device = detail::common_device(kOp, ctx,
                                              {{"out", &out},
                                               {"probs", &probs},
                                               {"q", &q},
                                               {"k", &k},
                                               {"v", &v},
                                               {"attention_mask", &attention_mask}});
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor scratch;
      cpu::attention_forward(out.data<float>(), probs.data<float>(), q.data<float>(), k.data<float>(),
                             v.data<float>(), attention_mask.data<int32_t>(),
                             cpu_keep(ctx, dropout, d, scratch), static_cast<float>(1 / (1 - dropout.p)), d.B,
                             d.T, d.NH, d.HS);
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::attention_forward(ctx, out.data<float>(), probs.data<float>(), q.data<float>(), k.data<float>(),
                                v.data<float>(), attention_mask.data<int32_t>(), cuda_keep(dropout),
                                static_cast<float>(1 / (1 - dropout.p)), d.B, d.T, d.NH, d.HS);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void attention_backward(ExecutionContext& ctx, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attention_mask,
                        const Tensor& probs, int64_t NH, AttentionDropout dropout) {
  constexpr const char* kOp = "attention_backward";
  const Dims d = check_inputs(ctx, kOp, q, k, v, attention_mask, probs, NH, dropout);
  detail::check_dtype(kOp, "dout", dout, DType::F32);
  detail::check_shape(kOp, "dout", dout, q.shape());
  detail::check_dtype(kOp, "dq", dq, DType::F32);
  detail::check_shape(kOp, "dq", dq, q.shape());
  detail::check_dtype(kOp, "dk", dk, DType::F32);
  detail::check_shape(kOp, "dk", dk, q.shape());
  detail::check_dtype(kOp, "dv", dv, DType::F32);
  detail::check_shape(kOp, "dv", dv, q.shape());
  const Device device = detail::common_device(kOp, ctx,
                                              {{"dq", &dq},
                                               {"dk", &dk},
                                               {"dv", &dv},
                                               {"dout", &dout},
                                               {"q", &q},
                                               {"k", &k},
                                               {"v", &v},
                                               {"attention_mask", &attention_mask},
                                               {"probs", &probs}});
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor scratch;
      cpu::attention_backward(
          dq.data<float>(), dk.data<float>(), dv.data<float>(), dout.data<float>(), q.data<float>(),
          k.data<float>(), v.data<float>(), attention_mask.data<int32_t>(), probs.data<float>(),
          cpu_keep(ctx, dropout, d, scratch), static_cast<float>(1 / (1 - dropout.p)), d.B, d.T, d.NH, d.HS);
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::attention_backward(ctx, dq.data<float>(), dk.data<float>(), dv.data<float>(),
                                 dout.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(),
                                 attention_mask.data<int32_t>(), probs.data<float>(), cuda_keep(dropout),
                                 static_cast<float>(1 / (1 - dropout.p)), d.B, d.T, d.NH, d.HS);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
