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

}  // namespace nlpf::ops::detail
