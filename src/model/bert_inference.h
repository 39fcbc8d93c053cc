// BertInference: the inference engine of a BertForSequenceClassification on one execution context (the GPU
// path; on the CPU it runs the same fused-op chain, which is how it is tested against the CPU model). It
// keeps the weights in the compute dtype of its precision on the context's device (q, k, v packed into one
// [3C, C] weight; LayerNorm weights in fp32), plans every workspace once for batches up to (B_max, T_max),
// and then runs a batch with no allocation, no host synchronisation and no host work beyond the launches,
// which is what lets a pass be captured as CUDA graphs (model/inference_runner.h). Data path of one batch
// (docs/ENGINE.md):
//   embeddings + LayerNorm -> per layer: QKV GEMM -> fused attention -> output GEMM + bias + residual ->
//   LayerNorm -> GEMM + bias + GELU -> GEMM + bias + residual -> LayerNorm -> pooler GEMM on token 0 ->
//   tanh, classifier, argmax, correct count.
// Precisions (DESIGN §5): FP32 (IEEE), TF32 (f32 storage, TF32 GEMMs), BF16 and FP16 (16-bit weights and
// activations, fp32 accumulation and statistics), FP8 (CUDA, sm_89+): BF16 everywhere except the four encoder
// GEMMs of every layer (QKV, attention output, intermediate, output), whose weights are E4M3 with one scale
// per tensor (the default) or per output channel, and whose inputs are E4M3 with the calibrated activation
// scales (model/fp8_calibration.h):
//   embeddings + LayerNorm (bf16 + E4M3 copy) -> per layer: fp8 QKV GEMM -> attention (bf16 + E4M3 copy
//   from the tensor-core kernel's epilogue) -> fp8 output GEMM + bias + residual -> LayerNorm (bf16 + E4M3
//   copy) -> fp8 GEMM + bias + GELU written as E4M3 by cuBLASLt (else bf16 then a quantise pass, where the
//   library refuses it) -> fp8 GEMM + bias + residual -> LayerNorm (bf16 + E4M3 copy for the next layer's
//   QKV).
// The pooler and classifier stay bf16: the pooler reads one token per sequence (B rows, a negligible share of
// the work) and the classifier has NL = 2 outputs, not a multiple of 16 as fp8 GEMMs need; embeddings,
// LayerNorm and softmax are not GEMMs. Per-channel weight scales (cuBLASLt's outer-vector scaling) also give
// each GEMM its input's scale once per row (backend/cuda/gemm.h): a [B_max T_max] vector per GEMM, filled
// here once; that mode has no E4M3 output, so the intermediate GEMM then writes bf16 and a quantise pass
// follows (fp8_gelu_writes_codes() false).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/context.h"
#include "backend/precision.h"
#include "core/fp8.h"
#include "core/tensor.h"
#include "model/bert_config.h"
#include "ops/bert_fused.h"

namespace nlpf {

struct Fp8Calibration;

// The compute dtype of a precision (F32 for FP32 and TF32; UNSUPPORTED for the others).
DType compute_dtype(Precision precision);

class BertInference {
 public:
  // Copies `parameters` (f32 host tensors named as BertForSequenceClassification names them; config's
  // num_hidden_layers layers are used) to ctx's device in the compute dtype. UNSUPPORTED for a precision this
  // context cannot run (CPU: fp32 only; the CPU model runs bf16 itself); OUT_OF_MEMORY naming the size when
  // the weights or workspaces do not fit. FP8 needs `calibration` (the activation amax of every encoder GEMM
  // input of these layers; read here, not kept): INVALID_ARGUMENT without it or naming a site it lacks;
  // UNSUPPORTED on the CPU, below sm_89, or for a hidden or intermediate size not a multiple of 16.
  // fp8_weight_scales: one E4M3 scale per weight tensor, or one per output channel (row) of each weight.
  BertInference(ExecutionContext& ctx, const BertConfig& config,
                const std::map<std::string, Tensor>& parameters, Precision precision, int64_t max_batch_size,
                int64_t max_sequence_length, const Fp8Calibration* calibration = nullptr,
                Fp8Granularity fp8_weight_scales = Fp8Granularity::PER_TENSOR);

  // Why this engine cannot run `config` on `device` (the CUDA attention kernels need a head size that is a
  // multiple of 8 up to 128), or nullopt. Checked by the constructor; callers ask first to refuse before
  // work.
  static std::optional<std::string> unsupported_reason(const BertConfig& config, Device device);

  struct Output {
    Tensor logits;       // [B, NL] f32 on the device (a view of the workspace: valid until the next forward)
    Tensor predictions;  // [B] i32 on the device (likewise)
  };
  // One batch on the device: input_ids, token_type_ids, attention_mask [B,T] i32 (ids validated by batching),
  // labels [B] i32 and correct [1] i32 (+= correct predictions) given together or not at all.
  // B <= max_batch_size, T <= max_sequence_length. Queued on ctx's stream.
  Output forward(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                 const Tensor* labels, Tensor* correct);

  const BertConfig& config() const { return config_; }
  Precision precision() const { return precision_; }
  DType dtype() const { return dtype_; }
  int64_t max_batch_size() const { return max_batch_; }
  int64_t max_sequence_length() const { return max_tokens_; }
  // Bytes of weights and of workspaces on the device.
  size_t weight_bytes() const { return weight_bytes_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  ExecutionContext& context() { return ctx_; }
  // FP8: whether the intermediate GEMM writes its GELU output as E4M3 itself (cuBLASLt accepted the E4M3
  // output with the GELU epilogue on this device), or writes bf16 that a quantise pass converts.
  bool fp8_gelu_writes_codes() const { return fp8_gelu_codes_; }
  Fp8Granularity fp8_weight_scales() const { return fp8_weight_scales_; }
  // Whether the rows of padded tokens are zeros that no kernel reads (the default; ops/bert_fused.h: the
  // LayerNorms write them as 0, and at f32 the GEMMs without bias keep them 0 for the GELU pass and the
  // LayerNorms to skip), or every row is computed as HF does. Either way the logits are
  // the same bits (no output reads those rows); the choice moves only time and energy, which
  // bench/gpu_inference_bench measures.
  void set_zero_padded_rows(bool zero) { zero_padded_rows_ = zero; }
  bool zero_padded_rows() const { return zero_padded_rows_; }
  // tf32 only: the feed-forward GELU as cuBLASLt's epilogue of the intermediate GEMM (tanh form, as at 16
  // bits; no padded rows zeroed there) instead of the exact erf GELU pass (the default). For A/B measurements
  // in bench/gpu_inference_bench; the logits move by the tanh form's difference (ops/bert_fused.h).
  void set_tf32_gelu_epilogue(bool epilogue);
  bool tf32_gelu_epilogue() const { return f32_gelu_ == ops::F32Gelu::TANH_EPILOGUE; }
  // tf32 only: the attention's two products on the tensor cores (tf32 mma; head sizes 32 and 64; the
  // default of a tf32 engine, measured 2% faster on the H200) or, with false, the fp32 CUDA-core kernel
  // (every head size's). For A/B measurements in bench/gpu_inference_bench.
  void set_tf32_attention_tensor_cores(bool tensor_cores);
  bool tf32_attention_tensor_cores() const { return tf32_attention_tensor_cores_; }
  // Whether the last encoder layer computes token 0's ([CLS]) row alone past its QKV projection (which every
  // token's keys and values still need): its attention for that one query
  // (ops::first_query_attention_forward), then the attention-output, intermediate and output GEMMs and
  // LayerNorms on B rows instead of B T. The pooler reads nothing else, so the predictions are the full
  // layer's and the logits move only by the GEMMs' summation order (a GEMM of B rows may take another
  // kernel; at fp8 the attention's E4M3 copy comes from a quantisation pass, as at head sizes without the
  // tensor-core kernel, and token 0's attention is fp32 arithmetic). On by default: on the H200 bert-base ran
  // 4-6% faster with it at fp32 and tf32 (bench/RESULTS.md); false runs every token's rows, for A/B.
  static constexpr bool kFirstTokenLastLayerByDefault = true;
  void set_first_token_last_layer(bool first_token) { first_token_last_layer_ = first_token; }
  bool first_token_last_layer() const { return first_token_last_layer_; }
  // fp32 and tf32 on CUDA: the attention-output and output GEMMs with beta = 0 and their residual added in
  // the LayerNorm's pass beside the bias (ops::F32Residual::LAYER_NORM), or, with false, as the GEMM's C. The
  // same sums for the same GEMM kernel; cuBLASLt serves beta = 0 with other kernels (with beta = 1 the H200
  // ran Ampere kernels at a third of the sm90 ones' rate). On by default at fp32 and tf32: bert-base ran
  // 0.4-6% faster with it in all 24 A/B runs on the H200 (bench/RESULTS.md); other precisions add the
  // residual in the GEMM. The CPU engine chains the reference ops either way.
  static constexpr bool kF32ResidualInLayerNormByDefault = true;
  void set_f32_residual_in_layer_norm(bool in_layer_norm);
  bool f32_residual_in_layer_norm() const { return f32_residual_ == ops::F32Residual::LAYER_NORM; }

 private:
  // The E4M3 form of one encoder GEMM (FP8): weight codes [OC, C], its scales ([1] per tensor, [OC] per
  // channel), the scale of its input ([1], which the producers of the codes read), and the input scale as
  // the GEMM reads it: x_scale itself per tensor, per channel x_scale's value for each of [B_max T_max] rows
  // (device f32 all).
  struct Fp8Linear {
    Tensor weight, weight_scale, x_scale, gemm_x_scale;
  };
  struct Layer {
    // In FP8 the four GEMM weights are empty (their E4M3 forms below); the biases stay bf16.
    Tensor qkv_w, qkv_b, attn_out_w, attn_out_b, ln1_w, ln1_b, inter_w, inter_b, out_w, out_b, ln2_w, ln2_b;
    Fp8Linear qkv8, attn_out8, inter8, out8;
    Tensor out_x_scale_inverse;  // 1 / out8.x_scale: cuBLASLt's D scale of the intermediate GEMM
  };
  // The workspace views one layer works on past its attention: [B,T,*], or [B,1,*] (the leading B rows) in a
  // first-token-only last layer, whose residual is token 0's rows gathered into first_token_residual_ and
  // whose output lands in hidden's first B rows. FP8's E4M3 inputs likewise (empty in other precisions).
  // padding: the mask under which padded rows are zero (ops/bert_fused.h), never in a first-token layer.
  struct Rows {
    Tensor context, attn, inter, residual, out;
    Tensor context_codes, attn_codes, inter_codes;
    const Tensor* padding;
  };
  Rows rows(int64_t B, int64_t T, bool first_token, const Tensor* padding) const;
  Tensor upload(const Tensor& host, DType dtype);
  Tensor upload_scale(float value);
  Fp8Linear upload_fp8(const Tensor& weight, float x_scale, Fp8Granularity granularity);
  // INVALID_ARGUMENT when `on` asks a tf32-only choice (named `choice`) of an engine of another precision.
  void check_tf32_choice(bool on, const char* choice) const;
  Output forward_fp8(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                     const Tensor* labels, Tensor* correct);

  ExecutionContext& ctx_;
  BertConfig config_;
  Precision precision_;
  DType dtype_;
  int64_t max_batch_, max_tokens_;
  Tensor word_, position_, token_type_, emb_ln_w_, emb_ln_b_;
  std::vector<Layer> layers_;
  Tensor pooler_w_, pooler_b_, classifier_w_, classifier_b_;
  // Workspaces for [B_max * T_max] rows; a batch uses the leading [B, T] views.
  Tensor hidden_, qkv_, context_, attn_, inter_, pooler_scratch_, logits_, predictions_;
  Tensor first_token_residual_;  // [B_max, C]: the last layer's input at token 0 (set_first_token_last_layer)
  // FP8: the E4M3 inputs of the four GEMMs ([N, C] hidden, context, attention output; [N, I] intermediate).
  Tensor hidden_codes_, context_codes_, attn_codes_, inter_codes_;
  bool fp8_gelu_codes_ = false;
  bool zero_padded_rows_ = true;
  ops::F32Gelu f32_gelu_ = ops::F32Gelu::EXACT_PASS;
  ops::F32Residual f32_residual_;     // LAYER_NORM in an fp32 or tf32 engine (set_f32_residual_in_layer_norm)
  bool tf32_attention_tensor_cores_;  // true in a tf32 engine (set_tf32_attention_tensor_cores)
  bool first_token_last_layer_ = kFirstTokenLastLayerByDefault;
  Fp8Granularity fp8_weight_scales_ = Fp8Granularity::PER_TENSOR;
  size_t weight_bytes_ = 0, workspace_bytes_ = 0;
};

}  // namespace nlpf
