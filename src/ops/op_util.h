// Argument checks and device dispatch shared by the ops in src/ops: every failure throws nlpf::Error naming
// the op and the tensor, with shapes. Tensor-level ops take f32 (the DType set has no f64); the CPU kernels
// behind them are templates over float and double so that gradient tests run in double.
#pragma once

#include <initializer_list>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops::detail {

struct NamedTensor {
  const char* name;
  const Tensor* tensor;
};

// dtype must equal `dtype`: another float dtype is UNSUPPORTED (not implemented yet), else INVALID_ARGUMENT.
void check_dtype(const char* op, const char* name, const Tensor& t, DType dtype);
void check_shape(const char* op, const char* name, const Tensor& t, const Shape& shape);
// Rank at least `min_rank`, every dimension positive.
void check_min_rank(const char* op, const char* name, const Tensor& t, int min_rank);
// The operands of an fp8 linear: x [..., C] and weight [OC, C] E4M3 codes, f32 scales per tensor (x_scale
// and weight_scale [1]) or per output channel (weight_scale [OC], x_scale [R] with R >= N = x's rows: x's
// scale repeated, the vector cuBLASLt's outer-vector mode reads; backend/cuda/gemm.h). Returns the number of
// weight scales (1 or OC).
int64_t check_fp8_operands(const char* op, const Tensor& x, const Tensor& weight, const Tensor& x_scale,
                           const Tensor& weight_scale);
// The device all tensors live on, which must be ctx's: tensors on different devices, or on another device
// than the context, are INVALID_ARGUMENT.
Device common_device(const char* op, const ExecutionContext& ctx, std::initializer_list<NamedTensor> tensors);
// The CUDA branch of a dispatch until the op's <op>_cuda.cu exists.
[[noreturn]] void throw_no_cuda_kernel(const char* op);

}  // namespace nlpf::ops::detail

namespace nlpf::ops::detail {

// Elementwise ops: every tensor f32 with the shape of the first; returns their common device.
Device check_elementwise(const char* op, const ExecutionContext& ctx,
                         std::initializer_list<NamedTensor> tensors);

// ---- 16-bit outputs of f32 ops (mixed-precision training: the next GEMM's operand) ----

// t is BF16 or F16 with `shape`, else INVALID_ARGUMENT naming op and name.
void check_16bit(const char* op, const char* name, const Tensor& t, const Shape& shape);
// An output that is f32, or (where the op allows it) 16-bit, with `shape`.
void check_f32_or_16bit(const char* op, const char* name, const Tensor& t, const Shape& shape);
// check_elementwise over the inputs, and out with their shape, f32 or 16-bit (check_f32_or_16bit), on their
// device; returns that device.
Device check_elementwise_out(const char* op, const ExecutionContext& ctx,
                             std::initializer_list<NamedTensor> inputs, NamedTensor out);
// An optional tensor for a kernel: its data, or nullptr where there is none; its dtype, or `none`.
inline void* data_or_null(Tensor* t) {
  return t != nullptr ? t->raw_data() : nullptr;
}
inline DType dtype_or(const Tensor* t, DType none) {
  return t != nullptr ? t->dtype() : none;
}
// out (host, BF16 or F16) = f32 (host, out's shape) rounded to nearest even: the CPU reference of a 16-bit
// output, the f32 result as the op computes it, then rounded once (as a CUDA kernel's from_float at its
// store).
void round_into(Tensor& out, const Tensor& f32);
// The CPU form of an op whose output may be 16-bit: run(Tensor& f32) writes the f32 result into out itself
// when out is f32, else into f32 scratch of out's shape that is then rounded into out.
template <typename Run>
void with_f32_result(Tensor& out, Run&& run) {
  if (out.dtype() == DType::F32) {
    run(out);
    return;
  }
  Tensor f32 = Tensor::empty(DType::F32, out.shape());
  run(f32);
  round_into(out, f32);
}

}  // namespace nlpf::ops::detail
