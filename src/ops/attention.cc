// attention_forward / attention_backward: argument checks and device dispatch (kernels in attention_cpu.cc
// and attention_training_cuda.cu). Activation gradients overwrite (=).
#include "ops/attention.h"

#include <algorithm>
#include <cstddef>

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

// The sizes from x [B, T, parts C] (q: one part; a packed qkv: three).
Dims dims_of(const char* op, const char* name, const Tensor& x, int64_t parts, int64_t NH) {
  detail::check_dtype(op, name, x, DType::F32);
  NLPF_CHECK(x.rank() == 3 && x.numel() > 0 && x.dim(2) % parts == 0, ErrorCode::INVALID_ARGUMENT, op, ": ",
             name, " has shape ", shape_string(x.shape()),
             parts == 1 ? ", expected non-empty [B, T, C]" : ", expected non-empty [B, T, 3 C]");
  const int64_t C = x.dim(2) / parts;
  const Dims d{x.dim(0), x.dim(1), C, NH, NH > 0 ? C / NH : 0};
  NLPF_CHECK(NH > 0 && C % NH == 0, ErrorCode::INVALID_ARGUMENT, op, ": C = ", C, " of ", name,
             " is not a multiple of the number of heads NH = ", NH);
  return d;
}

// The checks beside q, k, v's (x: the tensor a keep mask must share a device with).
void check_mask_probs_dropout(const ExecutionContext& ctx, const char* op, const Dims& d, const char* name,
                              const Tensor& x, const Tensor& attention_mask, const Tensor& probs,
                              const AttentionDropout& dropout) {
  const int64_t NH = d.NH;
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
    detail::common_device(op, ctx, {{name, &x}, {"keep", dropout.keep}});
  }
}

Dims check_inputs(const ExecutionContext& ctx, const char* op, const Tensor& q, const Tensor& k,
                  const Tensor& v, const Tensor& attention_mask, const Tensor& probs, int64_t NH,
                  const AttentionDropout& dropout) {
  const Dims d = dims_of(op, "q", q, 1, NH);
  detail::check_dtype(op, "k", k, DType::F32);
  detail::check_shape(op, "k", k, q.shape());
  detail::check_dtype(op, "v", v, DType::F32);
  detail::check_shape(op, "v", v, q.shape());
  check_mask_probs_dropout(ctx, op, d, "q", q, attention_mask, probs, dropout);
  return d;
}

// The CPU side of the packed ops: part i (q, k, v = 0, 1, 2) of qkv [B,T,3C] as its own [B,T,C] tensor, and
// back.
Tensor packed_part(const Tensor& qkv, int64_t i, const Dims& d) {
  Tensor part = Tensor::empty(DType::F32, {d.B, d.T, d.C});
  const float* from = qkv.data<float>() + i * d.C;
  float* to = part.data<float>();
  for (int64_t row = 0; row < d.B * d.T; ++row) std::copy_n(from + row * 3 * d.C, d.C, to + row * d.C);
  return part;
}

void set_packed_part(Tensor& qkv, int64_t i, const Tensor& part, const Dims& d) {
  const float* from = part.data<float>();
  float* to = qkv.data<float>() + i * d.C;
  for (int64_t row = 0; row < d.B * d.T; ++row) std::copy_n(from + row * d.C, d.C, to + row * 3 * d.C);
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
        cuda::attention_forward(ctx, out.data<float>(), DType::F32, probs.data<float>(), q.data<float>(),
                                k.data<float>(), v.data<float>(), d.C, attention_mask.data<int32_t>(),
                                cuda_keep(dropout), static_cast<float>(1 / (1 - dropout.p)), d.B, d.T, d.NH,
                                d.HS);
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
        cuda::attention_backward(ctx, dq.data<float>(), dk.data<float>(), dv.data<float>(), d.C, DType::F32,
                                 dout.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(), d.C,
                                 attention_mask.data<int32_t>(), probs.data<float>(), cuda_keep(dropout),
                                 static_cast<float>(1 / (1 - dropout.p)), d.B, d.T, d.NH, d.HS);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void attention_forward_packed(ExecutionContext& ctx, Tensor& out, Tensor& probs, const Tensor& qkv,
                              const Tensor& attention_mask, int64_t NH, AttentionDropout dropout) {
  constexpr const char* kOp = "attention_forward_packed";
  const Dims d = dims_of(kOp, "qkv", qkv, 3, NH);
  check_mask_probs_dropout(ctx, kOp, d, "qkv", qkv, attention_mask, probs, dropout);
  detail::check_f32_or_16bit(kOp, "out", out, {d.B, d.T, d.C});
  const Device device = detail::common_device(
      kOp, ctx, {{"out", &out}, {"probs", &probs}, {"qkv", &qkv}, {"attention_mask", &attention_mask}});
  switch (device.type) {
    case DeviceType::CPU: {
      detail::with_f32_result(out, [&](Tensor& f32) {
        attention_forward(ctx, f32, probs, packed_part(qkv, 0, d), packed_part(qkv, 1, d),
                          packed_part(qkv, 2, d), attention_mask, NH, dropout);
      });
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        const float* q = qkv.data<float>();
        cuda::attention_forward(ctx, out.raw_data(), out.dtype(), probs.data<float>(), q, q + d.C,
                                q + 2 * d.C, 3 * d.C, attention_mask.data<int32_t>(), cuda_keep(dropout),
                                static_cast<float>(1 / (1 - dropout.p)), d.B, d.T, d.NH, d.HS);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

void attention_backward_packed(ExecutionContext& ctx, Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                               const Tensor& attention_mask, const Tensor& probs, int64_t NH,
                               AttentionDropout dropout) {
  constexpr const char* kOp = "attention_backward_packed";
  const Dims d = dims_of(kOp, "qkv", qkv, 3, NH);
  check_mask_probs_dropout(ctx, kOp, d, "qkv", qkv, attention_mask, probs, dropout);
  detail::check_dtype(kOp, "dout", dout, DType::F32);
  detail::check_shape(kOp, "dout", dout, {d.B, d.T, d.C});
  detail::check_f32_or_16bit(kOp, "dqkv", dqkv, qkv.shape());
  const Device device = detail::common_device(kOp, ctx,
                                              {{"dqkv", &dqkv},
                                               {"dout", &dout},
                                               {"qkv", &qkv},
                                               {"attention_mask", &attention_mask},
                                               {"probs", &probs}});
  switch (device.type) {
    case DeviceType::CPU: {
      Tensor dq = Tensor::empty(DType::F32, {d.B, d.T, d.C}), dk = Tensor::empty(DType::F32, {d.B, d.T, d.C}),
             dv = Tensor::empty(DType::F32, {d.B, d.T, d.C});
      attention_backward(ctx, dq, dk, dv, dout, packed_part(qkv, 0, d), packed_part(qkv, 1, d),
                         packed_part(qkv, 2, d), attention_mask, probs, NH, dropout);
      detail::with_f32_result(dqkv, [&](Tensor& f32) {
        set_packed_part(f32, 0, dq, d);
        set_packed_part(f32, 1, dk, d);
        set_packed_part(f32, 2, dv, d);
      });
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        const float* q = qkv.data<float>();
        auto* dq = static_cast<std::byte*>(dqkv.raw_data());
        const size_t part = static_cast<size_t>(d.C) * dtype_size(dqkv.dtype());  // bytes of one part's row
        cuda::attention_backward(ctx, dq, dq + part, dq + 2 * part, 3 * d.C, dqkv.dtype(), dout.data<float>(),
                                 q, q + d.C, q + 2 * d.C, 3 * d.C, attention_mask.data<int32_t>(),
                                 probs.data<float>(), cuda_keep(dropout),
                                 static_cast<float>(1 / (1 - dropout.p)), d.B, d.T, d.NH, d.HS);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
