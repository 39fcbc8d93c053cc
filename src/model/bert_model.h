// BertForSequenceClassification forward and backward, assembled from src/ops (post-LayerNorm BERT exactly as
// Hugging Face transformers computes it). Parameter gradients accumulate (+=, so gradient accumulation
// works; zero_grad() clears them), activation gradients overwrite (=). Dimension letters: B batch, T tokens,
// C hidden, NH heads, HS head size, I intermediate, NL labels, N = B*T rows.
// Peak memory of a bert-base training step at B=32, T=128 is estimated under "Memory" below.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/context.h"
#include "backend/precision.h"
#include "core/tensor.h"
#include "model/bert_config.h"
#include "model/checkpoint.h"
#include "text/batching.h"

namespace nlpf {

// TRAIN keeps the activations backward() needs and applies dropout; EVAL applies no dropout and keeps
// nothing beyond one layer's scratch buffers (reused by every layer).
enum class ForwardMode { TRAIN, EVAL };

struct ModelOutput {
  Tensor logits;               // [B, NL] f32
  std::optional<double> loss;  // HF's mean cross-entropy, when every row of the batch has a label
};

// Dropout of a TRAIN forward. Masks come from the Philox stream of `seed` (core/random.h) at offset
//   dropout_offset(step, site) = (step * kDropoutSitesPerStep + site) * 2^32,
// site = 0 for the embeddings' output, 1 + 3 l + {0 attention probabilities, 1 attention output,
// 2 feed-forward output} for encoder layer l, kDropoutSitesPerStep - 1 for the classifier's input. Element i
// of a mask (row-major over its tensor: [B,T,C], [B,NH,T,T] or [B,C]) is kept when
// philox_uniform(seed, offset + i) < 1 - p (ops::dropout_mask), so a CUDA kernel given (seed, step, layer,
// site) draws the same mask. Each site owns 2^32 stream indices (a mask larger than that is refused) and a
// step owns kDropoutSitesPerStep sites (so at most 340 layers), leaving 2^22 steps per seed.
struct DropoutSettings {
  double hidden_p = 0.1;      // embeddings, attention output and feed-forward output
  double attention_p = 0.1;   // attention probabilities
  double classifier_p = 0.1;  // pooled [CLS] before the classifier
  uint64_t seed = 0;

  // The probabilities of config.json (classifier_dropout, else hidden_dropout_prob, for the classifier).
  static DropoutSettings from_config(const BertConfig& config, uint64_t seed);
};

constexpr uint64_t kDropoutSitesPerStep = 1024;
constexpr uint64_t kDropoutStepLimit = uint64_t{1} << 22;

// The step a TRAIN forward's masks are keyed by: `host`, or, where in_context is set, the int64 it points to
// in the model context's memory (device memory on CUDA), read when the work runs, so that a training step
// captured once as a CUDA graph draws each replay's masks (train/optimizer.h); `host` is then the step the
// caller expects there, checked against kDropoutStepLimit.
struct DropoutStep {
  uint64_t host = 0;
  const int64_t* in_context = nullptr;
};

// A batch's tensors on the model's device (i32: input_ids, token_type_ids, attention_mask [B,T], labels [B]
// or empty), checked on the host before upload: what a forward reads. A captured training step keeps one set
// per shape and uploads each batch into it (upload_batch_into), so every replay reads the same addresses.
struct BatchTensors {
  Tensor input_ids, token_type_ids, attention_mask, labels;
  bool has_loss = false;  // every row has a label
};
enum class DropoutSite { ATTENTION_PROBS = 0, ATTENTION_OUTPUT = 1, FEED_FORWARD_OUTPUT = 2 };
uint64_t dropout_offset(uint64_t step, uint64_t site);
uint64_t embeddings_dropout_site();
uint64_t layer_dropout_site(int64_t layer, DropoutSite site);
uint64_t classifier_dropout_site();

// Memory (f32, bert-base C=768, I=3072, NH=12, L=12 at B=32, T=128: N = 4096, one [N,C] = 12.6 MB,
// one [N,I] = 50.3 MB, one [B,NH,T,T] = 25.2 MB):
// - parameters 110M = 438 MB, gradients 438 MB (AdamW's two moments, 876 MB, live in src/train);
// - storage: each layer's query, key and value weights (and biases, and their gradients) are views of one
//   [3C, C] ([3C]) buffer in that order, so that CUDA projects q, k and v with one GEMM into one [N,3C]
//   activation and back (the CPU keeps three GEMMs over the views: the reference's exact sums);
// - kept by a TRAIN forward, per layer: q, k, v, context, the two LayerNorm inputs and outputs ([N,C] each;
//   the last output is the next layer's input), the GELU input and output [N,I] and the attention
//   probabilities before dropout [B,NH,T,T]: 226 MB, 2.72 GB for 12 layers, plus the embeddings' LayerNorm
//   input and output (25 MB). The GELU output is kept rather than recomputed in backward(): 0.6 GB (half in
//   mixed precision, where it is 16-bit) for 12 GELU passes, which took 0.30 ms of a 55 ms fp32 step on the
//   H200 (ncu, 2026-11-30); the dropout masks are never stored: each is drawn from its Philox stream where it
//   is applied, forward and backward (on the CPU into a scratch mask freed at once);
// - backward() scratch: 7 [N,C] + 1 [N,I] = 138 MB.
// Peak of a training step: 0.44 + 0.44 + 2.74 + 0.14 = 3.76 GB (4.6 GB with AdamW's state).
// Mixed precision (a context in MathMode::BF16 or FP16, autocast's scheme): every encoder GEMM reads 16-bit
// operands (bf16 or f16) and writes f32: 16-bit copies of the four weights of each layer (85M values of
// bert-base, 170 MB), rounded from the f32 masters before each forward; 16-bit copies of each GEMM's input,
// written by its producer in the same pass (the LayerNorm and embedding-dropout outputs beside their f32
// residuals, the attention context, the GELU output, and in backward() the gradients entering the GEMMs).
// The residual stream, LayerNorm, softmax, the loss and every parameter gradient stay f32; so do the pooler
// and classifier ([B,C] GEMMs, f32 under the math mode). Per layer it keeps 2 [N,C] 16-bit copies more and
// the context in 16 bits (+ 12.6 MB).
// EVAL holds the parameters plus 8 [N,C] + 1 [N,I] + 1 [B,NH,T,T] = 176 MB, whatever the layer count; it
// keeps them between EVAL forwards of the same B and T (released by a TRAIN forward).
class BertForSequenceClassification {
 public:
  // Weights of a checkpoint, converted to f32 (16-bit checkpoints are widened exactly).
  explicit BertForSequenceClassification(const Checkpoint& checkpoint);
  // HF's _init_weights from the Philox normal stream of `init_seed`: Linear and Embedding weights
  // normal(0, initializer_range), parameter number i (in bert_parameter_specs order) drawing stream indices
  // from i * 2^40; biases 0; LayerNorm weight 1, bias 0; the pad_token_id row of the word embeddings 0.
  BertForSequenceClassification(const BertConfig& config, uint64_t init_seed);

  // logits (and the loss when the batch has labels) for a padded batch (text/batching.h). TRAIN applies
  // dropout keyed by (dropout().seed, step) and keeps what backward() needs (replacing a previous
  // forward's); EVAL releases whatever a TRAIN forward kept. Errors: INVALID_ARGUMENT naming the batch
  // field (inconsistent sizes, T > max_position_embeddings, ids or labels out of range).
  ModelOutput forward(const Batch& batch, ForwardMode mode, uint64_t step = 0);
  // A TRAIN forward of a labelled batch that writes the loss to `loss`, a double in context memory (device
  // memory on CUDA), instead of reading it back: ModelOutput::loss stays empty and a CUDA forward never waits
  // for the loss (a training step's scalars stay on the device). INVALID_ARGUMENT when the batch has no
  // labels.
  ModelOutput forward(const Batch& batch, ForwardMode mode, uint64_t step, double* loss);

  // The batch checked as forward checks it (INVALID_ARGUMENT naming the field) and uploaded to the model's
  // device (host tensors on the CPU).
  BatchTensors upload_batch(const Batch& batch) const;
  // The same into an earlier upload's tensors (same B, T and labels or none; INVALID_ARGUMENT otherwise).
  void upload_batch_into(const Batch& batch, BatchTensors& into) const;
  // A TRAIN forward of uploaded tensors with labels, dropout keyed by `step`, the loss written to `loss` in
  // context memory: the form of a training step that can be captured (nothing read back, nothing uploaded).
  ModelOutput forward_train(const BatchTensors& inputs, DropoutStep step, double* loss);
  // Frees what forwards kept: a TRAIN forward's activations (after backward: a captured step frees all it
  // allocated) and EVAL's buffers (before a capture, which must not free memory allocated outside it).
  void release_activations() {
    saved_.reset();
    eval_buffers_.reset();
  }

  // Gradients of loss * dloss (dloss: the loss scale under fp16, else 1) after a TRAIN forward with labels,
  // added to gradients(). May be called again (each call adds the same gradients once more).
  void backward(double dloss = 1.0);
  // The same with dloss read from context memory (the loss scale a training step keeps on the device).
  void backward(const double* dloss);

  void zero_grad();
  // Moves parameters and gradients to ctx's device (copies; the old storage is freed) and runs every later
  // forward, backward and optimizer step there, in ctx's math mode. Kept activations and EVAL buffers go.
  // On a CUDA context, batch ids, token types and labels are validated on the host before upload (a kernel
  // cannot throw), with the CPU kernels' messages.
  void to_context(ExecutionContext& ctx);
  ExecutionContext& context() const { return *ctx_; }
  // Keeps the first k encoder layers (1 <= k <= num_hidden_layers), dropping their weights and gradients
  // and any kept activations; config().num_hidden_layers becomes k.
  void truncate_layers(int64_t k);

  // Frees the parameter gradients for a model that will only run EVAL forwards (measurement), so that its
  // memory is parameters plus one layer's activations; TRAIN forwards are refused afterwards.
  void drop_gradients();
  bool inference_only() const { return inference_only_; }

  // Inference precision (DESIGN §5): FP32 leaves the model as it is; BF16 stores the weights of every
  // linear layer (attention, feed-forward, pooler, classifier) in bf16, so each GEMM runs in bf16 with fp32
  // accumulation, while embeddings, LayerNorm, softmax and GELU stay fp32. Implies drop_gradients().
  // UNSUPPORTED for precisions the CPU cannot run (backend/precision.h says why).
  void set_inference_precision(Precision precision);
  Precision inference_precision() const { return precision_; }

  // Called with the input of every linear layer of an EVAL forward, in order: per encoder layer l the sites
  // "layer.<l>.qkv" (the layer input [B,T,C], shared by q, k and v), "layer.<l>.attention_output" (the
  // attention context), "layer.<l>.intermediate" (the attention LayerNorm output) and "layer.<l>.output" (the
  // GELU output [B,T,I]); then "pooler" ([B,C], token 0) and "classifier" ([B,C]). attention_mask is the
  // batch's [B,T] i32 for the per-token sites (rows of padding carry values no output depends on) and nullptr
  // for the last two. fp8 calibration (model/fp8_calibration.h) reads the activations' ranges there. Empty:
  // none (the default). TRAIN forwards never call it.
  using ActivationObserver =
      std::function<void(const std::string& site, const Tensor& x, const Tensor* attention_mask)>;
  void set_activation_observer(ActivationObserver observer) { observer_ = std::move(observer); }

  const BertConfig& config() const { return config_; }
  const DropoutSettings& dropout() const { return dropout_; }
  // Replaces the dropout settings (INVALID_ARGUMENT for p outside [0, 1)); drops kept activations, since
  // backward() redraws its forward's masks from the current settings.
  void set_dropout(const DropoutSettings& dropout);
  // Canonical name -> f32 tensor; the tensors share storage with the model (an optimizer updates them in
  // place). The gradient map has the same names and shapes.
  const std::map<std::string, Tensor>& parameters() const { return parameters_; }
  const std::map<std::string, Tensor>& gradients() const { return gradients_; }
  // The parameters for save_checkpoint: shared storage on the CPU, host copies when on a device.
  std::map<std::string, Tensor> to_checkpoint_tensors() const;
  int64_t num_parameters() const;
  // Whether activations of a TRAIN forward are kept (backward() can run).
  bool has_saved_activations() const { return saved_.has_value(); }

 private:
  ModelOutput forward_impl(const Batch& batch, ForwardMode mode, uint64_t step, double* loss);
  // forward's checks of a batch; whether every row has a label.
  bool check_batch(const Batch& batch) const;
  // upload_batch of a batch check_batch passed.
  BatchTensors upload_checked(const Batch& batch, bool has_loss) const;
  // A TRAIN forward's checks: the model keeps gradients, the step is below kDropoutStepLimit.
  void check_train(DropoutStep step) const;
  ModelOutput forward_tensors(const BatchTensors& inputs, ForwardMode mode, DropoutStep step, double* loss);
  void backward_impl(double dloss, const double* device_dloss);
  struct LayerTensors {  // parameters or their gradients of one encoder layer
    Tensor q_w, q_b, k_w, k_b, v_w, v_b, attn_out_w, attn_out_b, ln1_w, ln1_b;
    Tensor inter_w, inter_b, out_w, out_b, ln2_w, ln2_b;
    Tensor qkv_w, qkv_b;  // [3C, C], [3C]: the buffers q, k and v's weights and biases are views of
  };
  // The buffers of one layer's packed query | key | value weight [3C, C] and bias [3C] (see Memory).
  struct PackedQkv {
    Tensor w, b;
  };
  struct ModelTensors {
    Tensor word, position, token_type, emb_ln_w, emb_ln_b;
    std::vector<LayerTensors> layers;
    Tensor pooler_w, pooler_b, classifier_w, classifier_b;
  };
  // One layer's activations: kept per layer by TRAIN, one reused set in EVAL.
  struct LayerActivations {
    Tensor q, k, v, probs, context;  // [B,T,C] x4 (q, k, v on the CPU), [B,NH,T,T]; context 16-bit in mixed
    Tensor h1_16, h2_16;             // mixed precision: h1 and h2 rounded, the GEMM operands
    Tensor qkv;                      // [B,T,3C]: q | k | v of one GEMM (CUDA)
    Tensor sum1, mean1, rstd1, h1;   // attention LayerNorm input, statistics [N], output [B,T,C]
    Tensor inter;                    // GELU input [B,T,I]
    Tensor gelu_out;                 // GELU output [B,T,I] (16-bit in mixed; EVAL f32: inter's own buffer)
    Tensor sum2, mean2, rstd2, h2;   // output LayerNorm input, statistics, output (the layer's output)
  };
  struct SavedActivations {
    Tensor input_ids, token_type_ids, attention_mask, labels;  // [B,T] x3, [B] i32
    Tensor emb_sum, emb_mean, emb_rstd, emb_out;  // LayerNorm input [B,T,C], statistics, dropout output
    Tensor emb_out16;                             // mixed precision: emb_out rounded (layer 0's GEMM input)
    std::vector<LayerActivations> layers;
    Tensor pooler_in, pooled, classifier_in;  // [B,C]: token 0 of the last layer, tanh output, dropout output
    Tensor ce_probs;                          // [B,NL] softmax of the logits
    bool has_loss = false;
    DropoutStep step;
  };

  void init_gradients();
  void bind_views();
  ModelTensors views_of(const std::map<std::string, Tensor>& tensors,
                        const std::vector<PackedQkv>& packed) const;
  // Copies each layer's query, key and value tensors of `tensors` (on ctx_) into new packed buffers, kept in
  // `packed`, and makes the map's entries views of them.
  void pack_qkv(std::map<std::string, Tensor>& tensors, std::vector<PackedQkv>& packed) const;
  // Whether layers project q, k, v with one GEMM over the packed weight (CUDA, and mixed precision on either
  // device) or three (the CPU reference).
  bool packed_projection() const {
    return ctx_->device().type != DeviceType::CPU || compute_dtype().has_value();
  }
  // Mixed precision's GEMM operand dtype (BF16 or F16, from the context's math mode) for a model of f32
  // parameters; nullopt: every GEMM operand f32 (under the math mode).
  std::optional<DType> compute_dtype() const;
  // 16-bit copies of one encoder layer's GEMM weights (mixed precision; see Memory).
  struct ComputeWeights {
    Tensor qkv, attn_out, inter, out;
  };
  // Allocates compute_weights_ on first use and rounds every layer's f32 weights into them (one multi-tensor
  // conversion): before each forward, so they follow the optimizer's updates.
  void refresh_compute_weights();
  Tensor f32(const Shape& shape) const;  // uninitialised, on the model's device
  // Uninitialised, on the model's device, of compute_dtype() (mixed precision only).
  Tensor half(const Shape& shape) const;
  LayerActivations allocate_layer(int64_t B, int64_t T) const;
  // x16: x rounded (mixed precision), else nullptr.
  void layer_forward(int64_t layer, const Tensor& x, const Tensor* x16, LayerActivations& a,
                     const Tensor& attention_mask, bool train, DropoutStep step) const;
  // Gradient buffers of backward(): [B,T,C] x6 (dq, dk, dv on the CPU; dqkv [B,T,3C] on CUDA) and [B,T,I]
  // for dGELU. Mixed precision: dtmp [B,T,C], dqkv and dinter16 [B,T,I] are 16-bit (the GEMMs' dy operands).
  struct BackwardScratch {
    Tensor dsum, dtmp, dq, dk, dv, dqkv, dcontext, dinter, dinter16;
  };
  // dh: on entry the gradient of the layer's output, on return that of its input x (x16: x rounded, in mixed
  // precision the GEMMs' operand; else nullptr).
  void layer_backward(int64_t layer, Tensor& dh, const Tensor& x, const Tensor* x16,
                      const LayerActivations& a, const Tensor& attention_mask, DropoutStep step,
                      BackwardScratch& s);

  // EVAL's buffers (one layer's activations, the embeddings' output and statistics), kept from one EVAL
  // forward to the next of the same B and T: a fresh set each call pays a page fault per 4 KiB on first
  // touch. A TRAIN forward releases them before allocating its own.
  struct EvalBuffers {
    int64_t B = 0, T = 0;
    LayerActivations layer;  // layer.h2 is `hidden`, layer.h2_16 is hidden16
    Tensor hidden, emb_mean, emb_rstd;
    Tensor hidden16;  // mixed precision: hidden rounded
  };

  // The CPU, or a CUDA context for training on the GPU (to_context); the CUDA inference engine is its own
  // class (model/bert_inference.h).
  ExecutionContext* ctx_ = &cpu_context();
  BertConfig config_;
  DropoutSettings dropout_;
  std::map<std::string, Tensor> parameters_;
  std::map<std::string, Tensor> gradients_;
  std::vector<PackedQkv> packed_parameters_, packed_gradients_;  // per layer (see Memory)
  std::vector<ComputeWeights> compute_weights_;                  // mixed precision, per layer
  ModelTensors p_;                                               // views of parameters_
  ModelTensors dp_;                                              // views of gradients_
  std::optional<SavedActivations> saved_;
  std::optional<EvalBuffers> eval_buffers_;
  Precision precision_ = Precision::FP32;
  ActivationObserver observer_;
  bool inference_only_ = false;  // gradients dropped (drop_gradients, set_inference_precision)
};

}  // namespace nlpf
