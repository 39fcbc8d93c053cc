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
// activations, fp32 accumulation and statistics). FP8 has its own path (not yet).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/context.h"
#include "backend/precision.h"
#include "core/tensor.h"
#include "model/bert_config.h"

namespace nlpf {

// The compute dtype of a precision (F32 for FP32 and TF32; UNSUPPORTED for the others).
DType compute_dtype(Precision precision);

class BertInference {
 public:
  // Copies `parameters` (f32 host tensors named as BertForSequenceClassification names them; config's
  // num_hidden_layers layers are used) to ctx's device in the compute dtype. UNSUPPORTED for a precision this
  // context cannot run (CPU: fp32 only; the CPU model runs bf16 itself); OUT_OF_MEMORY naming the size when
  // the weights or workspaces do not fit.
  BertInference(ExecutionContext& ctx, const BertConfig& config,
                const std::map<std::string, Tensor>& parameters, Precision precision, int64_t max_batch_size,
                int64_t max_sequence_length);

  // Why this engine cannot run `config` on `device` (the CUDA attention kernels need a head size that is a
  // multiple of 8 up to 128), or nullopt. Checked by the constructor; callers ask first to refuse before work.
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

 private:
  struct Layer {
    Tensor qkv_w, qkv_b, attn_out_w, attn_out_b, ln1_w, ln1_b, inter_w, inter_b, out_w, out_b, ln2_w, ln2_b;
  };
  Tensor upload(const Tensor& host, DType dtype);

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
  size_t weight_bytes_ = 0, workspace_bytes_ = 0;
};

}  // namespace nlpf
