// The fused-op layer of BERT inference (docs/ENGINE.md): each op is one step of the data path from a batch to
// its predictions, fused where the GPU gains by it. The CPU version of each chains the reference ops (so the
// goldens and gradient tests of those ops cover it, and the CUDA kernels are tested against it); the CUDA
// version is one or two kernels. Inference only: nothing is saved for backward.
// Dtypes: activations and weights of one compute dtype (CPU: F32; CUDA: F32, BF16 or F16, fp32 accumulation
// and statistics), LayerNorm weight and bias F32, ids and masks I32, logits F32. Dimension letters: B batch,
// T tokens, C hidden, NH heads, I intermediate, NL labels, N = B T rows.
// FP8 (DESIGN §5, issue 13): the four encoder GEMMs of a layer read E4M3 codes with f32 scales in device
// memory (value = decode(code) * scale): per tensor, or for the weight per output channel. The producers of
// their inputs write the codes themselves: both LayerNorms (E4m3Copy: the 16-bit output stays, it is the
// residual), the tensor-core attention kernel, and the intermediate GEMM (its GELU output leaves as codes).
// The fp8 linears run on CUDA only: the CPU engine is fp32 (its fp8 reference is the same data path in fp32
// with quantised and decoded GEMM inputs and weights, tests/unit/fp8_emulation.h).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// The E4M3 copy of an op's output for the next fp8 GEMM: codes (F8E4M3, the output's shape) = e4m3(out as
// stored / scale[0]), scale [1] f32 on the op's device; bit-identical to quantize_e4m3_forward applied to the
// output afterwards.
struct E4m3Copy {
  Tensor* codes = nullptr;
  const Tensor* scale = nullptr;
};

// The LayerNorms, linear_gelu_forward and linear_residual_layer_norm_forward take the batch's attention_mask
// [B,T] (i32; out [B,T,C]) optionally: with it, the rows of padded tokens in sequences whose token 0 is real
// are 0 (E4M3 code 0), which the GPU writes without reading their input (ops/padded_rows.h). No output
// depends on those rows (fused_attention_forward masks padded keys and zeroes padded queries, the pooler
// reads token 0), and zeros keep every product over them finite; a sequence with no token at all keeps HF's
// rows. The GEMMs still run over the padded shape, so --padding max-length costs what padding costs in the
// dense products (DESIGN §2).

// out [B,T,C] = LayerNorm(word[input_ids] + position[0..T-1] + token_type[token_type_ids]); input_ids,
// token_type_ids [B,T]; word [V,C], position [P,C], token_type [TV,C]; weight, bias [C] f32.
void embeddings_layer_norm_forward(ExecutionContext& ctx, Tensor& out, const Tensor& input_ids,
                                   const Tensor& token_type_ids, const Tensor& word, const Tensor& position,
                                   const Tensor& token_type, const Tensor& weight, const Tensor& bias,
                                   double eps, const E4m3Copy* e4m3 = nullptr,
                                   const Tensor* attention_mask = nullptr);

// y [..., OC] = x [..., C] W^T + bias (+ residual [..., OC] when given; may be y): the attention output and
// feed-forward output projections add the layer's input here, before their LayerNorm.
void linear_residual_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor* residual);

// How linear_gelu_forward computes GELU for f32 on CUDA: the exact erf GELU in a pass after the GEMM (the
// default), or, under TF32 math only, cuBLASLt's GELU epilogue (the tanh form, as at 16 bits).
enum class F32Gelu { EXACT_PASS, TANH_EPILOGUE };

// y [..., OC] = gelu(x W^T + bias): the feed-forward intermediate. Exact erf GELU (HF's "gelu") on the CPU
// and for f32 on CUDA; for 16-bit on CUDA (and tf32 with F32Gelu::TANH_EPILOGUE) the GEMM's fused epilogue
// computes GELU's tanh form, within 4.7e-4 of the erf form (linear_cuda.h), the order of fp16's rounding of
// the activation. attention_mask (y [B,T,OC]): padded rows 0 where GELU is its own pass (CPU, f32 on CUDA;
// on CUDA x's padded rows must be zero, as the LayerNorms write them with the same mask: the GEMM then
// writes zeros there and the GELU pass, which adds the bias, leaves them); the epilogue computes every row.
void linear_gelu_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                         const Tensor& bias, const Tensor* attention_mask = nullptr,
                         F32Gelu f32_gelu = F32Gelu::EXACT_PASS);

// out [..., C] = LayerNorm(x) over the last dimension, weight and bias [C] f32; out may be x. With e4m3 also
// out's E4M3 copy, written by the same kernel on CUDA.
void layer_norm_inference_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, const Tensor& weight,
                                  const Tensor& bias, double eps, const E4m3Copy* e4m3 = nullptr,
                                  const Tensor* attention_mask = nullptr);

// Where linear_residual_layer_norm_forward adds the residual for f32 on CUDA: in the GEMM (beta = 1 with the
// residual as C; the default), or in the LayerNorm's pass beside the bias (the GEMM with beta = 0, which
// cuBLASLt may serve with other kernels). The sums are the same, fl(fl(x W^T) + residual) + bias, for the
// same GEMM kernel.
enum class F32Residual { GEMM_EPILOGUE, LAYER_NORM };

// y [..., OC] = LayerNorm(x [..., C] W^T + bias + residual [..., OC]) with ln_weight, ln_bias f32 [OC]: the
// attention-output and feed-forward-output projections with their LayerNorm (linear_residual_forward, then
// layer_norm_inference_forward in place; attention_mask as theirs). On CUDA at f32 the GEMM leaves its bias
// to the LayerNorm, so where x's and residual's padded rows are zero (the attention's padded queries, the
// LayerNorms' and the f32 GELU's padded rows) the GEMM writes zeros there, and the LayerNorm, given the mask,
// leaves them unread and unwritten; with or without a mask the same GEMM, so no bit of a real row moves.
// f32_residual: F32Residual (LAYER_NORM: residual must not overlap y, which the GEMM writes first).
void linear_residual_layer_norm_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x,
                                        const Tensor& weight, const Tensor& bias, const Tensor& residual,
                                        const Tensor& ln_weight, const Tensor& ln_bias, double eps,
                                        const Tensor* attention_mask = nullptr,
                                        F32Residual f32_residual = F32Residual::GEMM_EPILOGUE);

// FP8: y [..., OC] = (x_scale x) (weight_scale W)^T + bias (+ residual [..., OC] when given; may be y), x
// [..., C] and weight [OC, C] F8E4M3 codes, f32 scales per tensor (x_scale and weight_scale [1]) or per
// output channel (weight_scale [OC], x_scale [R >= N] x's scale per row; ops/linear.h), y, bias and residual
// BF16 or F16, fp32 accumulation (cuBLASLt's fp8 GEMM; C and OC multiples of 16). CUDA only (UNSUPPORTED on
// the CPU).
void linear_fp8_residual_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                                 const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias,
                                 const Tensor* residual);

// FP8: y [..., OC] = gelu_tanh((x_scale x) (weight_scale W)^T + bias), arguments as above. y BF16 or F16
// (y_scale_inverse nullptr), or F8E4M3 codes for the next fp8 GEMM with y_scale_inverse [1] f32 = 1 / y's
// scale (the GEMM writes e4m3(gelu * y_scale_inverse); bias BF16; per-tensor scales only: UNSUPPORTED with
// per-channel ones, backend/cuda/gemm.h). CUDA only.
void linear_fp8_gelu_forward(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                             const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias,
                             const Tensor* y_scale_inverse);
// Whether cuBLASLt runs linear_fp8_gelu_forward with an F8E4M3 y and these arguments on ctx's device (it may
// refuse the GELU epilogue with an E4M3 output; the engine then writes 16 bits and quantises in a pass).
bool linear_fp8_gelu_e4m3_supported(ExecutionContext& ctx, Tensor& y, const Tensor& x, const Tensor& weight,
                                    const Tensor& x_scale, const Tensor& weight_scale, const Tensor& bias,
                                    const Tensor& y_scale_inverse);

// out [B,T,C] = multi-head attention of the packed projection qkv [B,T,3C] (q | k | v, from one GEMM with the
// packed weight [3C, C]) under attention_mask [B,T] (1 = token, 0 = padding), NH heads. The row of a padded
// query is 0, unlike HF, which attends from it too: no token's output depends on it (padded keys are masked,
// the pooler reads token 0), so the logits are HF's, and the GPU skips the work (most of a batch padded to
// max-length). A sequence with no token at all keeps HF's rows (uniform attention over all T keys). With e4m3
// also out's E4M3 copy: written by the tensor-core kernel itself (16-bit, head sizes 32/64/128), else by a
// quantize_e4m3_forward pass after it. tf32_tensor_cores: f32 on CUDA under TF32 math takes the tensor-core
// kernel (Q, K, V and the probabilities rounded to tf32; head sizes 32 and 64, else the CUDA-core kernel)
// instead of the fp32 CUDA-core one; INVALID_ARGUMENT under other math (fp32 keeps IEEE products).
void fused_attention_forward(ExecutionContext& ctx, Tensor& out, const Tensor& qkv,
                             const Tensor& attention_mask, int64_t NH, const E4m3Copy* e4m3 = nullptr,
                             bool tf32_tensor_cores = false);

// out [B,1,C] = fused_attention_forward's row of token 0 alone: the last encoder layer's attention when only
// the [CLS] row goes on (BertInference::set_first_token_last_layer), the one output the pooler reads. The
// CPU computes every row (fused_attention_forward) and keeps token 0's; CUDA computes token 0's only, in fp32
// on the CUDA cores at every dtype and math mode.
void first_query_attention_forward(ExecutionContext& ctx, Tensor& out, const Tensor& qkv,
                                   const Tensor& attention_mask, int64_t NH);

// The pooler and classifier on token 0 of hidden [B,T,C]: pooled = tanh(hidden[:,0] pooler_weight^T +
// pooler_bias), logits [B,NL] f32 = pooled classifier_weight^T + classifier_bias (classifier_bias f32),
// predictions [B] i32 = argmax (first maximum), and, when labels [B] i32 is given, correct [1] i32 += the
// number of b with predictions[b] == labels[b]. pooler_scratch [B,C] of the compute dtype holds the pooler's
// pre-activation (a workspace: the forward allocates nothing).
void classifier_head_forward(ExecutionContext& ctx, Tensor& logits, Tensor& predictions, Tensor* correct,
                             Tensor& pooler_scratch, const Tensor& hidden, const Tensor& pooler_weight,
                             const Tensor& pooler_bias, const Tensor& classifier_weight,
                             const Tensor& classifier_bias, const Tensor* labels);

}  // namespace nlpf::ops
