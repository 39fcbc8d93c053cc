// BertForSequenceClassification on the ops of src/ops: HF's module order and math (modeling_bert.py:
// BertEmbeddings, BertSelfAttention (eager), BertSelfOutput, BertIntermediate, BertOutput, BertPooler, the
// classifier). Parameter gradients accumulate (+=), activation gradients overwrite (=); what TRAIN keeps
// and why is listed in bert_model.h.
#include "model/bert_model.h"

#include <string_view>

#include "core/error.h"
#include "core/random.h"
#include "model/batch_check.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/cross_entropy.h"
#include "ops/dropout.h"
#include "ops/embeddings.h"
#include "ops/gelu.h"
#include "ops/layer_norm.h"
#include "ops/linear.h"
#include "ops/tanh.h"
#include "ops/token_select.h"
#include "text/dataset.h"

namespace nlpf {
namespace {

constexpr uint64_t kSiteStreamBits = 32;
constexpr uint64_t kInitStreamBits = 40;  // stream indices per parameter in the random initialisation

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string layer_prefix(int64_t layer) {
  return "bert.encoder.layer." + std::to_string(layer) + ".";
}

// The values on ctx's device (host tensors stay on the host for the CPU context).
Tensor i32_from(ExecutionContext& ctx, const std::vector<int32_t>& values, const Shape& shape) {
  Tensor t = Tensor::empty(DType::I32, shape);
  std::copy(values.begin(), values.end(), t.data<int32_t>());
  return ctx.device().type == DeviceType::CPU ? t : to_device(ctx, t);
}

void check_dropout_p(double p, const char* name) {
  NLPF_CHECK(p >= 0 && p < 1, ErrorCode::INVALID_ARGUMENT, "dropout ", name, " = ", p, " is outside [0, 1)");
}

// The draw of one dropout site's mask (ops::DropoutDraw: drawn where it is applied, never stored on CUDA),
// keyed by (seed, step, site); `elements` is the mask's size, at most the site's 2^32 stream indices.
ops::DropoutDraw draw_of(uint64_t seed, DropoutStep step, uint64_t site, int64_t elements) {
  NLPF_CHECK(static_cast<uint64_t>(elements) <= (uint64_t{1} << kSiteStreamBits), ErrorCode::UNSUPPORTED,
             "a dropout mask of ", elements, " elements exceeds the 2^32 stream indices of one dropout site");
  if (step.in_context != nullptr) {  // dropout_offset(step, site) with the step read when the mask is drawn
    return {seed, dropout_offset(0, site), step.in_context, kDropoutSitesPerStep << kSiteStreamBits};
  }
  return {seed, dropout_offset(step.host, site), nullptr, 0};
}

}  // namespace

DropoutSettings DropoutSettings::from_config(const BertConfig& config, uint64_t seed) {
  return DropoutSettings{config.hidden_dropout_prob, config.attention_probs_dropout_prob,
                         config.effective_classifier_dropout(), seed};
}

uint64_t dropout_offset(uint64_t step, uint64_t site) {
  NLPF_CHECK(step < kDropoutStepLimit, ErrorCode::INVALID_ARGUMENT, "dropout step ", step,
             " exceeds the limit of ", kDropoutStepLimit, " steps per seed");
  NLPF_CHECK(site < kDropoutSitesPerStep, ErrorCode::INVALID_ARGUMENT, "dropout site ", site, " exceeds the ",
             kDropoutSitesPerStep, " sites of a step");
  return (step * kDropoutSitesPerStep + site) << kSiteStreamBits;
}

uint64_t embeddings_dropout_site() {
  return 0;
}

uint64_t layer_dropout_site(int64_t layer, DropoutSite site) {
  return 1 + 3 * static_cast<uint64_t>(layer) + static_cast<uint64_t>(site);
}

uint64_t classifier_dropout_site() {
  return kDropoutSitesPerStep - 1;
}

BertForSequenceClassification::BertForSequenceClassification(const Checkpoint& checkpoint)
    : config_(checkpoint.config), dropout_(DropoutSettings::from_config(checkpoint.config, 0)) {
  config_.validate(checkpoint.directory.string() + "/config.json");
  for (const ParameterSpec& spec : bert_parameter_specs(config_)) {
    const Tensor& t = checkpoint.tensor(spec.name);
    NLPF_CHECK(t.shape() == spec.shape, ErrorCode::INVALID_ARGUMENT, checkpoint.directory.string(),
               ": tensor ", spec.name, " has shape ", shape_string(t.shape()), ", expected ",
               shape_string(spec.shape));
    parameters_.emplace(spec.name, t.to(DType::F32));  // a copy: the model never aliases the checkpoint
  }
  pack_qkv(parameters_, packed_parameters_);
  init_gradients();
  bind_views();
}

BertForSequenceClassification::BertForSequenceClassification(const BertConfig& config, uint64_t init_seed)
    : config_(config), dropout_(DropoutSettings::from_config(config, 0)) {
  config_.validate("BertConfig");
  const std::vector<ParameterSpec> specs = bert_parameter_specs(config_);
  const auto range = static_cast<float>(config_.initializer_range);
  for (size_t i = 0; i < specs.size(); ++i) {
    const ParameterSpec& spec = specs[i];
    Tensor t = Tensor::zeros(DType::F32, spec.shape);
    const bool layer_norm = spec.name.find("LayerNorm") != std::string::npos;
    if (layer_norm && ends_with(spec.name, ".weight")) {
      float* w = t.data<float>();
      std::fill(w, w + t.numel(), 1.0f);
    } else if (ends_with(spec.name, ".weight")) {
      fill_normal(t, 0.0f, range, init_seed, static_cast<uint64_t>(i) << kInitStreamBits);
    }
    parameters_.emplace(spec.name, std::move(t));
  }
  // nn.Embedding(padding_idx=pad_token_id): HF v5's _init_weights zeroes that row after the normal draw.
  if (config_.pad_token_id && *config_.pad_token_id >= 0 && *config_.pad_token_id < config_.vocab_size) {
    Tensor& word = parameters_.at("bert.embeddings.word_embeddings.weight");
    float* row = word.data<float>() + *config_.pad_token_id * config_.hidden_size;
    std::fill(row, row + config_.hidden_size, 0.0f);
  }
  pack_qkv(parameters_, packed_parameters_);
  init_gradients();
  bind_views();
}

void BertForSequenceClassification::init_gradients() {
  gradients_.clear();
  for (const auto& [name, t] : parameters_) {
    Tensor g = f32(t.shape());
    fill_zero(*ctx_, g);
    gradients_.emplace(name, std::move(g));
  }
  pack_qkv(gradients_, packed_gradients_);
}

void BertForSequenceClassification::pack_qkv(std::map<std::string, Tensor>& tensors,
                                             std::vector<PackedQkv>& packed) const {
  const int64_t C = config_.hidden_size;
  packed.clear();
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const std::string prefix = layer_prefix(l) + "attention.self.";
    PackedQkv buffers{f32({3 * C, C}), f32({3 * C})};
    size_t part = 0;
    for (const char* name : {"query", "key", "value"}) {
      Tensor& weight = tensors.at(prefix + name + ".weight");
      Tensor& bias = tensors.at(prefix + name + ".bias");
      Tensor weight_view = buffers.w.view({C, C}, part * C * C * sizeof(float));
      Tensor bias_view = buffers.b.view({C}, part * C * sizeof(float));
      copy_tensor(*ctx_, weight_view, weight);
      copy_tensor(*ctx_, bias_view, bias);
      weight = std::move(weight_view);
      bias = std::move(bias_view);
      ++part;
    }
    packed.push_back(std::move(buffers));
  }
}

Tensor BertForSequenceClassification::f32(const Shape& shape) const {
  return empty_tensor(*ctx_, DType::F32, shape);
}

Tensor BertForSequenceClassification::half(const Shape& shape) const {
  return empty_tensor(*ctx_, *compute_dtype(), shape);
}

std::optional<DType> BertForSequenceClassification::compute_dtype() const {
  if (precision_ != Precision::FP32) return std::nullopt;  // bf16 inference weights: their own path
  switch (ctx_->math_mode()) {
    case MathMode::BF16:
      return DType::BF16;
    case MathMode::FP16:
      return DType::F16;
    default:
      return std::nullopt;
  }
}

void BertForSequenceClassification::refresh_compute_weights() {
  // to_context and truncate_layers drop the copies; a new math mode on the context changes their dtype.
  if (!compute_weights_.empty() && compute_weights_[0].qkv.dtype() != *compute_dtype())
    compute_weights_.clear();
  if (compute_weights_.empty()) {
    for (const LayerTensors& w : p_.layers) {
      compute_weights_.push_back({half(w.qkv_w.shape()), half(w.attn_out_w.shape()), half(w.inter_w.shape()),
                                  half(w.out_w.shape())});
    }
  }
  std::vector<ops::ConvertPair> pairs;
  for (size_t l = 0; l < compute_weights_.size(); ++l) {
    ComputeWeights& c = compute_weights_[l];
    const LayerTensors& w = p_.layers[l];
    pairs.insert(
        pairs.end(),
        {{&c.qkv, &w.qkv_w}, {&c.attn_out, &w.attn_out_w}, {&c.inter, &w.inter_w}, {&c.out, &w.out_w}});
  }
  ops::convert_many(*ctx_, pairs);
}

void BertForSequenceClassification::to_context(ExecutionContext& ctx) {
  saved_.reset();
  eval_buffers_.reset();
  compute_weights_.clear();
  for (auto& [name, t] : parameters_) {
    Tensor moved = empty_tensor(ctx, DType::F32, t.shape());
    copy_tensor(ctx, moved, t);
    t = std::move(moved);
  }
  for (auto& [name, g] : gradients_) {
    Tensor moved = empty_tensor(ctx, DType::F32, g.shape());
    copy_tensor(ctx, moved, g);
    g = std::move(moved);
  }
  ctx_ = &ctx;
  pack_qkv(parameters_, packed_parameters_);
  if (!inference_only_) pack_qkv(gradients_, packed_gradients_);
  ctx.synchronize();  // the copies have landed before the old storage goes with this function's handles
  bind_views();
}

std::map<std::string, Tensor> BertForSequenceClassification::to_checkpoint_tensors() const {
  if (ctx_->device().type == DeviceType::CPU) return parameters_;
  std::map<std::string, Tensor> host;
  for (const auto& [name, t] : parameters_) host.emplace(name, to_host(*ctx_, t));
  return host;
}

BertForSequenceClassification::ModelTensors BertForSequenceClassification::views_of(
    const std::map<std::string, Tensor>& tensors, const std::vector<PackedQkv>& packed) const {
  const auto get = [&](const std::string& name) { return tensors.at(name); };
  ModelTensors m;
  m.word = get("bert.embeddings.word_embeddings.weight");
  m.position = get("bert.embeddings.position_embeddings.weight");
  m.token_type = get("bert.embeddings.token_type_embeddings.weight");
  m.emb_ln_w = get("bert.embeddings.LayerNorm.weight");
  m.emb_ln_b = get("bert.embeddings.LayerNorm.bias");
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const std::string p = layer_prefix(l);
    LayerTensors w;
    w.q_w = get(p + "attention.self.query.weight");
    w.q_b = get(p + "attention.self.query.bias");
    w.k_w = get(p + "attention.self.key.weight");
    w.k_b = get(p + "attention.self.key.bias");
    w.v_w = get(p + "attention.self.value.weight");
    w.v_b = get(p + "attention.self.value.bias");
    w.attn_out_w = get(p + "attention.output.dense.weight");
    w.attn_out_b = get(p + "attention.output.dense.bias");
    w.ln1_w = get(p + "attention.output.LayerNorm.weight");
    w.ln1_b = get(p + "attention.output.LayerNorm.bias");
    w.inter_w = get(p + "intermediate.dense.weight");
    w.inter_b = get(p + "intermediate.dense.bias");
    w.out_w = get(p + "output.dense.weight");
    w.out_b = get(p + "output.dense.bias");
    w.ln2_w = get(p + "output.LayerNorm.weight");
    w.ln2_b = get(p + "output.LayerNorm.bias");
    if (static_cast<size_t>(l) < packed.size()) {
      w.qkv_w = packed[l].w;
      w.qkv_b = packed[l].b;
    }
    m.layers.push_back(std::move(w));
  }
  m.pooler_w = get("bert.pooler.dense.weight");
  m.pooler_b = get("bert.pooler.dense.bias");
  m.classifier_w = get("classifier.weight");
  m.classifier_b = get("classifier.bias");
  return m;
}

void BertForSequenceClassification::bind_views() {
  p_ = views_of(parameters_, packed_parameters_);
  dp_ = inference_only_ ? ModelTensors{} : views_of(gradients_, packed_gradients_);
}

void BertForSequenceClassification::drop_gradients() {
  saved_.reset();
  inference_only_ = true;
  gradients_.clear();
  packed_gradients_.clear();
  bind_views();
}

void BertForSequenceClassification::set_dropout(const DropoutSettings& dropout) {
  check_dropout_p(dropout.hidden_p, "hidden_p");
  check_dropout_p(dropout.attention_p, "attention_p");
  check_dropout_p(dropout.classifier_p, "classifier_p");
  saved_.reset();  // backward() must regenerate the masks its forward drew
  dropout_ = dropout;
}

void BertForSequenceClassification::zero_grad() {
  for (auto& [name, g] : gradients_) fill_zero(*ctx_, g);
}

void BertForSequenceClassification::truncate_layers(int64_t k) {
  NLPF_CHECK(k >= 1 && k <= config_.num_hidden_layers, ErrorCode::INVALID_ARGUMENT,
             "truncate_layers: k = ", k, " is outside [1, ", config_.num_hidden_layers,
             "] (the model's layers)");
  saved_.reset();
  for (int64_t l = k; l < config_.num_hidden_layers; ++l) {
    const std::string p = layer_prefix(l);
    std::erase_if(parameters_, [&](const auto& item) { return item.first.starts_with(p); });
    std::erase_if(gradients_, [&](const auto& item) { return item.first.starts_with(p); });
  }
  config_.num_hidden_layers = k;
  packed_parameters_.resize(std::min(packed_parameters_.size(), static_cast<size_t>(k)));
  packed_gradients_.resize(std::min(packed_gradients_.size(), static_cast<size_t>(k)));
  compute_weights_.clear();
  bind_views();
}

int64_t BertForSequenceClassification::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : parameters_) n += t.numel();
  return n;
}

BertForSequenceClassification::LayerActivations BertForSequenceClassification::allocate_layer(
    int64_t B, int64_t T) const {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size, NH = config_.num_attention_heads;
  LayerActivations a;
  if (packed_projection()) {
    a.qkv = f32({B, T, 3 * C});
  } else {
    a.q = f32({B, T, C});
    a.k = f32({B, T, C});
    a.v = f32({B, T, C});
  }
  const bool mixed = compute_dtype().has_value();
  a.probs = f32({B, NH, T, T});
  a.context = mixed ? half({B, T, C}) : f32({B, T, C});
  a.sum1 = f32({B, T, C});
  a.mean1 = f32({B * T});
  a.rstd1 = f32({B * T});
  a.h1 = f32({B, T, C});
  if (mixed) a.h1_16 = half({B, T, C});
  a.inter = f32({B, T, I});
  a.sum2 = f32({B, T, C});
  a.mean2 = f32({B * T});
  a.rstd2 = f32({B * T});
  return a;  // h2 (and h2_16) are the caller's: its own buffers in TRAIN, the layer input's in EVAL
}

// One encoder layer, HF's BertLayer: q, k, v -> softmax(q k^T / sqrt(HS) + padding mask) -> dropout ->
// context -> output dense -> dropout -> + x -> LayerNorm (h1); intermediate dense -> GELU -> output dense
// -> dropout -> + h1 -> LayerNorm (h2). x [B,T,C]; a.h2 may share x's buffer (x is last read before h2 is
// written).
void BertForSequenceClassification::layer_forward(int64_t layer, const Tensor& x, const Tensor* x16,
                                                  LayerActivations& a, const Tensor& attention_mask,
                                                  bool train, DropoutStep step) const {
  const LayerTensors& w = p_.layers[layer];
  const bool mixed = x16 != nullptr;  // 16-bit GEMM operands (see Memory)
  const ComputeWeights* c = mixed ? &compute_weights_[layer] : nullptr;
  const double eps = config_.layer_norm_eps;
  const double hidden_p = train ? dropout_.hidden_p : 0.0, attention_p = train ? dropout_.attention_p : 0.0;
  const uint64_t seed = dropout_.seed;

  const auto observe = [&](const char* site, const Tensor& input) {
    if (observer_ && !train) observer_("layer." + std::to_string(layer) + "." + site, input, &attention_mask);
  };
  observe("qkv", x);
  const ops::DropoutDraw attention_draw =
      draw_of(seed, step, layer_dropout_site(layer, DropoutSite::ATTENTION_PROBS), a.probs.numel());
  const ops::AttentionDropout attention_dropout{nullptr, attention_p,
                                                attention_p > 0 ? &attention_draw : nullptr};
  if (packed_projection()) {
    ops::linear_forward(*ctx_, a.qkv, mixed ? *x16 : x, mixed ? c->qkv : w.qkv_w, w.qkv_b);
    ops::attention_forward_packed(*ctx_, a.context, a.probs, a.qkv, attention_mask,
                                  config_.num_attention_heads, attention_dropout);
  } else {
    ops::linear_forward(*ctx_, a.q, x, w.q_w, w.q_b);
    ops::linear_forward(*ctx_, a.k, x, w.k_w, w.k_b);
    ops::linear_forward(*ctx_, a.v, x, w.v_w, w.v_b);
    ops::attention_forward(*ctx_, a.context, a.probs, a.q, a.k, a.v, attention_mask,
                           config_.num_attention_heads, attention_dropout);
  }

  observe("attention_output", a.context);
  ops::linear_forward(*ctx_, a.sum1, a.context, mixed ? c->attn_out : w.attn_out_w, w.attn_out_b);
  // Dropout, the residual and LayerNorm in one pass (sum1 kept for the backward).
  ops::dropout_add_layer_norm_forward(
      *ctx_, a.sum1, a.h1, a.mean1, a.rstd1, a.sum1, x, w.ln1_w, w.ln1_b, eps, hidden_p,
      draw_of(seed, step, layer_dropout_site(layer, DropoutSite::ATTENTION_OUTPUT), a.sum1.numel()),
      mixed ? &a.h1_16 : nullptr);

  observe("intermediate", a.h1);
  ops::linear_forward(*ctx_, a.inter, mixed ? a.h1_16 : a.h1, mixed ? c->inter : w.inter_w, w.inter_b);
  ops::gelu_forward(*ctx_, a.gelu_out, a.inter);
  observe("output", a.gelu_out);
  ops::linear_forward(*ctx_, a.sum2, a.gelu_out, mixed ? c->out : w.out_w, w.out_b);
  ops::dropout_add_layer_norm_forward(
      *ctx_, a.sum2, a.h2, a.mean2, a.rstd2, a.sum2, a.h1, w.ln2_w, w.ln2_b, eps, hidden_p,
      draw_of(seed, step, layer_dropout_site(layer, DropoutSite::FEED_FORWARD_OUTPUT), a.sum2.numel()),
      mixed ? &a.h2_16 : nullptr);
}

ModelOutput BertForSequenceClassification::forward(const Batch& batch, ForwardMode mode, uint64_t step) {
  return forward_impl(batch, mode, step, nullptr);
}

ModelOutput BertForSequenceClassification::forward(const Batch& batch, ForwardMode mode, uint64_t step,
                                                   double* loss) {
  NLPF_CHECK(loss != nullptr, ErrorCode::INVALID_ARGUMENT, "forward: null loss destination");
  return forward_impl(batch, mode, step, loss);
}

void BertForSequenceClassification::check_train(DropoutStep step) const {
  NLPF_CHECK(!inference_only_, ErrorCode::INVALID_ARGUMENT,
             "forward: a TRAIN forward on an inference-only model (its gradients were dropped)");
  NLPF_CHECK(step.host < kDropoutStepLimit, ErrorCode::INVALID_ARGUMENT, "forward: step ", step.host,
             " exceeds the dropout stream's limit of ", kDropoutStepLimit, " steps per seed");
}

bool BertForSequenceClassification::check_batch(const Batch& batch) const {
  const int64_t B = batch.B, T = batch.T, NL = config_.num_labels();
  NLPF_CHECK(B > 0 && T > 0, ErrorCode::INVALID_ARGUMENT, "batch: B = ", B, ", T = ", T,
             ", expected positive sizes");
  const auto expect_size = [&](const std::vector<int32_t>& v, int64_t n, const char* field) {
    NLPF_CHECK(static_cast<int64_t>(v.size()) == n, ErrorCode::INVALID_ARGUMENT, "batch: ", field, " has ",
               v.size(), " values, expected ", n, " (B = ", B, ", T = ", T, ")");
  };
  expect_size(batch.input_ids, B * T, "input_ids");
  expect_size(batch.token_type_ids, B * T, "token_type_ids");
  expect_size(batch.attention_mask, B * T, "attention_mask");
  NLPF_CHECK(T <= config_.max_position_embeddings, ErrorCode::INVALID_ARGUMENT, "batch: T = ", T,
             " exceeds max_position_embeddings = ", config_.max_position_embeddings, " of the model");
  // HF computes the loss when labels are given; a batch of an unlabelled split (kNoLabel) has none.
  bool has_loss = !batch.labels.empty();
  if (has_loss) {
    expect_size(batch.labels, B, "labels");
    for (int32_t label : batch.labels) has_loss = has_loss && label != kNoLabel;
  }
  if (has_loss) {
    NLPF_CHECK(NL >= 2, ErrorCode::UNSUPPORTED, "model: num_labels = ", NL,
               " is regression in HF (MSE loss); only single-label classification is supported");
    NLPF_CHECK(!config_.problem_type || *config_.problem_type == "single_label_classification",
               ErrorCode::UNSUPPORTED, "model: problem_type \"", *config_.problem_type,
               "\" is not supported (only single_label_classification)");
  }
  // The CPU kernels check ids and labels themselves; a CUDA kernel cannot throw, so a batch bound for the GPU
  // is checked before it is uploaded.
  if (ctx_->device().type != DeviceType::CPU) check_batch_ranges(batch, config_, "example");
  return has_loss;
}

BatchTensors BertForSequenceClassification::upload_batch(const Batch& batch) const {
  return upload_checked(batch, check_batch(batch));
}

BatchTensors BertForSequenceClassification::upload_checked(const Batch& batch, bool has_loss) const {
  BatchTensors t;
  t.has_loss = has_loss;
  t.input_ids = i32_from(*ctx_, batch.input_ids, {batch.B, batch.T});
  t.token_type_ids = i32_from(*ctx_, batch.token_type_ids, {batch.B, batch.T});
  t.attention_mask = i32_from(*ctx_, batch.attention_mask, {batch.B, batch.T});
  if (t.has_loss) t.labels = i32_from(*ctx_, batch.labels, {batch.B});
  return t;
}

void BertForSequenceClassification::upload_batch_into(const Batch& batch, BatchTensors& into) const {
  const bool has_loss = check_batch(batch);
  NLPF_CHECK(into.input_ids.rank() == 2 && into.input_ids.dim(0) == batch.B &&
                 into.input_ids.dim(1) == batch.T && has_loss == into.has_loss,
             ErrorCode::INVALID_ARGUMENT, "upload_batch_into: a batch of B = ", batch.B, ", T = ", batch.T,
             has_loss ? " with" : " without", " labels into tensors of another shape or labelling");
  const bool on_device = ctx_->device().type != DeviceType::CPU;
  const auto copy = [&](Tensor& dst, const std::vector<int32_t>& values) {
    ctx_->copy_bytes(dst.raw_data(), on_device, values.data(), false, values.size() * sizeof(int32_t));
  };
  copy(into.input_ids, batch.input_ids);
  copy(into.token_type_ids, batch.token_type_ids);
  copy(into.attention_mask, batch.attention_mask);
  if (has_loss) copy(into.labels, batch.labels);
}

ModelOutput BertForSequenceClassification::forward_train(const BatchTensors& inputs, DropoutStep step,
                                                         double* loss) {
  NLPF_CHECK(loss != nullptr && inputs.has_loss, ErrorCode::INVALID_ARGUMENT,
             "forward_train: needs a loss destination and a batch with labels");
  check_train(step);
  return forward_tensors(inputs, ForwardMode::TRAIN, step, loss);
}

ModelOutput BertForSequenceClassification::forward_impl(const Batch& batch, ForwardMode mode, uint64_t step,
                                                        double* loss) {
  if (mode == ForwardMode::TRAIN) check_train(DropoutStep{step, nullptr});
  const bool has_loss = check_batch(batch);
  NLPF_CHECK(loss == nullptr || (has_loss && mode == ForwardMode::TRAIN), ErrorCode::INVALID_ARGUMENT,
             "forward: a loss destination needs a TRAIN forward of a batch with labels");
  saved_.reset();  // a previous forward's activations go before the new batch's tensors
  return forward_tensors(upload_checked(batch, has_loss), mode, DropoutStep{step, nullptr}, loss);
}

ModelOutput BertForSequenceClassification::forward_tensors(const BatchTensors& inputs, ForwardMode mode,
                                                           DropoutStep step, double* loss) {
  const int64_t B = inputs.input_ids.dim(0), T = inputs.input_ids.dim(1), C = config_.hidden_size;
  const int64_t NL = config_.num_labels(), L = config_.num_hidden_layers;
  const bool train = mode == ForwardMode::TRAIN, has_loss = inputs.has_loss;  // the caller ran check_train

  saved_.reset();  // a previous forward's activations go first, so they never coexist with new ones
  SavedActivations act;
  act.input_ids = inputs.input_ids;
  act.token_type_ids = inputs.token_type_ids;
  act.attention_mask = inputs.attention_mask;
  act.labels = inputs.labels;
  act.has_loss = has_loss;
  act.step = step;

  const bool mixed = compute_dtype().has_value();
  if (mixed) refresh_compute_weights();
  const double hidden_p = train ? dropout_.hidden_p : 0.0;

  // Embeddings: word + position + token type -> LayerNorm -> dropout. In EVAL the LayerNorm input lives in
  // the layer scratch's sum1 and the output in `hidden`, which every layer then overwrites in place.
  Tensor hidden;
  if (train) {
    eval_buffers_.reset();  // never alongside TRAIN's activations
    hidden = f32({B, T, C});
    act.emb_sum = f32({B, T, C});
    act.emb_mean = f32({B * T});
    act.emb_rstd = f32({B * T});
    if (mixed) act.emb_out16 = half({B, T, C});
  } else {
    const bool mixed_buffers = eval_buffers_ && eval_buffers_->hidden16.numel() > 0;
    if (!eval_buffers_ || eval_buffers_->B != B || eval_buffers_->T != T || mixed_buffers != mixed) {
      eval_buffers_.reset();  // the old set goes first, so the two never coexist
      EvalBuffers e;
      e.B = B;
      e.T = T;
      e.layer = allocate_layer(B, T);
      e.hidden = f32({B, T, C});
      e.layer.h2 = e.hidden;
      e.emb_mean = f32({B * T});
      e.emb_rstd = f32({B * T});
      if (mixed) {
        e.hidden16 = half({B, T, C});
        e.layer.h2_16 = e.hidden16;
      }
      // GELU in place in f32 (EVAL never needs its input again); a 16-bit buffer of its own in mixed
      // precision.
      e.layer.gelu_out = mixed ? half({B, T, config_.intermediate_size}) : e.layer.inter;
      eval_buffers_ = std::move(e);
    }
    hidden = eval_buffers_->hidden;
    act.emb_out16 = eval_buffers_->hidden16;
    act.emb_sum = eval_buffers_->layer.sum1;
    act.emb_mean = eval_buffers_->emb_mean;
    act.emb_rstd = eval_buffers_->emb_rstd;
  }
  ops::embeddings_forward(*ctx_, act.emb_sum, act.input_ids, act.token_type_ids, p_.word, p_.position,
                          p_.token_type);
  // The 16-bit copy of the embeddings' output (mixed precision) comes from their last pass: the dropout's,
  // else the LayerNorm's.
  Tensor* emb_out16 = mixed ? &act.emb_out16 : nullptr;
  ops::layer_norm_forward(*ctx_, hidden, act.emb_mean, act.emb_rstd, act.emb_sum, p_.emb_ln_w, p_.emb_ln_b,
                          config_.layer_norm_eps, hidden_p > 0 ? nullptr : emb_out16);
  if (hidden_p > 0) {
    ops::dropout_forward(*ctx_, hidden, hidden, hidden_p,
                         draw_of(dropout_.seed, step, embeddings_dropout_site(), hidden.numel()), emb_out16);
  }
  act.emb_out = hidden;

  const Tensor* x = &act.emb_out;
  const Tensor* x16 = emb_out16;
  act.layers.reserve(static_cast<size_t>(L));  // x points into act.layers
  for (int64_t l = 0; l < L; ++l) {
    if (train) {
      act.layers.push_back(allocate_layer(B, T));
      LayerActivations& a = act.layers.back();
      a.h2 = f32({B, T, C});
      if (mixed) a.h2_16 = half({B, T, C});
      a.gelu_out = mixed ? half({B, T, config_.intermediate_size}) : f32({B, T, config_.intermediate_size});
      layer_forward(l, *x, x16, a, act.attention_mask, /*train=*/true, step);
      x = &a.h2;
      x16 = mixed ? &a.h2_16 : nullptr;
    } else {
      layer_forward(l, *x, x16, eval_buffers_->layer, act.attention_mask, /*train=*/false, step);
    }
  }

  // Pooler (dense + tanh on token 0, HF's BertPooler) -> dropout -> classifier.
  act.pooler_in = f32({B, C});
  act.pooled = f32({B, C});
  ops::token_select_forward(*ctx_, act.pooler_in, *x, 0);
  if (observer_ && !train) observer_("pooler", act.pooler_in, nullptr);
  ops::linear_forward(*ctx_, act.pooled, act.pooler_in, p_.pooler_w, p_.pooler_b);
  ops::tanh_forward(*ctx_, act.pooled, act.pooled);
  act.classifier_in = act.pooled;
  const double classifier_p = train ? dropout_.classifier_p : 0.0;
  if (classifier_p > 0) {
    act.classifier_in = f32({B, C});
    ops::dropout_forward(*ctx_, act.classifier_in, act.pooled, classifier_p,
                         draw_of(dropout_.seed, step, classifier_dropout_site(), act.pooled.numel()));
  }
  ModelOutput output;
  output.logits = f32({B, NL});
  if (observer_ && !train) observer_("classifier", act.classifier_in, nullptr);
  ops::linear_forward(*ctx_, output.logits, act.classifier_in, p_.classifier_w, p_.classifier_b);
  if (has_loss) {
    act.ce_probs = f32({B, NL});
    if (loss != nullptr) {
      ops::cross_entropy_forward(*ctx_, act.ce_probs, output.logits, act.labels, loss);
    } else {
      output.loss = ops::cross_entropy_forward(*ctx_, act.ce_probs, output.logits, act.labels);
    }
  }
  if (train) saved_ = std::move(act);
  return output;
}

void BertForSequenceClassification::layer_backward(int64_t layer, Tensor& dh, const Tensor& x,
                                                   const Tensor* x16, const LayerActivations& a,
                                                   const Tensor& attention_mask, DropoutStep step,
                                                   BackwardScratch& s) {
  const LayerTensors& w = p_.layers[layer];
  LayerTensors& dw = dp_.layers[layer];
  const double hidden_p = dropout_.hidden_p, attention_p = dropout_.attention_p;
  const uint64_t seed = dropout_.seed;
  const bool mixed = x16 != nullptr;  // the GEMMs read 16-bit operands (see Memory)
  const ComputeWeights* c = mixed ? &compute_weights_[layer] : nullptr;

  // Output LayerNorm, then the residual: dh1 gets dsum2 directly and through the feed-forward block (the
  // intermediate GEMM adds its input gradient to dsum2 in place: s.dsum becomes dh1).
  constexpr ops::GradientOutput kAdd = ops::GradientOutput::ACCUMULATE;
  // The output dense's dy is the LayerNorm's dx after the dropout, in 16 bits in mixed precision: a copy the
  // LayerNorm backward writes in its own pass (dx itself where neither applies).
  const bool copy = mixed || hidden_p > 0;
  const ops::LayerNormGradientCopy ffn_copy{
      &s.dtmp, hidden_p,
      draw_of(seed, step, layer_dropout_site(layer, DropoutSite::FEED_FORWARD_OUTPUT), s.dsum.numel())};
  ops::layer_norm_backward(*ctx_, s.dsum, dw.ln2_w, dw.ln2_b, dh, a.sum2, w.ln2_w, a.mean2, a.rstd2,
                           copy ? &ffn_copy : nullptr);
  const Tensor* dy = copy ? &s.dtmp : &s.dsum;
  ops::linear_backward(*ctx_, s.dinter, dw.out_w, dw.out_b, *dy, a.gelu_out, mixed ? c->out : w.out_w);
  Tensor& dgelu_in = mixed ? s.dinter16 : s.dinter;  // in place in f32; the 16-bit GEMM operand in mixed
  ops::gelu_backward(*ctx_, dgelu_in, s.dinter, a.inter);
  ops::linear_backward(*ctx_, s.dsum, dw.inter_w, dw.inter_b, dgelu_in, mixed ? a.h1_16 : a.h1,
                       mixed ? c->inter : w.inter_w, kAdd);

  // Attention LayerNorm (into dh: dsum1), then the residual: dx gets dsum1 directly and through q, k and v,
  // whose GEMMs add their input gradients to dh in place.
  const ops::LayerNormGradientCopy output_copy{
      &s.dtmp, hidden_p,
      draw_of(seed, step, layer_dropout_site(layer, DropoutSite::ATTENTION_OUTPUT), dh.numel())};
  ops::layer_norm_backward(*ctx_, dh, dw.ln1_w, dw.ln1_b, s.dsum, a.sum1, w.ln1_w, a.mean1, a.rstd1,
                           copy ? &output_copy : nullptr);
  dy = copy ? &s.dtmp : &dh;
  ops::linear_backward(*ctx_, s.dcontext, dw.attn_out_w, dw.attn_out_b, *dy, a.context,
                       mixed ? c->attn_out : w.attn_out_w);
  const ops::DropoutDraw attention_draw =
      draw_of(seed, step, layer_dropout_site(layer, DropoutSite::ATTENTION_PROBS), a.probs.numel());
  const ops::AttentionDropout attention_dropout{nullptr, attention_p,
                                                attention_p > 0 ? &attention_draw : nullptr};
  if (packed_projection()) {
    ops::attention_backward_packed(*ctx_, s.dqkv, s.dcontext, a.qkv, attention_mask, a.probs,
                                   config_.num_attention_heads, attention_dropout);
    ops::linear_backward(*ctx_, dh, dw.qkv_w, dw.qkv_b, s.dqkv, mixed ? *x16 : x, mixed ? c->qkv : w.qkv_w,
                         kAdd);
  } else {
    ops::attention_backward(*ctx_, s.dq, s.dk, s.dv, s.dcontext, a.q, a.k, a.v, attention_mask, a.probs,
                            config_.num_attention_heads, attention_dropout);
    ops::linear_backward(*ctx_, dh, dw.q_w, dw.q_b, s.dq, x, w.q_w, kAdd);
    ops::linear_backward(*ctx_, dh, dw.k_w, dw.k_b, s.dk, x, w.k_w, kAdd);
    ops::linear_backward(*ctx_, dh, dw.v_w, dw.v_b, s.dv, x, w.v_w, kAdd);
  }
}

void BertForSequenceClassification::backward(double dloss) {
  backward_impl(dloss, nullptr);
}

void BertForSequenceClassification::backward(const double* dloss) {
  NLPF_CHECK(dloss != nullptr, ErrorCode::INVALID_ARGUMENT, "backward: null dloss");
  backward_impl(0.0, dloss);
}

void BertForSequenceClassification::backward_impl(double dloss, const double* device_dloss) {
  NLPF_CHECK(saved_.has_value(), ErrorCode::INVALID_ARGUMENT,
             "backward: no activations kept; run forward(batch, ForwardMode::TRAIN) first");
  NLPF_CHECK(saved_->has_loss, ErrorCode::INVALID_ARGUMENT,
             "backward: the TRAIN forward's batch had no labels, so there is no loss to differentiate");
  const SavedActivations& act = *saved_;
  const int64_t B = act.input_ids.dim(0), T = act.input_ids.dim(1), C = config_.hidden_size;
  const int64_t L = config_.num_hidden_layers;
  const uint64_t seed = dropout_.seed;
  const DropoutStep step = act.step;

  // Classifier, dropout, pooler.
  Tensor dlogits = f32(act.ce_probs.shape());
  if (device_dloss != nullptr) {
    ops::cross_entropy_backward(*ctx_, dlogits, act.ce_probs, act.labels, device_dloss);
  } else {
    ops::cross_entropy_backward(*ctx_, dlogits, act.ce_probs, act.labels, dloss);
  }
  Tensor dpooled = f32({B, C});
  ops::linear_backward(*ctx_, dpooled, dp_.classifier_w, dp_.classifier_b, dlogits, act.classifier_in,
                       p_.classifier_w);
  if (dropout_.classifier_p > 0) {
    ops::dropout_backward(*ctx_, dpooled, dpooled, dropout_.classifier_p,
                          draw_of(seed, step, classifier_dropout_site(), dpooled.numel()));
  }
  ops::tanh_backward(*ctx_, dpooled, dpooled, act.pooled);
  Tensor dpooler_in = f32({B, C});
  ops::linear_backward(*ctx_, dpooler_in, dp_.pooler_w, dp_.pooler_b, dpooled, act.pooler_in, p_.pooler_w);

  const bool mixed = compute_dtype().has_value();
  const int64_t I = config_.intermediate_size;
  BackwardScratch s;
  for (Tensor* t : {&s.dsum, &s.dcontext}) *t = f32({B, T, C});
  s.dtmp = mixed ? half({B, T, C}) : f32({B, T, C});
  if (packed_projection()) {
    s.dqkv = mixed ? half({B, T, 3 * C}) : f32({B, T, 3 * C});
  } else {
    for (Tensor* t : {&s.dq, &s.dk, &s.dv}) *t = f32({B, T, C});
  }
  s.dinter = f32({B, T, I});
  if (mixed) s.dinter16 = half({B, T, I});

  Tensor dh = f32({B, T, C});
  ops::token_select_backward(*ctx_, dh, dpooler_in, 0);
  for (int64_t l = L - 1; l >= 0; --l) {
    const Tensor& x = l == 0 ? act.emb_out : act.layers[l - 1].h2;
    const Tensor* x16 = !mixed ? nullptr : l == 0 ? &act.emb_out16 : &act.layers[l - 1].h2_16;
    layer_backward(l, dh, x, x16, act.layers[l], act.attention_mask, step, s);
  }

  // Embeddings: dropout, LayerNorm, lookup.
  if (dropout_.hidden_p > 0) {
    ops::dropout_backward(*ctx_, dh, dh, dropout_.hidden_p,
                          draw_of(seed, step, embeddings_dropout_site(), dh.numel()));
  }
  ops::layer_norm_backward(*ctx_, s.dsum, dp_.emb_ln_w, dp_.emb_ln_b, dh, act.emb_sum, p_.emb_ln_w,
                           act.emb_mean, act.emb_rstd);
  // Padded positions' gradient is exactly zero here where token 0 is not padding (no position attends to
  // them, only token 0 reaches the loss): the tables skip them, the padding id's and the token type's runs.
  ops::embeddings_backward(*ctx_, dp_.word, dp_.position, dp_.token_type, s.dsum, act.input_ids,
                           act.token_type_ids, &act.attention_mask);
}

}  // namespace nlpf
