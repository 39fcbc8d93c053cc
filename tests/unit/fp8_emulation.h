// The CPU reference of the fp8 inference engine (model/bert_inference.h, Precision::FP8) for the GPU tests:
// the engine's data path in fp32 on the CPU (ops/bert_fused.h) with the four encoder GEMMs' weights quantised
// to E4M3 per tensor (the packed QKV weight [3C, C] as one tensor, as the engine stores it) or per output
// channel (row), and decoded again, and their inputs quantised with the calibration's scales and decoded
// again. Everything else stays fp32: the engine's bf16 storage, its tanh GELU and its quantising of
// bf16-rounded activations are the remaining differences.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "backend/context.h"
#include "core/fp8.h"
#include "core/tensor.h"
#include "model/bert_config.h"
#include "model/fp8_calibration.h"
#include "ops/bert_fused.h"
#include "text/batching.h"

namespace nlpf::test {

// x (f32, in place) = decode(e4m3(x / scale)) * scale.
inline void quantize_dequantize(std::span<float> x, float scale) {
  std::vector<uint8_t> codes(x.size());
  quantize_e4m3(x, scale, codes);
  dequantize_e4m3(codes, scale, x);
}

// The E4M3 form, decoded, of `names` stacked by rows into one tensor [OC, C] with one scale (amax / 448 as
// quantize_weight_e4m3 per tensor) or one per row (PER_CHANNEL: each row's amax / 448): the engine's packed
// QKV weight [3C, C] or bias, or a single weight.
inline Tensor fp8_decoded_weight(const std::map<std::string, Tensor>& parameters,
                                 const std::vector<std::string>& names, bool quantise,
                                 Fp8Granularity granularity = Fp8Granularity::PER_TENSOR) {
  Shape shape = parameters.at(names[0]).shape();
  shape[0] *= static_cast<int64_t>(names.size());
  Tensor out = Tensor::empty(DType::F32, shape);
  char* dst = static_cast<char*>(out.raw_data());
  for (const std::string& n : names) {
    const Tensor& t = parameters.at(n);
    std::memcpy(dst, t.raw_data(), t.nbytes());
    dst += t.nbytes();
  }
  if (quantise) {
    const std::span<float> values(out.data<float>(), static_cast<size_t>(out.numel()));
    if (granularity == Fp8Granularity::PER_TENSOR) {
      quantize_dequantize(values, e4m3_scale_for_amax(amax_of(values, "weight")));
    } else {
      const auto C = static_cast<size_t>(out.numel() / out.dim(0));
      for (size_t row = 0; row < static_cast<size_t>(out.dim(0)); ++row) {
        const std::span<float> r = values.subspan(row * C, C);
        quantize_dequantize(r, e4m3_scale_for_amax(amax_of(r, "weight")));
      }
    }
  }
  return out;
}

// Logits [B, NL] of `batch` through the emulation: the engine's data path (ops/bert_fused.h on the CPU, f32,
// exact GELU) with every GEMM input of the encoder quantised and decoded on a copy, so the residuals keep the
// unquantised values as the engine's bf16 ones do. weight_scales as the engine's fp8_weight_scales.
inline std::vector<double> fp8_emulated_logits(const BertConfig& config,
                                               const std::map<std::string, Tensor>& parameters,
                                               const Fp8Calibration& calibration, const Batch& batch,
                                               Fp8Granularity weight_scales = Fp8Granularity::PER_TENSOR) {
  ExecutionContext& ctx = cpu_context();
  const int64_t B = batch.B, T = batch.T, C = config.hidden_size, I = config.intermediate_size,
                NL = config.num_labels();
  const auto ints = [&](const std::vector<int32_t>& v) {
    Tensor t = Tensor::empty(DType::I32, {B, T});
    std::memcpy(t.raw_data(), v.data(), t.nbytes());
    return t;
  };
  const Tensor ids = ints(batch.input_ids), types = ints(batch.token_type_ids),
               mask = ints(batch.attention_mask);
  const auto get = [&](const std::string& name) -> const Tensor& { return parameters.at(name); };
  const auto input_copy = [&](const Tensor& x, const std::string& site) {
    Tensor q = x.clone();
    quantize_dequantize(std::span<float>(q.data<float>(), static_cast<size_t>(q.numel())),
                        calibration.scale(site));
    return q;
  };
  Tensor hidden = Tensor::empty(DType::F32, {B, T, C}), qkv = Tensor::empty(DType::F32, {B, T, 3 * C}),
         context = Tensor::empty(DType::F32, {B, T, C}), attn = Tensor::empty(DType::F32, {B, T, C}),
         inter = Tensor::empty(DType::F32, {B, T, I});
  const double eps = config.layer_norm_eps;
  ops::embeddings_layer_norm_forward(
      ctx, hidden, ids, types, get("bert.embeddings.word_embeddings.weight"),
      get("bert.embeddings.position_embeddings.weight"), get("bert.embeddings.token_type_embeddings.weight"),
      get("bert.embeddings.LayerNorm.weight"), get("bert.embeddings.LayerNorm.bias"), eps);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".",
                      site = "layer." + std::to_string(l) + ".";
    const Tensor qkv_w =
        fp8_decoded_weight(parameters,
                           {p + "attention.self.query.weight", p + "attention.self.key.weight",
                            p + "attention.self.value.weight"},
                           true, weight_scales);
    const Tensor qkv_b = fp8_decoded_weight(
        parameters,
        {p + "attention.self.query.bias", p + "attention.self.key.bias", p + "attention.self.value.bias"},
        false);
    ops::linear_residual_forward(ctx, qkv, input_copy(hidden, site + "qkv"), qkv_w, qkv_b, nullptr);
    ops::fused_attention_forward(ctx, context, qkv, mask, config.num_attention_heads);
    ops::linear_residual_forward(
        ctx, attn, input_copy(context, site + "attention_output"),
        fp8_decoded_weight(parameters, {p + "attention.output.dense.weight"}, true, weight_scales),
        get(p + "attention.output.dense.bias"), &hidden);
    ops::layer_norm_inference_forward(ctx, attn, attn, get(p + "attention.output.LayerNorm.weight"),
                                      get(p + "attention.output.LayerNorm.bias"), eps);
    ops::linear_gelu_forward(
        ctx, inter, input_copy(attn, site + "intermediate"),
        fp8_decoded_weight(parameters, {p + "intermediate.dense.weight"}, true, weight_scales),
        get(p + "intermediate.dense.bias"));
    ops::linear_residual_forward(
        ctx, hidden, input_copy(inter, site + "output"),
        fp8_decoded_weight(parameters, {p + "output.dense.weight"}, true, weight_scales),
        get(p + "output.dense.bias"), &attn);
    ops::layer_norm_inference_forward(ctx, hidden, hidden, get(p + "output.LayerNorm.weight"),
                                      get(p + "output.LayerNorm.bias"), eps);
  }
  Tensor logits = Tensor::empty(DType::F32, {B, NL}), predictions = Tensor::empty(DType::I32, {B}),
         pooler_scratch = Tensor::empty(DType::F32, {B, C});
  ops::classifier_head_forward(ctx, logits, predictions, nullptr, pooler_scratch, hidden,
                               get("bert.pooler.dense.weight"), get("bert.pooler.dense.bias"),
                               get("classifier.weight"), get("classifier.bias"), nullptr);
  return std::vector<double>(logits.data<float>(), logits.data<float>() + logits.numel());
}

}  // namespace nlpf::test
