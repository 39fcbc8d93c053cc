// Linear layer y = x W^T + b with W [OC,C] in PyTorch's nn.Linear layout (as stored in HF checkpoints).
// Forward saves nothing: backward needs x and W, which the caller keeps.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// y [..., OC] = x [..., C] W^T + b; weight [OC,C], bias [OC]; N = x.numel() / C rows. All f32, except:
// - x and weight both BF16 or both F16 (mixed-precision training, autocast's linear): 16-bit products with
//   fp32 accumulation (CUDA: cuBLASLt with 16-bit operands; CPU: the f32 kernel on the operands' values);
//   y and the bias stay f32;
// - f32 x with a BF16 weight (the CPU's bf16 inference, DESIGN §5): x is then rounded to bf16 and the product
//   runs as a bf16 GEMM with fp32 accumulation (cpu::linear_bf16); CPU only.
void linear_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                    const Tensor& bias);

// FP8 inference (DESIGN §5 fp8, issue 13): y [..., OC] = (x_scale x) (weight_scale W)^T + bias, where x [...,
// C] and W [OC, C] are F8E4M3 codes (core/fp8.h: value = decode(code) * scale), f32 scales per tensor
// (x_scale and weight_scale [1]) or per output channel (weight_scale [OC], x_scale [R >= N rows] holding x's
// scale for every row, as cuBLASLt's outer-vector scaling reads it), bias [OC] and y in BF16 or F16; products
// accumulate in fp32. CPU: the reference (decoded operands, double sums); CUDA: cuBLASLt's fp8 GEMM (C and
// OC multiples of 16).
void linear_fp8_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                        const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias);

// The form that runs fp8 GEMMs with per-channel weight scales on ctx (backend/cuda/gemm.h's Fp8ChannelForm):
// "" until the first such GEMM on ctx, then "outer_vector", "alpha_vector" or "two_pass"; "" on the CPU.
std::string fp8_channel_gemm_form(ExecutionContext& ctx);
// Tests: start ctx's choice at `form` (one of the three names: the forms before it are not asked).
void set_fp8_channel_gemm_form(ExecutionContext& ctx, const std::string& form);

// Every GEMM plan of ctx that GemmSelection::AUTOTUNE timed, with its candidates' times and the choice
// (backend/context.h's GemmAutotuneRecord); empty on the CPU.
std::vector<GemmAutotuneRecord> gemm_autotune_records(ExecutionContext& ctx);

// How linear_backward writes dx: OVERWRITE (=), or ACCUMULATE (+=, in the GEMM: a residual's gradient or the
// other projections' of a shared input, added without a kernel of its own).
enum class GradientOutput { OVERWRITE, ACCUMULATE };

// dx [..., C] (= or +=, see dx_output) dy W; dweight [OC,C] (+=) dy^T x; dbias [OC] (+=) sum over rows of dy.
// dy, x and weight all f32, or all of one 16-bit dtype (the mixed-precision backward: 16-bit products, fp32
// accumulation); dx, dweight and dbias f32.
void linear_backward(ExecutionContext& ctx, Tensor& dx, Tensor& dweight, Tensor& dbias, const Tensor& dy,
                     const Tensor& x, const Tensor& weight,
                     GradientOutput dx_output = GradientOutput::OVERWRITE);

}  // namespace nlpf::ops
