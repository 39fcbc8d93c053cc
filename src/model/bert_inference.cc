// BertInference (see bert_inference.h): weights to the device, workspaces, and the fused forward.
#include "model/bert_inference.h"

#include <algorithm>
#include <cstring>
#include <span>

#include "backend/device.h"
#include "core/error.h"
#include "core/fp8.h"
#include "model/fp8_calibration.h"
#include "ops/bert_fused.h"
#include "ops/quantize.h"
#include "ops/token_select.h"

namespace nlpf {

DType compute_dtype(Precision precision) {
  switch (precision) {
    case Precision::FP32:
    case Precision::TF32:
      return DType::F32;
    case Precision::BF16:
    case Precision::FP8:  // everything but the four encoder GEMMs' operands (bert_inference.h)
      return DType::BF16;
    case Precision::FP16:
      return DType::F16;
    default:
      break;
  }
  NLPF_THROW(ErrorCode::UNSUPPORTED, "precision ", precision_name(precision),
             " has no compute dtype in the inference engine yet");
}

namespace {

const Tensor& parameter(const std::map<std::string, Tensor>& parameters, const std::string& name) {
  const auto it = parameters.find(name);
  NLPF_CHECK(it != parameters.end(), ErrorCode::INVALID_ARGUMENT, "inference engine: parameter ", name,
             " is missing");
  NLPF_CHECK(it->second.dtype() == DType::F32 && it->second.device().type == DeviceType::CPU,
             ErrorCode::INVALID_ARGUMENT, "inference engine: parameter ", name,
             " must be an f32 host tensor");
  return it->second;
}

// Rows of a, then rows of b, then rows of c (the packed QKV weight [3C, C] or bias [3C]).
Tensor concat_rows(const Tensor& a, const Tensor& b, const Tensor& c) {
  Shape shape = a.shape();
  shape[0] *= 3;
  Tensor out = Tensor::empty(DType::F32, shape);
  char* dst = static_cast<char*>(out.raw_data());
  for (const Tensor* t : {&a, &b, &c}) {
    std::memcpy(dst, t->raw_data(), t->nbytes());
    dst += t->nbytes();
  }
  return out;
}

}  // namespace

Tensor BertInference::upload(const Tensor& host, DType dtype) {
  const Tensor converted = host.dtype() == dtype ? host : host.to(dtype);
  Tensor device = ctx_.device().type == DeviceType::CPU ? converted.clone() : to_device(ctx_, converted);
  weight_bytes_ += device.nbytes();
  return device;
}

Tensor BertInference::upload_scale(float value) {
  Tensor host = Tensor::empty(DType::F32, {1});
  host.data<float>()[0] = value;
  return upload(host, DType::F32);
}

// E4M3 weight (core/fp8.h: scale = amax / 448 of the tensor, or of each row per channel) and the calibrated
// input scale; per channel also that scale for every row of the largest batch (bert_inference.h).
BertInference::Fp8Linear BertInference::upload_fp8(const Tensor& weight, float x_scale,
                                                   Fp8Granularity granularity) {
  const int64_t OC = weight.dim(0), C = weight.dim(1);
  const QuantizedWeight q = quantize_weight_e4m3(
      std::span<const float>(weight.data<float>(), static_cast<size_t>(weight.numel())), OC, C, granularity);
  Tensor codes = Tensor::empty(DType::F8E4M3, {OC, C});
  std::memcpy(codes.raw_data(), q.codes.data(), q.codes.size());
  Fp8Linear out;
  out.weight = upload(codes, DType::F8E4M3);
  if (granularity == Fp8Granularity::PER_TENSOR) {
    out.weight_scale = upload_scale(q.scales[0]);
    out.x_scale = upload_scale(x_scale);
    out.gemm_x_scale = out.x_scale;
    return out;
  }
  Tensor scales = Tensor::empty(DType::F32, {OC});
  std::memcpy(scales.raw_data(), q.scales.data(), scales.nbytes());
  out.weight_scale = upload(scales, DType::F32);
  out.x_scale = upload_scale(x_scale);
  Tensor rows = Tensor::empty(DType::F32, {max_batch_ * max_tokens_});
  std::fill_n(rows.data<float>(), rows.numel(), x_scale);
  out.gemm_x_scale = upload(rows, DType::F32);
  return out;
}

std::optional<std::string> BertInference::unsupported_reason(const BertConfig& config, Device device) {
  if (device.type != DeviceType::CUDA) return std::nullopt;
  const int64_t HS = config.hidden_size / config.num_attention_heads;
  if (HS % 8 != 0 || HS > 128) {
    return "the CUDA inference engine's attention needs a head size that is a multiple of 8 up to 128; this "
           "model has hidden_size " +
           std::to_string(config.hidden_size) + " over " + std::to_string(config.num_attention_heads) +
           " heads (" + std::to_string(HS) + ")";
  }
  return std::nullopt;
}

BertInference::BertInference(ExecutionContext& ctx, const BertConfig& config,
                             const std::map<std::string, Tensor>& parameters, Precision precision,
                             int64_t max_batch_size, int64_t max_sequence_length,
                             const Fp8Calibration* calibration, Fp8Granularity fp8_weight_scales)
    : ctx_(ctx),
      config_(config),
      precision_(precision),
      dtype_(compute_dtype(precision)),
      max_batch_(max_batch_size),
      max_tokens_(max_sequence_length),
      f32_residual_(dtype_ == DType::F32 && kF32ResidualInLayerNormByDefault
                        ? ops::F32Residual::LAYER_NORM
                        : ops::F32Residual::GEMM_EPILOGUE),
      tf32_attention_tensor_cores_(precision == Precision::TF32),
      fp8_weight_scales_(fp8_weight_scales) {
  const bool fp8 = precision == Precision::FP8;
  NLPF_CHECK(
      ctx.device().type == DeviceType::CUDA || !fp8, ErrorCode::UNSUPPORTED,
      "inference engine on the CPU: fp8 needs E4M3 tensor cores (sm_89+), the CPU engine is fp32 only");
  NLPF_CHECK(ctx.device().type == DeviceType::CUDA || precision == Precision::FP32, ErrorCode::UNSUPPORTED,
             "inference engine on the CPU: fp32 only (", precision_name(precision), " asked)");
  if (fp8) {
    int capability = 0;
    for (const DeviceDescription& d : cuda_devices()) {
      if (d.device == ctx.device()) capability = d.compute_capability;
    }
    NLPF_CHECK(capability >= 89, ErrorCode::UNSUPPORTED,
               "inference engine: fp8 needs E4M3 tensor cores (sm_89 or newer); ",
               device_string(ctx.device()), " is sm_", capability);
    NLPF_CHECK(
        config.hidden_size % 16 == 0 && config.intermediate_size % 16 == 0, ErrorCode::UNSUPPORTED,
        "inference engine: fp8 GEMMs need hidden and intermediate sizes that are multiples of 16 (this "
        "model: ",
        config.hidden_size, ", ", config.intermediate_size, ")");
    NLPF_CHECK(
        calibration != nullptr, ErrorCode::INVALID_ARGUMENT,
        "inference engine: fp8 needs the activation scales of a calibration (model/fp8_calibration.h)");
  }
  if (const std::optional<std::string> reason = unsupported_reason(config, ctx.device())) {
    NLPF_THROW(ErrorCode::UNSUPPORTED, *reason);
  }
  NLPF_CHECK(
      max_batch_size > 0 && max_sequence_length > 0 && max_sequence_length <= config.max_position_embeddings,
      ErrorCode::INVALID_ARGUMENT, "inference engine: batch size ", max_batch_size, " and length ",
      max_sequence_length, " must be positive, the length at most ", config.max_position_embeddings);
  const MathMode math = precision == Precision::TF32 ? MathMode::TF32 : MathMode::IEEE_FP32;
  ctx.set_math_mode(math);
  const auto get = [&](const std::string& name) -> const Tensor& { return parameter(parameters, name); };
  word_ = upload(get("bert.embeddings.word_embeddings.weight"), dtype_);
  position_ = upload(get("bert.embeddings.position_embeddings.weight"), dtype_);
  token_type_ = upload(get("bert.embeddings.token_type_embeddings.weight"), dtype_);
  emb_ln_w_ = upload(get("bert.embeddings.LayerNorm.weight"), DType::F32);
  emb_ln_b_ = upload(get("bert.embeddings.LayerNorm.bias"), DType::F32);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    Layer layer;
    const Tensor qkv_w =
        concat_rows(get(p + "attention.self.query.weight"), get(p + "attention.self.key.weight"),
                    get(p + "attention.self.value.weight"));
    if (fp8) {
      // Sites as the fp32 model's observer names them (fp8_calibration.h); a calibration of another model
      // (fewer layers) fails here naming the missing site.
      const std::string site = "layer." + std::to_string(l) + ".";
      const float out_x_scale = calibration->scale(site + "output");
      layer.qkv8 = upload_fp8(qkv_w, calibration->scale(site + "qkv"), fp8_weight_scales);
      layer.attn_out8 = upload_fp8(get(p + "attention.output.dense.weight"),
                                   calibration->scale(site + "attention_output"), fp8_weight_scales);
      layer.inter8 = upload_fp8(get(p + "intermediate.dense.weight"),
                                calibration->scale(site + "intermediate"), fp8_weight_scales);
      layer.out8 = upload_fp8(get(p + "output.dense.weight"), out_x_scale, fp8_weight_scales);
      layer.out_x_scale_inverse = upload_scale(1.0f / out_x_scale);
    } else {
      layer.qkv_w = upload(qkv_w, dtype_);
      layer.attn_out_w = upload(get(p + "attention.output.dense.weight"), dtype_);
      layer.inter_w = upload(get(p + "intermediate.dense.weight"), dtype_);
      layer.out_w = upload(get(p + "output.dense.weight"), dtype_);
    }
    layer.qkv_b = upload(concat_rows(get(p + "attention.self.query.bias"), get(p + "attention.self.key.bias"),
                                     get(p + "attention.self.value.bias")),
                         dtype_);
    layer.attn_out_b = upload(get(p + "attention.output.dense.bias"), dtype_);
    layer.ln1_w = upload(get(p + "attention.output.LayerNorm.weight"), DType::F32);
    layer.ln1_b = upload(get(p + "attention.output.LayerNorm.bias"), DType::F32);
    layer.inter_b = upload(get(p + "intermediate.dense.bias"), dtype_);
    layer.out_b = upload(get(p + "output.dense.bias"), dtype_);
    layer.ln2_w = upload(get(p + "output.LayerNorm.weight"), DType::F32);
    layer.ln2_b = upload(get(p + "output.LayerNorm.bias"), DType::F32);
    layers_.push_back(std::move(layer));
  }
  pooler_w_ = upload(get("bert.pooler.dense.weight"), dtype_);
  pooler_b_ = upload(get("bert.pooler.dense.bias"), dtype_);
  classifier_w_ = upload(get("classifier.weight"), dtype_);
  classifier_b_ = upload(get("classifier.bias"), DType::F32);

  const int64_t N = max_batch_ * max_tokens_, C = config.hidden_size, I = config.intermediate_size;
  const auto workspace = [&](DType dtype, Shape shape) {
    Tensor t = empty_tensor(ctx_, dtype, std::move(shape));
    workspace_bytes_ += t.nbytes();
    return t;
  };
  hidden_ = workspace(dtype_, {N, C});
  qkv_ = workspace(dtype_, {N, 3 * C});
  context_ = workspace(dtype_, {N, C});
  attn_ = workspace(dtype_, {N, C});
  inter_ = workspace(dtype_, {N, I});
  pooler_scratch_ = workspace(dtype_, {max_batch_, C});
  first_token_residual_ = workspace(dtype_, {max_batch_, C});
  logits_ = workspace(DType::F32, {max_batch_, config.num_labels()});
  predictions_ = workspace(DType::I32, {max_batch_});
  if (fp8) {
    hidden_codes_ = workspace(DType::F8E4M3, {N, C});
    context_codes_ = workspace(DType::F8E4M3, {N, C});
    attn_codes_ = workspace(DType::F8E4M3, {N, C});
    inter_codes_ = workspace(DType::F8E4M3, {N, I});
    // Asked once here, at the planned shape, so that a refusal never surfaces inside a (captured) forward
    // (with per-channel weight scales the answer is no: backend/cuda/gemm.h).
    if (!layers_.empty()) {
      const Layer& w = layers_.front();
      fp8_gelu_codes_ = ops::linear_fp8_gelu_e4m3_supported(ctx_, inter_codes_, attn_codes_, w.inter8.weight,
                                                            w.inter8.gemm_x_scale, w.inter8.weight_scale,
                                                            w.inter_b, w.out_x_scale_inverse);
    }
  }
}

void BertInference::check_tf32_choice(bool on, const char* choice) const {
  NLPF_CHECK(!on || precision_ == Precision::TF32, ErrorCode::INVALID_ARGUMENT, "inference engine: the ",
             choice, " choice is tf32's (this engine is ", precision_name(precision_), ")");
}

void BertInference::set_tf32_gelu_epilogue(bool epilogue) {
  check_tf32_choice(epilogue, "GELU epilogue");
  f32_gelu_ = epilogue ? ops::F32Gelu::TANH_EPILOGUE : ops::F32Gelu::EXACT_PASS;
}

void BertInference::set_tf32_attention_tensor_cores(bool tensor_cores) {
  check_tf32_choice(tensor_cores, "tensor-core attention");
  tf32_attention_tensor_cores_ = tensor_cores;
}

void BertInference::set_f32_residual_in_layer_norm(bool in_layer_norm) {
  NLPF_CHECK(!in_layer_norm || dtype_ == DType::F32, ErrorCode::INVALID_ARGUMENT,
             "inference engine: the residual in the LayerNorm is fp32's and tf32's choice (this engine is ",
             precision_name(precision_), ")");
  f32_residual_ = in_layer_norm ? ops::F32Residual::LAYER_NORM : ops::F32Residual::GEMM_EPILOGUE;
}

BertInference::Rows BertInference::rows(int64_t B, int64_t T, bool first_token, const Tensor* padding) const {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size, R = first_token ? 1 : T;
  const bool fp8 = precision_ == Precision::FP8;
  return Rows{context_.view({B, R, C}),
              attn_.view({B, R, C}),
              inter_.view({B, R, I}),
              first_token ? first_token_residual_.view({B, 1, C}) : hidden_.view({B, T, C}),
              hidden_.view({B, R, C}),
              fp8 ? context_codes_.view({B, R, C}) : Tensor(),
              fp8 ? attn_codes_.view({B, R, C}) : Tensor(),
              fp8 ? inter_codes_.view({B, R, I}) : Tensor(),
              first_token ? nullptr : padding};
}

BertInference::Output BertInference::forward(const Tensor& input_ids, const Tensor& token_type_ids,
                                             const Tensor& attention_mask, const Tensor* labels,
                                             Tensor* correct) {
  NLPF_CHECK(input_ids.rank() == 2, ErrorCode::INVALID_ARGUMENT, "inference engine: input_ids has shape ",
             shape_string(input_ids.shape()), ", expected [B, T]");
  const int64_t B = input_ids.dim(0), T = input_ids.dim(1), C = config_.hidden_size,
                NL = config_.num_labels();
  NLPF_CHECK(B <= max_batch_ && T <= max_tokens_, ErrorCode::INVALID_ARGUMENT, "inference engine: batch [", B,
             ", ", T, "] exceeds the planned [", max_batch_, ", ", max_tokens_, "]");
  if (precision_ == Precision::FP8)
    return forward_fp8(input_ids, token_type_ids, attention_mask, labels, correct);
  const double eps = config_.layer_norm_eps;
  Tensor hidden = hidden_.view({B, T, C}), qkv = qkv_.view({B, T, 3 * C});
  const Tensor* padding = zero_padded_rows_ ? &attention_mask : nullptr;
  ops::embeddings_layer_norm_forward(ctx_, hidden, input_ids, token_type_ids, word_, position_, token_type_,
                                     emb_ln_w_, emb_ln_b_, eps, nullptr, padding);
  // What the pooler reads token 0 of: hidden [B,T,C], or [B,1,C] after a first-token-only last layer.
  Tensor head_input = hidden;
  Rows every_token = rows(B, T, false, padding), token_0 = rows(B, T, true, padding);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& w = layers_[l];
    ops::linear_residual_forward(ctx_, qkv, hidden, w.qkv_w, w.qkv_b, nullptr);
    const bool first_token = first_token_last_layer_ && l + 1 == layers_.size();
    Rows& r = first_token ? token_0 : every_token;
    if (first_token) {
      ops::first_query_attention_forward(ctx_, r.context, qkv, attention_mask, config_.num_attention_heads);
      Tensor residual = r.residual.view({B, C});
      ops::token_select_forward(ctx_, residual, hidden, 0);
      head_input = r.out;
    } else {
      ops::fused_attention_forward(ctx_, r.context, qkv, attention_mask, config_.num_attention_heads, nullptr,
                                   tf32_attention_tensor_cores_);
    }
    ops::linear_residual_layer_norm_forward(ctx_, r.attn, r.context, w.attn_out_w, w.attn_out_b, r.residual,
                                            w.ln1_w, w.ln1_b, eps, r.padding, f32_residual_);
    ops::linear_gelu_forward(ctx_, r.inter, r.attn, w.inter_w, w.inter_b, r.padding, f32_gelu_);
    ops::linear_residual_layer_norm_forward(ctx_, r.out, r.inter, w.out_w, w.out_b, r.attn, w.ln2_w, w.ln2_b,
                                            eps, r.padding, f32_residual_);
  }
  Output out{logits_.view({B, NL}), predictions_.view({B})};
  Tensor pooler_scratch = pooler_scratch_.view({B, C});
  ops::classifier_head_forward(ctx_, out.logits, out.predictions, correct, pooler_scratch, head_input,
                               pooler_w_, pooler_b_, classifier_w_, classifier_b_, labels);
  return out;
}

// The FP8 data path (bert_inference.h). forward() checked the shapes.
BertInference::Output BertInference::forward_fp8(const Tensor& input_ids, const Tensor& token_type_ids,
                                                 const Tensor& attention_mask, const Tensor* labels,
                                                 Tensor* correct) {
  const int64_t B = input_ids.dim(0), T = input_ids.dim(1), C = config_.hidden_size,
                NL = config_.num_labels();
  const double eps = config_.layer_norm_eps;
  Tensor hidden = hidden_.view({B, T, C}), qkv = qkv_.view({B, T, 3 * C}),
         hidden_codes = hidden_codes_.view({B, T, C});
  // LayerNorm outputs leave twice: bf16 (the residual of the next sum) and E4M3 (the next GEMM's input).
  const Tensor* padding = zero_padded_rows_ ? &attention_mask : nullptr;
  const ops::E4m3Copy first{&hidden_codes, layers_.empty() ? nullptr : &layers_.front().qkv8.x_scale};
  ops::embeddings_layer_norm_forward(ctx_, hidden, input_ids, token_type_ids, word_, position_, token_type_,
                                     emb_ln_w_, emb_ln_b_, eps, layers_.empty() ? nullptr : &first, padding);
  Tensor head_input = hidden;  // as forward()'s
  Rows every_token = rows(B, T, false, padding), token_0 = rows(B, T, true, padding);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& w = layers_[l];
    ops::linear_fp8_residual_forward(ctx_, qkv, hidden_codes, w.qkv8.weight, w.qkv8.gemm_x_scale,
                                     w.qkv8.weight_scale, w.qkv_b, nullptr);
    const bool last = l + 1 == layers_.size(), first_token = first_token_last_layer_ && last;
    Rows& r = first_token ? token_0 : every_token;
    if (first_token) {  // token 0's attention in bf16, then its E4M3 copy in a pass
      ops::first_query_attention_forward(ctx_, r.context, qkv, attention_mask, config_.num_attention_heads);
      ops::quantize_e4m3_forward(ctx_, r.context_codes, r.context, w.attn_out8.x_scale);
      Tensor residual = r.residual.view({B, C});
      ops::token_select_forward(ctx_, residual, hidden, 0);
      head_input = r.out;
    } else {
      // The tensor-core attention kernel writes the E4M3 copy in its epilogue (other head sizes: a pass).
      const ops::E4m3Copy context_copy{&r.context_codes, &w.attn_out8.x_scale};
      ops::fused_attention_forward(ctx_, r.context, qkv, attention_mask, config_.num_attention_heads,
                                   &context_copy);
    }
    ops::linear_fp8_residual_forward(ctx_, r.attn, r.context_codes, w.attn_out8.weight,
                                     w.attn_out8.gemm_x_scale, w.attn_out8.weight_scale, w.attn_out_b,
                                     &r.residual);
    const ops::E4m3Copy attn_copy{&r.attn_codes, &w.inter8.x_scale};
    ops::layer_norm_inference_forward(ctx_, r.attn, r.attn, w.ln1_w, w.ln1_b, eps, &attn_copy, r.padding);
    if (fp8_gelu_codes_) {
      ops::linear_fp8_gelu_forward(ctx_, r.inter_codes, r.attn_codes, w.inter8.weight, w.inter8.gemm_x_scale,
                                   w.inter8.weight_scale, w.inter_b, &w.out_x_scale_inverse);
    } else {
      ops::linear_fp8_gelu_forward(ctx_, r.inter, r.attn_codes, w.inter8.weight, w.inter8.gemm_x_scale,
                                   w.inter8.weight_scale, w.inter_b, nullptr);
      ops::quantize_e4m3_forward(ctx_, r.inter_codes, r.inter, w.out8.x_scale);
    }
    ops::linear_fp8_residual_forward(ctx_, r.out, r.inter_codes, w.out8.weight, w.out8.gemm_x_scale,
                                     w.out8.weight_scale, w.out_b, &r.attn);
    const ops::E4m3Copy next{&hidden_codes, last ? nullptr : &layers_[l + 1].qkv8.x_scale};
    ops::layer_norm_inference_forward(ctx_, r.out, r.out, w.ln2_w, w.ln2_b, eps, last ? nullptr : &next,
                                      r.padding);
  }
  Output out{logits_.view({B, NL}), predictions_.view({B})};
  Tensor pooler_scratch = pooler_scratch_.view({B, C});
  ops::classifier_head_forward(ctx_, out.logits, out.predictions, correct, pooler_scratch, head_input,
                               pooler_w_, pooler_b_, classifier_w_, classifier_b_, labels);
  return out;
}

}  // namespace nlpf
