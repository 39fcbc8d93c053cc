// BertInference (see bert_inference.h): weights to the device, workspaces, and the fused forward.
#include "model/bert_inference.h"

#include <cstring>

#include "core/error.h"
#include "ops/bert_fused.h"

namespace nlpf {

DType compute_dtype(Precision precision) {
  switch (precision) {
    case Precision::FP32:
    case Precision::TF32:
      return DType::F32;
    case Precision::BF16:
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
                             int64_t max_batch_size, int64_t max_sequence_length)
    : ctx_(ctx),
      config_(config),
      precision_(precision),
      dtype_(compute_dtype(precision)),
      max_batch_(max_batch_size),
      max_tokens_(max_sequence_length) {
  NLPF_CHECK(ctx.device().type == DeviceType::CUDA || precision == Precision::FP32, ErrorCode::UNSUPPORTED,
             "inference engine on the CPU: fp32 only (", precision_name(precision), " asked)");
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
    layer.qkv_w =
        upload(concat_rows(get(p + "attention.self.query.weight"), get(p + "attention.self.key.weight"),
                           get(p + "attention.self.value.weight")),
               dtype_);
    layer.qkv_b = upload(concat_rows(get(p + "attention.self.query.bias"), get(p + "attention.self.key.bias"),
                                     get(p + "attention.self.value.bias")),
                         dtype_);
    layer.attn_out_w = upload(get(p + "attention.output.dense.weight"), dtype_);
    layer.attn_out_b = upload(get(p + "attention.output.dense.bias"), dtype_);
    layer.ln1_w = upload(get(p + "attention.output.LayerNorm.weight"), DType::F32);
    layer.ln1_b = upload(get(p + "attention.output.LayerNorm.bias"), DType::F32);
    layer.inter_w = upload(get(p + "intermediate.dense.weight"), dtype_);
    layer.inter_b = upload(get(p + "intermediate.dense.bias"), dtype_);
    layer.out_w = upload(get(p + "output.dense.weight"), dtype_);
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
  logits_ = workspace(DType::F32, {max_batch_, config.num_labels()});
  predictions_ = workspace(DType::I32, {max_batch_});
}

BertInference::Output BertInference::forward(const Tensor& input_ids, const Tensor& token_type_ids,
                                             const Tensor& attention_mask, const Tensor* labels,
                                             Tensor* correct) {
  NLPF_CHECK(input_ids.rank() == 2, ErrorCode::INVALID_ARGUMENT, "inference engine: input_ids has shape ",
             shape_string(input_ids.shape()), ", expected [B, T]");
  const int64_t B = input_ids.dim(0), T = input_ids.dim(1), C = config_.hidden_size,
                I = config_.intermediate_size, NL = config_.num_labels();
  NLPF_CHECK(B <= max_batch_ && T <= max_tokens_, ErrorCode::INVALID_ARGUMENT, "inference engine: batch [", B,
             ", ", T, "] exceeds the planned [", max_batch_, ", ", max_tokens_, "]");
  const double eps = config_.layer_norm_eps;
  Tensor hidden = hidden_.view({B, T, C}), qkv = qkv_.view({B, T, 3 * C}), context = context_.view({B, T, C}),
         attn = attn_.view({B, T, C}), inter = inter_.view({B, T, I});
  ops::embeddings_layer_norm_forward(ctx_, hidden, input_ids, token_type_ids, word_, position_, token_type_,
                                     emb_ln_w_, emb_ln_b_, eps);
  for (const Layer& w : layers_) {
    ops::linear_residual_forward(ctx_, qkv, hidden, w.qkv_w, w.qkv_b, nullptr);
    ops::fused_attention_forward(ctx_, context, qkv, attention_mask, config_.num_attention_heads);
    ops::linear_residual_forward(ctx_, attn, context, w.attn_out_w, w.attn_out_b, &hidden);
    ops::layer_norm_inference_forward(ctx_, attn, attn, w.ln1_w, w.ln1_b, eps);
    ops::linear_gelu_forward(ctx_, inter, attn, w.inter_w, w.inter_b);
    ops::linear_residual_forward(ctx_, hidden, inter, w.out_w, w.out_b, &attn);
    ops::layer_norm_inference_forward(ctx_, hidden, hidden, w.ln2_w, w.ln2_b, eps);
  }
  Output out{logits_.view({B, NL}), predictions_.view({B})};
  Tensor pooler_scratch = pooler_scratch_.view({B, C});
  ops::classifier_head_forward(ctx_, out.logits, out.predictions, correct, pooler_scratch, hidden, pooler_w_,
                               pooler_b_, classifier_w_, classifier_b_, labels);
  return out;
}

}  // namespace nlpf
