// cross_entropy_forward / cross_entropy_backward: argument checks and device dispatch (kernels in
// cross_entropy_cpu.cc and cross_entropy_cuda.cu). Activation gradients overwrite (=).
#include "ops/cross_entropy.h"

#include "backend/device.h"
#include "ops/cross_entropy_cpu.h"
#include "ops/cross_entropy_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {
namespace {

void check_probs_labels(const char* op, const char* name, const Tensor& probs, const Tensor& labels) {
  detail::check_dtype(op, name, probs, DType::F32);
  NLPF_CHECK(probs.rank() == 2 && probs.numel() > 0, ErrorCode::INVALID_ARGUMENT, op, ": ", name,
             " has shape ", shape_string(probs.shape()), ", expected non-empty [B, NL]");
  detail::check_dtype(op, "labels", labels, DType::I32);
  detail::check_shape(op, "labels", labels, {probs.dim(0)});
}

// The forward's checks: logits and probs [B,NL] f32, labels [B] i32; returns their common device.
Device check_forward(const char* op, ExecutionContext& ctx, const Tensor& probs, const Tensor& logits,
                     const Tensor& labels) {
  check_probs_labels(op, "logits", logits, labels);
  detail::check_dtype(op, "probs", probs, DType::F32);
  detail::check_shape(op, "probs", probs, logits.shape());
  return detail::common_device(op, ctx, {{"probs", &probs}, {"logits", &logits}, {"labels", &labels}});
}

// Both backward forms: dloss_in_memory (ctx's memory) where given, else dloss.
void backward(ExecutionContext& ctx, Tensor& dlogits, const Tensor& probs, const Tensor& labels, double dloss,
              const double* dloss_in_memory) {
  constexpr const char* kOp = "cross_entropy_backward";
  check_probs_labels(kOp, "probs", probs, labels);
  detail::check_dtype(kOp, "dlogits", dlogits, DType::F32);
  detail::check_shape(kOp, "dlogits", dlogits, probs.shape());
  switch (
      detail::common_device(kOp, ctx, {{"dlogits", &dlogits}, {"probs", &probs}, {"labels", &labels}}).type) {
    case DeviceType::CPU:
      cpu::cross_entropy_backward(dlogits.data<float>(), probs.data<float>(), labels.data<int32_t>(),
                                  dloss_in_memory != nullptr ? *dloss_in_memory : dloss, probs.dim(0),
                                  probs.dim(1));
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::cross_entropy_backward(ctx, dlogits.data<float>(), probs.data<float>(), labels.data<int32_t>(),
                                     dloss, dloss_in_memory, probs.dim(0), probs.dim(1));
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace

double cross_entropy_forward(ExecutionContext& ctx, Tensor& probs, const Tensor& logits,
                             const Tensor& labels) {
  constexpr const char* kOp = "cross_entropy_forward";
  switch (check_forward(kOp, ctx, probs, logits, labels).type) {
    case DeviceType::CPU:
      return cpu::cross_entropy_forward(probs.data<float>(), logits.data<float>(), labels.data<int32_t>(),
                                        logits.dim(0), logits.dim(1));
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        return cuda::cross_entropy_forward(ctx, probs.data<float>(), logits.data<float>(),
                                           labels.data<int32_t>(), logits.dim(0), logits.dim(1));
      }
      detail::throw_no_cuda_kernel(kOp);
  }
  NLPF_THROW(ErrorCode::INTERNAL, kOp, ": unknown device type");
}

void cross_entropy_forward(ExecutionContext& ctx, Tensor& probs, const Tensor& logits, const Tensor& labels,
                           double* loss) {
  constexpr const char* kOp = "cross_entropy_forward";
  NLPF_CHECK(loss != nullptr, ErrorCode::INVALID_ARGUMENT, kOp, ": null loss destination");
  switch (check_forward(kOp, ctx, probs, logits, labels).type) {
    case DeviceType::CPU:
      *loss = cpu::cross_entropy_forward(probs.data<float>(), logits.data<float>(), labels.data<int32_t>(),
                                         logits.dim(0), logits.dim(1));
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::cross_entropy_forward(ctx, probs.data<float>(), logits.data<float>(), labels.data<int32_t>(),
                                    logits.dim(0), logits.dim(1), loss);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void cross_entropy_backward(ExecutionContext& ctx, Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                            const double* dloss) {
  NLPF_CHECK(dloss != nullptr, ErrorCode::INVALID_ARGUMENT, "cross_entropy_backward: null dloss");
  backward(ctx, dlogits, probs, labels, 0.0, dloss);
}

void cross_entropy_backward(ExecutionContext& ctx, Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                            double dloss) {
  backward(ctx, dlogits, probs, labels, dloss, nullptr);
}

}  // namespace nlpf::ops
