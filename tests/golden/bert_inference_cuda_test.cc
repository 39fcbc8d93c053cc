// The CUDA inference engine against Hugging Face and against the CPU: whole-model logits on the committed HF
// fixtures (tiny and the bert-base-shape slice) at every precision, the CPU fused chain against the GPU on a
// random model with odd sizes and padding, the same logits with the padded rows zeroed or normalised, graph
// replay against eager, and on SST-2 dev with all-MiniLM-L6-v2 (NLPF_MINILM_DIR) the agreement of
// predictions with the CPU model's. Skipped with the reason where the build has no CUDA, no GPU is visible,
// or a fixture is absent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "backend/context.h"
#include "backend/device.h"
#include "golden/formula_weights.h"
#include "model/bert_inference.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "model/inference_runner.h"
#include "model/safetensors.h"
#include "ops/op_test_util.h"
#include "text/dataset.h"
#include "text/tokenizer.h"
#include "train/trainer.h"
#include "unit/tiny_bert.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = fs::path(NLPF_TEST_DATA) / "model";

// DESIGN §7 / issue 11: fp32 logits within 1e-5 relative; TF32 and fp16 within 1e-2 (relative to the largest
// logit: a logit near zero has no meaningful relative error at 16 bits). bf16 within 4e-2, STYLE's bf16
// tolerance: its 8-bit significand (fp16 has 11) rounds every stored activation 8 times more coarsely; the
// tiny fixture's logits came out 1.6e-2 off (normalised) on the H200, all four elements of the others closer.
struct PrecisionCase {
  Precision precision;
  double rtol;
};
const PrecisionCase kCases[] = {
    {Precision::FP32, 1e-5}, {Precision::TF32, 1e-2}, {Precision::BF16, 4e-2}, {Precision::FP16, 1e-2}};

class CudaInferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
    if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
    ctx_ = make_execution_context(Device{DeviceType::CUDA, 0});
  }
  std::unique_ptr<ExecutionContext> ctx_;
};

std::vector<double> values_of(const Tensor& t) {
  const Tensor f = t.to(DType::F32);
  return std::vector<double>(f.data<float>(), f.data<float>() + f.numel());
}

double largest_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// A model shape for random weights over a 101-token vocabulary.
BertConfig random_config(int64_t hidden, int64_t layers, int64_t heads, int64_t intermediate,
                         int64_t positions) {
  BertConfig config;
  config.vocab_size = 101;
  config.hidden_size = hidden;
  config.num_hidden_layers = layers;
  config.num_attention_heads = heads;
  config.intermediate_size = intermediate;
  config.max_position_embeddings = positions;
  config.initializer_range = 0.1;
  return config;
}

// The f32 engines' A/B switches, each away from the default: tf32's other kernels (BertInference::set_tf32_*;
// the defaults are the exact GELU pass and the tensor-core attention), and fp32's and tf32's residual added
// as the GEMM's C (set_f32_residual_in_layer_norm(false); the default adds it in the LayerNorm).
struct F32Choices {
  bool gelu_epilogue = false;
  bool attention_cuda_cores = false;
  bool residual_in_gemm = false;
};

// Logits of one batch through the engine on `ctx`.
std::vector<double> engine_logits(ExecutionContext& ctx, const BertConfig& config,
                                  const std::map<std::string, Tensor>& parameters, Precision precision,
                                  const Tensor& ids, const Tensor& types, const Tensor& mask,
                                  const F32Choices& choices = {}, bool first_token_last_layer = false) {
  const int64_t B = ids.dim(0), T = ids.dim(1);
  BertInference engine(ctx, config, parameters, precision, B + 1, T + 3);  // a plan larger than the batch
  engine.set_first_token_last_layer(first_token_last_layer);
  if (choices.gelu_epilogue) engine.set_tf32_gelu_epilogue(true);
  if (choices.attention_cuda_cores) engine.set_tf32_attention_tensor_cores(false);
  if (choices.residual_in_gemm) engine.set_f32_residual_in_layer_norm(false);
  const bool on_device = ctx.device().type == DeviceType::CUDA;
  const Tensor d_ids = on_device ? to_device(ctx, ids) : ids,
               d_types = on_device ? to_device(ctx, types) : types,
               d_mask = on_device ? to_device(ctx, mask) : mask;
  const BertInference::Output out = engine.forward(d_ids, d_types, d_mask, nullptr, nullptr);
  return values_of(on_device ? to_host(ctx, out.logits) : out.logits.clone());
}

// Every precision's logits against HF's, also with the first-token-only last layer (and against the full
// layer's: at fp32 within 1e-5, the GEMMs' summation order); tf32 also with cuBLASLt's tanh GELU epilogue and
// with the CUDA-core attention, at tf32's tolerance. The tensor-core attention has head sizes 32 and 64: at
// others a tf32 engine runs the CUDA-core kernel either way, the same bits. fp32 and tf32 also with the
// residual added as the GEMMs' C (the same sums; the GEMMs may run other kernels).
void expect_goldens(ExecutionContext& ctx, const BertConfig& config,
                    const std::map<std::string, Tensor>& parameters, const SafetensorsFile& goldens) {
  const Tensor ids = goldens.tensors.at("input_ids"), types = goldens.tensors.at("token_type_ids"),
               mask = goldens.tensors.at("attention_mask");
  const auto as_i32 = [](const Tensor& t) {
    if (t.dtype() == DType::I32) return t.clone();
    Tensor out = Tensor::empty(DType::I32, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i)
      out.data<int32_t>()[i] = static_cast<int32_t>(t.data<int64_t>()[i]);
    return out;
  };
  const std::vector<double> ref = values_of(goldens.tensors.at("logits"));
  for (const PrecisionCase& c : kCases) {
    SCOPED_TRACE(precision_name(c.precision));
    const std::vector<double> logits =
        engine_logits(ctx, config, parameters, c.precision, as_i32(ids), as_i32(types), as_i32(mask));
    EXPECT_TRUE(test::all_close(logits, ref, test::Tolerance{c.rtol, c.rtol * largest_abs(ref)}));
    {
      SCOPED_TRACE("first-token last layer");
      const std::vector<double> first_token = engine_logits(ctx, config, parameters, c.precision, as_i32(ids),
                                                            as_i32(types), as_i32(mask), {}, true);
      EXPECT_TRUE(test::all_close(first_token, ref, test::Tolerance{c.rtol, c.rtol * largest_abs(ref)}));
      EXPECT_TRUE(
          test::all_close(first_token, logits, test::Tolerance{c.rtol, c.rtol * largest_abs(logits)}));
    }
    if (c.precision == Precision::FP32 || c.precision == Precision::TF32) {
      SCOPED_TRACE("residual in the GEMM");
      const std::vector<double> other =
          engine_logits(ctx, config, parameters, c.precision, as_i32(ids), as_i32(types), as_i32(mask),
                        {.residual_in_gemm = true});
      EXPECT_TRUE(test::all_close(other, ref, test::Tolerance{c.rtol, c.rtol * largest_abs(ref)}));
      EXPECT_TRUE(test::all_close(other, logits, test::Tolerance{c.rtol, c.rtol * largest_abs(logits)}));
    }
    if (c.precision == Precision::TF32) {
      const int64_t head_size = config.hidden_size / config.num_attention_heads;
      for (const F32Choices& choices :
           {F32Choices{.gelu_epilogue = true}, F32Choices{.attention_cuda_cores = true}}) {
        SCOPED_TRACE(choices.gelu_epilogue ? "tf32 with the GELU epilogue" : "tf32 with CUDA-core attention");
        const std::vector<double> other = engine_logits(ctx, config, parameters, c.precision, as_i32(ids),
                                                        as_i32(types), as_i32(mask), choices);
        EXPECT_TRUE(test::all_close(other, ref, test::Tolerance{c.rtol, c.rtol * largest_abs(ref)}));
        if (choices.attention_cuda_cores && head_size != 32 && head_size != 64) {
          EXPECT_EQ(other, logits) << "head size " << head_size << " has the CUDA-core attention only";
        } else {
          EXPECT_NE(other, logits) << "the choice runs other arithmetic than the default";
        }
      }
    }
  }
}

TEST_F(CudaInferenceTest, TinyCheckpointMatchesTransformersAtEveryPrecision) {
  const fs::path dir = kFixtures / "tiny";
  if (!fs::exists(dir / "goldens.safetensors")) GTEST_SKIP() << dir << " is absent";
  const Checkpoint checkpoint = load_checkpoint(dir / "model", {.quiet = true});
  BertForSequenceClassification model(checkpoint);
  expect_goldens(*ctx_, model.config(), model.parameters(), read_safetensors(dir / "goldens.safetensors"));
}

TEST_F(CudaInferenceTest, BaseShapeSliceMatchesTransformersAtEveryPrecision) {
  const fs::path dir = kFixtures / "base_slice";
  if (!fs::exists(dir / "goldens.safetensors")) GTEST_SKIP() << dir << " is absent";
  const BertConfig config = BertConfig::load(dir / "config.json");
  std::map<std::string, Tensor> parameters;
  const std::vector<ParameterSpec> specs = bert_parameter_specs(config);
  for (size_t i = 0; i < specs.size(); ++i)
    parameters.emplace(specs[i].name, test::formula_weights(i, specs[i]));
  expect_goldens(*ctx_, config, parameters, read_safetensors(dir / "goldens.safetensors"));
}

// A random model with sizes no kernel tiles evenly (C = 72, 3 heads of 24, I = 200, T = 37, B = 5) and
// ragged padding, CPU fused chain against the GPU.
TEST_F(CudaInferenceTest, GpuEqualsCpuOnOddSizesAndPadding) {
  const BertConfig config = random_config(72, 3, 3, 200, 64);
  BertForSequenceClassification model(config, 77);
  const int64_t B = 5, T = 37;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> id(0, 100), length(1, T);
  Tensor ids = Tensor::empty(DType::I32, {B, T}), types = Tensor::empty(DType::I32, {B, T}),
         mask = Tensor::empty(DType::I32, {B, T});
  for (int64_t b = 0; b < B; ++b) {
    const int32_t len = b == 0 ? T : length(rng);
    for (int64_t t = 0; t < T; ++t) {
      ids.data<int32_t>()[b * T + t] = t < len ? id(rng) : 0;
      types.data<int32_t>()[b * T + t] = t < len / 2 ? 0 : 1;
      mask.data<int32_t>()[b * T + t] = t < len ? 1 : 0;
    }
  }
  const std::vector<double> cpu =
      engine_logits(cpu_context(), config, model.parameters(), Precision::FP32, ids, types, mask);
  for (const bool first_token : {false, true}) {
    SCOPED_TRACE(first_token ? "first-token last layer" : "every token's last layer");
    const std::vector<double> cpu_engine = engine_logits(cpu_context(), config, model.parameters(),
                                                         Precision::FP32, ids, types, mask, {}, first_token);
    EXPECT_TRUE(test::all_close(cpu_engine, cpu, test::Tolerance{1e-5, 1e-5 * largest_abs(cpu)}));
    for (const PrecisionCase& c : kCases) {
      SCOPED_TRACE(precision_name(c.precision));
      const std::vector<double> gpu =
          engine_logits(*ctx_, config, model.parameters(), c.precision, ids, types, mask, {}, first_token);
      EXPECT_TRUE(test::all_close(gpu, cpu, test::Tolerance{c.rtol, c.rtol * largest_abs(cpu)}));
    }
  }
}

// The first-token-only last layer through InferenceRunner: captured graphs replay the eager predictions; at
// fp32 they are the full last layer's (at bf16 a near tie of a random head may round either way). fp8's graph
// test is in bert_inference_fp8_cuda_test.
TEST_F(CudaInferenceTest, FirstTokenLastLayerReplaysAsGraphsAndKeepsThePredictions) {
  const BertConfig config = random_config(64, 3, 2, 128, 40);
  BertForSequenceClassification model(config, 81);
  std::mt19937 rng(8);
  const TokenizedDataset data = test::random_dataset(rng, 29, 40, 101);
  for (const Precision p : {Precision::FP32, Precision::BF16}) {
    SCOPED_TRACE(precision_name(p));
    BertInference full(*ctx_, config, model.parameters(), p, 8, 40);
    BertInference first(*ctx_, config, model.parameters(), p, 8, 40);
    full.set_first_token_last_layer(false);
    const InferenceRunnerOptions graphs{.batch_size = 8, .padding = PaddingMode::LONGEST};
    const InferenceRunnerOptions eager{.batch_size = 8, .padding = PaddingMode::LONGEST, .use_graphs = false};
    const EvaluationResult reference = InferenceRunner(full, data, eager).run_pass();
    InferenceRunner replayed(first, data, graphs);
    const EvaluationResult once = replayed.run_pass(), twice = replayed.run_pass(),
                           eagerly = InferenceRunner(first, data, eager).run_pass();
    EXPECT_EQ(once.predictions, eagerly.predictions) << "graph replay differs from eager";
    EXPECT_EQ(twice.predictions, once.predictions);
    if (p == Precision::FP32) {
      EXPECT_EQ(eagerly.predictions, reference.predictions);
    }
  }
}

// The LayerNorms' padded rows written as 0 (the default) or normalised as HF does: one engine, so the same
// GEMM plans, and the same logits bit for bit at every precision (no output reads those rows).
TEST_F(CudaInferenceTest, ZeroedPaddedRowsLeaveTheLogitsBitForBit) {
  const BertConfig config = random_config(64, 2, 2, 128, 160);
  BertForSequenceClassification model(config, 78);
  const int64_t B = 4, T = 128;  // two query and key tiles of 64, as bert-base padded to 128
  const int32_t lengths[B] = {128, 25, 64, 3};
  Tensor ids = Tensor::empty(DType::I32, {B, T}), types = Tensor::zeros(DType::I32, {B, T}),
         mask = Tensor::empty(DType::I32, {B, T});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      ids.data<int32_t>()[b * T + t] = t < lengths[b] ? static_cast<int32_t>(1 + (7 * t + b) % 100) : 0;
      mask.data<int32_t>()[b * T + t] = t < lengths[b] ? 1 : 0;
    }
  }
  const Tensor d_ids = to_device(*ctx_, ids), d_types = to_device(*ctx_, types),
               d_mask = to_device(*ctx_, mask);
  for (const PrecisionCase& c : kCases) {
    SCOPED_TRACE(precision_name(c.precision));
    BertInference engine(*ctx_, config, model.parameters(), c.precision, B, T);
    std::vector<std::vector<double>> logits;
    for (const bool zero : {true, false}) {
      engine.set_zero_padded_rows(zero);
      logits.push_back(
          values_of(to_host(*ctx_, engine.forward(d_ids, d_types, d_mask, nullptr, nullptr).logits)));
    }
    EXPECT_EQ(logits[0], logits[1]);
  }
}

TEST_F(CudaInferenceTest, Tf32ChoicesAreTf32sOnly) {
  const BertConfig config = random_config(64, 1, 2, 128, 32);
  BertForSequenceClassification model(config, 79);
  for (const Precision p : {Precision::FP32, Precision::BF16, Precision::FP16}) {
    BertInference engine(*ctx_, config, model.parameters(), p, 2, 16);
    EXPECT_THROW(engine.set_tf32_gelu_epilogue(true), Error) << precision_name(p);
    EXPECT_THROW(engine.set_tf32_attention_tensor_cores(true), Error) << precision_name(p);
    engine.set_tf32_gelu_epilogue(false);
    engine.set_tf32_attention_tensor_cores(false);
    EXPECT_FALSE(engine.tf32_gelu_epilogue());
    EXPECT_FALSE(engine.tf32_attention_tensor_cores());
  }
  BertInference tf32(*ctx_, config, model.parameters(), Precision::TF32, 2, 16);
  EXPECT_FALSE(tf32.tf32_gelu_epilogue());
  EXPECT_TRUE(tf32.tf32_attention_tensor_cores());
}

TEST_F(CudaInferenceTest, ResidualInTheLayerNormIsFp32sAndTf32sOnly) {
  const BertConfig config = random_config(64, 1, 2, 128, 32);
  BertForSequenceClassification model(config, 80);
  for (const Precision p : {Precision::FP32, Precision::TF32, Precision::BF16, Precision::FP16}) {
    SCOPED_TRACE(precision_name(p));
    BertInference engine(*ctx_, config, model.parameters(), p, 2, 16);
    if (p == Precision::FP32 || p == Precision::TF32) {
      EXPECT_EQ(engine.f32_residual_in_layer_norm(), BertInference::kF32ResidualInLayerNormByDefault);
      engine.set_f32_residual_in_layer_norm(false);
      EXPECT_FALSE(engine.f32_residual_in_layer_norm());
      engine.set_f32_residual_in_layer_norm(true);
      EXPECT_TRUE(engine.f32_residual_in_layer_norm());
    } else {
      EXPECT_FALSE(engine.f32_residual_in_layer_norm());  // 16-bit engines add it in the GEMM
      EXPECT_THROW(engine.set_f32_residual_in_layer_norm(true), Error);
      engine.set_f32_residual_in_layer_norm(false);
      EXPECT_FALSE(engine.f32_residual_in_layer_norm());
    }
  }
}

// SST-2 dev through all-MiniLM-L6-v2 (its classifier initialised from seed 42): fp32 predictions identical to
// the CPU model's wherever the CPU's logit margin exceeds 1e-4, 16-bit ones at least 99.5% identical, graph
// replay identical to eager.
TEST_F(CudaInferenceTest, Sst2DevPredictionsAgreeWithTheCpuModel) {
  const char* env = std::getenv("NLPF_MINILM_DIR");
  if (env == nullptr || *env == '\0') GTEST_SKIP() << "NLPF_MINILM_DIR not set (tools/fetch_minilm.sh)";
  const fs::path dev = fs::path(NLPF_SHARED_DIR) / "data" / "sst2" / "dev.tsv";
  if (!fs::exists(dev)) GTEST_SKIP() << dev << " is absent";
  const Checkpoint checkpoint = load_checkpoint(env, {.quiet = true});
  BertForSequenceClassification model(checkpoint);
  WordPieceTokenizer tokenizer(checkpoint.vocab, TokenizerOptions{.do_lower_case = checkpoint.do_lower_case});
  const TokenizedDataset data = tokenize_dataset(read_dataset(dev), tokenizer, 128, false);
  // The CPU reference: logits per example for the margins.
  std::vector<double> margin(static_cast<size_t>(data.size()));
  std::vector<int32_t> cpu_predictions(static_cast<size_t>(data.size()));
  const std::vector<int64_t> order = sequential_order(data.size());
  for (int64_t begin = 0; begin < data.size(); begin += 64) {
    const int64_t end = std::min(data.size(), begin + 64);
    Batch batch = make_batch(data, std::span<const int64_t>(order.data() + begin, order.data() + end),
                             PaddingMode::LONGEST, 128);
    batch.labels.clear();
    const ModelOutput out = model.forward(batch, ForwardMode::EVAL);
    for (int64_t b = 0; b < batch.B; ++b) {
      const float* l = out.logits.data<float>() + b * 2;
      margin[static_cast<size_t>(begin + b)] = std::abs(static_cast<double>(l[1]) - l[0]);
      cpu_predictions[static_cast<size_t>(begin + b)] = l[1] > l[0] ? 1 : 0;
    }
  }
  for (const PrecisionCase& c : kCases) {
    SCOPED_TRACE(precision_name(c.precision));
    BertInference engine(*ctx_, model.config(), model.parameters(), c.precision, 64, 128);
    InferenceRunner graphs(engine, data, {.batch_size = 64, .padding = PaddingMode::LONGEST});
    InferenceRunner eager(engine, data,
                          {.batch_size = 64, .padding = PaddingMode::LONGEST, .use_graphs = false});
    const EvaluationResult with_graphs = graphs.run_pass(), again = graphs.run_pass(),
                           eagerly = eager.run_pass();
    EXPECT_EQ(with_graphs.predictions, eagerly.predictions) << "graph replay differs from eager";
    EXPECT_EQ(with_graphs.predictions, again.predictions) << "a second replay differs";
    int64_t same = 0, confident = 0, confident_same = 0;
    for (size_t i = 0; i < margin.size(); ++i) {
      const bool agree = with_graphs.predictions[i] == cpu_predictions[i];
      same += agree;
      if (margin[i] > 1e-4) {
        ++confident;
        confident_same += agree;
      }
    }
    if (c.precision == Precision::FP32) {
      EXPECT_EQ(confident_same, confident) << "fp32 predictions differ where the CPU margin exceeds 1e-4";
    } else {
      EXPECT_GE(static_cast<double>(same) / static_cast<double>(margin.size()), 0.995)
          << same << " of " << margin.size();
    }
  }
}

}  // namespace
}  // namespace nlpf
