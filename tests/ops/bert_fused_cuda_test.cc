// The fused BERT inference ops (ops/bert_fused.h) on CUDA against the same ops on the CPU: every op at f32,
// bf16 and f16 on fresh random inputs with odd sizes and ragged padding (a sequence with holes, one cut
// short, one all padding), a 16-bit run compared with the CPU f32 op on the inputs rounded to its dtype.
// Outputs are poisoned with NaN before each GPU run, so an element no kernel writes fails; a captured graph
// must replay the eager results bit for bit. Skipped with the reason where the build has no CUDA or no GPU is
// visible; only the CUDA-free op layer is called, so this file builds without CUDA too.
#include "ops/bert_fused.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "backend/context.h"
#include "backend/device.h"
#include "ops/cuda_op_test_util.h"
#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr double kEps = 1e-12;  // BERT's layer_norm_eps

// STYLE "Tests": an op at fp32 1e-5 (atol 1e-6), fp16 1e-2, bf16 4e-2; a 16-bit run takes the tolerance as
// both rtol and atol (values near 0 round at an absolute, not a relative, granularity).
struct DtypeCase {
  DType dtype;
  double tol;
};
const DtypeCase kCases[] = {{DType::F32, 1e-5}, {DType::BF16, 4e-2}, {DType::F16, 1e-2}};

Tolerance elementwise(const DtypeCase& c) {
  return c.dtype == DType::F32 ? Tolerance{1e-5, 1e-6} : Tolerance{c.tol, c.tol};
}

// Relative to the largest |ref| as well as to each element, for outputs that are sums of many terms:
// attention (1e-5 of max |ref| for f32), and the cuBLASLt products, whose summation order differs from
// OpenBLAS's, so an output that cancels to near 0 keeps an absolute error of the size of its terms.
Tolerance scaled(const DtypeCase& c, const std::vector<double>& ref) {
  return Tolerance{c.tol, c.tol * largest_abs(ref)};
}

// Whether row n of a [B T, ...] activation is what ops/padded_rows.h calls padding under mask [B,T].
bool padded_row(const Tensor& mask, int64_t n) {
  const int64_t T = mask.dim(1);
  const int32_t* m = mask.data<int32_t>();
  return m[n] == 0 && m[n - n % T] != 0;
}

// The padded rows of the f32 host tensor t [B,T,width] set to 0, as the attention and the LayerNorms leave
// them.
void zero_padded_rows(Tensor& t, const Tensor& mask) {
  const int64_t width = t.dim(2);
  for (int64_t n = 0; n < mask.numel(); ++n) {
    if (padded_row(mask, n)) std::fill_n(t.data<float>() + n * width, width, 0.0f);
  }
}

// Every value of the rows (of `width` values) that ops/padded_rows.h calls padding under mask [B,T] is
// exactly 0, and more than T / 2 rows are.
void expect_padded_rows_zero(const std::vector<double>& got, const Tensor& mask, int64_t width) {
  const int64_t T = mask.dim(1);
  int64_t zero_rows = 0;
  for (int64_t n = 0; n < mask.numel(); ++n) {
    if (!padded_row(mask, n)) continue;
    ++zero_rows;
    for (int64_t c = 0; c < width; ++c) ASSERT_EQ(got[n * width + c], 0.0) << "row " << n << " column " << c;
  }
  EXPECT_GT(zero_rows, T / 2);
}

// An attention case: B sequences of T tokens, C channels in NH heads.
struct AttentionSize {
  int64_t B, T, C, NH;
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " C=" + std::to_string(C) +
           " NH=" + std::to_string(NH);
  }
};

class BertFusedCuda : public ::testing::TestWithParam<DtypeCase> {
 protected:
  void SetUp() override {
    if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
    if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
    ctx_ = make_execution_context(Device{DeviceType::CUDA, 0});
  }
  DType dtype() const { return GetParam().dtype; }
  ExecutionContext& gpu() { return *ctx_; }

  // The f32 host tensor rounded to the case's dtype and back: the CPU reference sees the GPU's inputs.
  Tensor rounded(const Tensor& f32) const { return f32.to(dtype()).to(DType::F32); }
  // The f32 host tensor in the case's dtype on the GPU.
  Tensor device(const Tensor& f32) { return to_device(gpu(), f32.to(dtype())); }
  // A device tensor whose every byte is 0xFF: NaN in f32, bf16 and f16, -1 in i32.
  Tensor poisoned(DType dtype, const Shape& shape) {
    Tensor host = Tensor::empty(dtype, shape);
    std::memset(host.raw_data(), 0xFF, host.nbytes());
    return to_device(gpu(), host);
  }
  std::vector<double> values(const Tensor& device_tensor) {
    const Tensor host = to_host(gpu(), device_tensor);
    return to_double(host.dtype() == DType::F32 ? host : host.to(DType::F32));
  }

  std::unique_ptr<ExecutionContext> ctx_;
};

std::string case_name(const ::testing::TestParamInfo<DtypeCase>& info) {
  return dtype_name(info.param.dtype);
}

TEST_P(BertFusedCuda, EmbeddingsLayerNormMatchesCpu) {
  std::mt19937 rng(101);
  struct Size {
    int64_t B, T, C;
  };
  // C = 44 at 16 bits is not a multiple of the 8-element vector: the block-per-row kernel.
  for (const Size s : {Size{3, 37, 72}, Size{3, 1, 40}, Size{2, 130, 768}, Size{3, 37, 44}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" + std::to_string(s.C));
    const int64_t V = 50, P = s.T + 3, TV = 2;
    const Tensor ids = random_ids(rng, {s.B, s.T}, V), types = random_ids(rng, {s.B, s.T}, TV);
    const Tensor word = random_tensor(rng, {V, s.C}, -1, 1), position = random_tensor(rng, {P, s.C}, -1, 1),
                 token_type = random_tensor(rng, {TV, s.C}, -1, 1);
    const Tensor weight = random_tensor(rng, {s.C}, 0.5, 1.5), bias = random_tensor(rng, {s.C}, -0.5, 0.5);

    Tensor ref = Tensor::empty(DType::F32, {s.B, s.T, s.C});
    ops::embeddings_layer_norm_forward(cpu_context(), ref, ids, types, rounded(word), rounded(position),
                                       rounded(token_type), weight, bias, kEps);
    Tensor out = poisoned(dtype(), {s.B, s.T, s.C});
    ops::embeddings_layer_norm_forward(gpu(), out, to_device(gpu(), ids), to_device(gpu(), types),
                                       device(word), device(position), device(token_type),
                                       to_device(gpu(), weight), to_device(gpu(), bias), kEps);
    EXPECT_TRUE(all_close(values(out), to_double(ref), elementwise(GetParam())));
  }
}

TEST_P(BertFusedCuda, LayerNormMatchesCpuAlsoInPlace) {
  std::mt19937 rng(102);
  struct Size {
    int64_t N, C;
  };
  // 768: the warp kernel with no idle lane; 44 and 1030: rows off the 16-byte vector (block kernel at 16
  // bits, and at f32 for 1030); 2304: too long for the registers of one warp.
  for (const Size s :
       {Size{111, 72}, Size{111, 40}, Size{37, 768}, Size{7, 44}, Size{3, 1030}, Size{2, 2304}}) {
    for (const bool in_place : {false, true}) {
      SCOPED_TRACE("N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) + (in_place ? " in place" : ""));
      // Rows centred near 0.5: off zero, so the mean matters, yet close enough that the CPU f32 reference's
      // own rounding of the mean stays inside 1e-6 (rows in [1, 3] at C = 768 took it past that against
      // double).
      const Tensor x = random_tensor(rng, {s.N, s.C}, -1.5, 2.5);
      const Tensor weight = random_tensor(rng, {s.C}, 0.5, 1.5), bias = random_tensor(rng, {s.C}, -0.5, 0.5);
      Tensor ref = Tensor::empty(DType::F32, {s.N, s.C});
      ops::layer_norm_inference_forward(cpu_context(), ref, rounded(x), weight, bias, kEps);
      Tensor x_gpu = device(x);
      Tensor out = in_place ? x_gpu : poisoned(dtype(), {s.N, s.C});
      ops::layer_norm_inference_forward(gpu(), out, x_gpu, to_device(gpu(), weight), to_device(gpu(), bias),
                                        kEps);
      EXPECT_TRUE(all_close(values(out), to_double(ref), elementwise(GetParam())));
    }
  }
}

TEST_P(BertFusedCuda, LayerNormsZeroThePaddedRowsAsTheCpu) {
  // With the batch's attention_mask the LayerNorms write the padded rows of sequences whose token 0 is real
  // as exact zeros (ops/bert_fused.h) and normalise the rest; ragged_mask's last sequence has no token and
  // keeps its rows. C = 768 and 72: the warp kernel; 44: the block kernel at 16 bits.
  std::mt19937 rng(109);
  for (const int64_t C : {int64_t{768}, int64_t{72}, int64_t{44}}) {
    SCOPED_TRACE("C=" + std::to_string(C));
    const int64_t B = 4, T = 37, V = 50, TV = 2;
    const Tensor mask = ragged_mask(rng, B, T), mask_gpu = to_device(gpu(), mask);
    const Tensor weight = random_tensor(rng, {C}, 0.5, 1.5), bias = random_tensor(rng, {C}, 0.1, 0.5);
    const Tensor weight_gpu = to_device(gpu(), weight), bias_gpu = to_device(gpu(), bias);
    const auto expect_as_cpu = [&](const Tensor& out, const Tensor& ref) {
      const std::vector<double> got = values(out), want = to_double(ref);
      EXPECT_TRUE(all_close(got, want, elementwise(GetParam())));
      expect_padded_rows_zero(got, mask, C);
    };
    {
      const Tensor x = random_tensor(rng, {B, T, C}, -1.5, 2.5);
      Tensor ref = Tensor::empty(DType::F32, {B, T, C});
      ops::layer_norm_inference_forward(cpu_context(), ref, rounded(x), weight, bias, kEps, nullptr, &mask);
      Tensor out = poisoned(dtype(), {B, T, C});
      ops::layer_norm_inference_forward(gpu(), out, device(x), weight_gpu, bias_gpu, kEps, nullptr,
                                        &mask_gpu);
      expect_as_cpu(out, ref);
    }
    {
      const Tensor ids = random_ids(rng, {B, T}, V), types = random_ids(rng, {B, T}, TV);
      const Tensor word = random_tensor(rng, {V, C}, -1, 1), position = random_tensor(rng, {T, C}, -1, 1),
                   token_type = random_tensor(rng, {TV, C}, -1, 1);
      Tensor ref = Tensor::empty(DType::F32, {B, T, C});
      ops::embeddings_layer_norm_forward(cpu_context(), ref, ids, types, rounded(word), rounded(position),
                                         rounded(token_type), weight, bias, kEps, nullptr, &mask);
      Tensor out = poisoned(dtype(), {B, T, C});
      ops::embeddings_layer_norm_forward(gpu(), out, to_device(gpu(), ids), to_device(gpu(), types),
                                         device(word), device(position), device(token_type), weight_gpu,
                                         bias_gpu, kEps, nullptr, &mask_gpu);
      expect_as_cpu(out, ref);
    }
  }
}

TEST_P(BertFusedCuda, AttentionMatchesCpuWithPadding) {
  std::mt19937 rng(103);
  // Head sizes 24, 8 and 40 fill part of their register tile; 64 is BERT-base's, 128 the largest; at 16 bits
  // 32 (MiniLM's), 64 and 128 take the tensor-core kernel (T = 64 and 128: whole tiles; 511 and 130:
  // partial).
  const AttentionSize sizes[] = {{3, 37, 72, 3},   {3, 1, 40, 5},   {3, 130, 768, 12}, {3, 512, 768, 12},
                                 {3, 65, 120, 3},  {3, 37, 256, 2}, {4, 70, 384, 12},  {5, 128, 768, 12},
                                 {3, 64, 384, 12}, {2, 511, 256, 2}};
  for (const AttentionSize& s : sizes) {
    SCOPED_TRACE(s.name());
    const Tensor qkv = random_tensor(rng, {s.B, s.T, 3 * s.C}, -2, 2);
    const Tensor mask = ragged_mask(rng, s.B, s.T);
    Tensor ref = Tensor::empty(DType::F32, {s.B, s.T, s.C});
    ops::fused_attention_forward(cpu_context(), ref, rounded(qkv), mask, s.NH);
    Tensor out = poisoned(dtype(), {s.B, s.T, s.C});
    ops::fused_attention_forward(gpu(), out, device(qkv), to_device(gpu(), mask), s.NH);
    const std::vector<double> ref_values = to_double(ref);
    EXPECT_TRUE(all_close(values(out), ref_values, scaled(GetParam(), ref_values)));
  }
}

TEST_P(BertFusedCuda, FirstQueryAttentionIsTheFullAttentionsFirstRow) {
  // Token 0's row of the CPU's full attention, on ragged masks (a sequence with holes, one cut short, one all
  // padding) with one more whose token 0 alone is padding (its row is 0); head sizes 64 (BERT-base), 32
  // (MiniLM), 8, 24 and 128; T = 1 to 512. Out is poisoned with NaN first.
  std::mt19937 rng(109);
  const AttentionSize sizes[] = {{4, 37, 72, 3},    {4, 1, 40, 5},   {4, 130, 768, 12}, {4, 512, 768, 12},
                                 {5, 128, 384, 12}, {4, 70, 256, 2}, {4, 9, 64, 8}};
  for (const AttentionSize& s : sizes) {
    SCOPED_TRACE(s.name());
    const Tensor qkv = random_tensor(rng, {s.B, s.T, 3 * s.C}, -2, 2);
    Tensor mask = ragged_mask(rng, s.B, s.T);
    if (s.T > 1) mask.data<int32_t>()[(s.B - 2) * s.T] = 0;  // a whole sequence (ragged_mask's) loses token 0
    Tensor full = Tensor::empty(DType::F32, {s.B, s.T, s.C});
    ops::fused_attention_forward(cpu_context(), full, rounded(qkv), mask, s.NH);
    std::vector<double> ref;
    for (int64_t b = 0; b < s.B; ++b) {
      const float* row = full.data<float>() + b * s.T * s.C;
      ref.insert(ref.end(), row, row + s.C);
    }
    Tensor out = poisoned(dtype(), {s.B, 1, s.C});
    ops::first_query_attention_forward(gpu(), out, device(qkv), to_device(gpu(), mask), s.NH);
    const std::vector<double> got = values(out);
    EXPECT_TRUE(all_close(got, ref, scaled(GetParam(), ref)));
    if (s.T > 1) {
      for (int64_t c = 0; c < s.C; ++c) ASSERT_EQ(got[(s.B - 2) * s.C + c], 0.0) << "column " << c;
    }
  }
}

TEST_P(BertFusedCuda, AttentionRefusesWhatItsKernelCannotRun) {
  const Tensor mask_long = i32_tensor({1, 513}, std::vector<int32_t>(513, 1));
  Tensor out_long = poisoned(dtype(), {1, 513, 16}), qkv_long = poisoned(dtype(), {1, 513, 48});
  expect_error(
      [&] { ops::fused_attention_forward(gpu(), out_long, qkv_long, to_device(gpu(), mask_long), 2); },
      ErrorCode::UNSUPPORTED, {"T = 513"});
  const Tensor mask = i32_tensor({1, 4}, std::vector<int32_t>(4, 1));
  Tensor out = poisoned(dtype(), {1, 4, 36}), qkv = poisoned(dtype(), {1, 4, 108});
  expect_error([&] { ops::fused_attention_forward(gpu(), out, qkv, to_device(gpu(), mask), 3); },
               ErrorCode::UNSUPPORTED, {"head size HS = 12"});
}

struct LinearSize {
  int64_t B, T, C, OC;
};

TEST_P(BertFusedCuda, LinearResidualMatchesCpu) {
  std::mt19937 rng(104);
  for (const LinearSize s :
       {LinearSize{3, 37, 72, 72}, LinearSize{2, 13, 768, 768}, LinearSize{3, 5, 40, 122}}) {
    // 0: no residual; 1: a residual tensor; 2: the residual is y itself (the encoder's in-place add).
    for (const int residual_kind : {0, 1, 2}) {
      SCOPED_TRACE("C=" + std::to_string(s.C) + " OC=" + std::to_string(s.OC) + " residual kind " +
                   std::to_string(residual_kind));
      const double bound = 1.0 / std::sqrt(static_cast<double>(s.C));
      const Tensor x = random_tensor(rng, {s.B, s.T, s.C}, -1, 1);
      const Tensor weight = random_tensor(rng, {s.OC, s.C}, -bound, bound),
                   bias = random_tensor(rng, {s.OC}, -1, 1);
      const Tensor residual = random_tensor(rng, {s.B, s.T, s.OC}, -1, 1);
      Tensor ref = Tensor::empty(DType::F32, {s.B, s.T, s.OC});
      const Tensor residual_rounded = rounded(residual);
      ops::linear_residual_forward(cpu_context(), ref, rounded(x), rounded(weight), rounded(bias),
                                   residual_kind == 0 ? nullptr : &residual_rounded);
      Tensor y = residual_kind == 2 ? device(residual) : poisoned(dtype(), {s.B, s.T, s.OC});
      const Tensor residual_gpu = device(residual);
      const Tensor* residual_arg = residual_kind == 0 ? nullptr : residual_kind == 1 ? &residual_gpu : &y;
      ops::linear_residual_forward(gpu(), y, device(x), device(weight), device(bias), residual_arg);
      const std::vector<double> ref_values = to_double(ref);
      EXPECT_TRUE(all_close(values(y), ref_values, scaled(GetParam(), ref_values)));
    }
  }
}

TEST_P(BertFusedCuda, LinearResidualLayerNormMatchesCpuAndKeepsPaddedRowsZero) {
  // x and residual with zero padded rows, as the attention and the LayerNorms leave them; y poisoned. With
  // the mask every dtype's padded rows come out exact zeros (f32: written by the GEMM without bias, then left
  // by the LayerNorm; 16-bit: written by the LayerNorm), the other rows the CPU chain's; without it, every
  // row the CPU chain's. OC = 96: the warp LayerNorm; 98: the block one (rows off the 16-byte vector). f32
  // with the residual added by the GEMM and by the LayerNorm (ops::F32Residual; 16-bit ignores it).
  std::mt19937 rng(112);
  const int64_t B = 4, T = 37;
  const Tensor mask = ragged_mask(rng, B, T), mask_gpu = to_device(gpu(), mask);
  std::vector<std::pair<bool, ops::F32Residual>> runs;  // (masked, where the residual is added)
  for (const bool masked : {true, false}) {
    runs.emplace_back(masked, ops::F32Residual::GEMM_EPILOGUE);
    if (dtype() == DType::F32) runs.emplace_back(masked, ops::F32Residual::LAYER_NORM);
  }
  for (const auto& [C, OC] : {std::pair<int64_t, int64_t>{72, 96}, {40, 98}, {768, 768}}) {
    for (const auto& [masked, mode] : runs) {
      SCOPED_TRACE("C=" + std::to_string(C) + " OC=" + std::to_string(OC) + (masked ? " masked" : "") +
                   (mode == ops::F32Residual::LAYER_NORM ? " residual in the LayerNorm" : ""));
      const double bound = 1.0 / std::sqrt(static_cast<double>(C));
      Tensor x = random_tensor(rng, {B, T, C}, -1, 1), residual = random_tensor(rng, {B, T, OC}, -1, 1);
      zero_padded_rows(x, mask);
      zero_padded_rows(residual, mask);
      const Tensor weight = random_tensor(rng, {OC, C}, -bound, bound),
                   bias = random_tensor(rng, {OC}, -1, 1);
      const Tensor ln_w = random_tensor(rng, {OC}, 0.5, 1.5), ln_b = random_tensor(rng, {OC}, -0.5, 0.5);
      Tensor ref = Tensor::empty(DType::F32, {B, T, OC});
      ops::linear_residual_layer_norm_forward(cpu_context(), ref, rounded(x), rounded(weight), rounded(bias),
                                              rounded(residual), ln_w, ln_b, kEps, masked ? &mask : nullptr);
      Tensor y = poisoned(dtype(), {B, T, OC});
      ops::linear_residual_layer_norm_forward(
          gpu(), y, device(x), device(weight), device(bias), device(residual), to_device(gpu(), ln_w),
          to_device(gpu(), ln_b), kEps, masked ? &mask_gpu : nullptr, mode);
      const std::vector<double> got = values(y), want = to_double(ref);
      EXPECT_TRUE(all_close(got, want, scaled(GetParam(), want)));
      if (masked) expect_padded_rows_zero(got, mask, OC);
    }
  }
}

TEST(BertFusedF32Cuda, ResidualInTheLayerNormRefusesAResidualOverlappingY) {
  // The GEMM writes y before the LayerNorm reads the residual: a residual inside y would be read overwritten.
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const auto ctx = make_execution_context(Device{DeviceType::CUDA, 0});
  std::mt19937 rng(113);
  const int64_t N = 6, C = 32;
  const Tensor x = to_device(*ctx, random_tensor(rng, {N, C}, -1, 1));
  const Tensor weight = to_device(*ctx, random_tensor(rng, {C, C}, -0.2, 0.2)),
               bias = to_device(*ctx, random_tensor(rng, {C}, -1, 1)),
               ln_w = to_device(*ctx, random_tensor(rng, {C}, 0.5, 1.5)),
               ln_b = to_device(*ctx, random_tensor(rng, {C}, -0.5, 0.5));
  Tensor y = to_device(*ctx, random_tensor(rng, {N, C}, -1, 1));
  for (const ops::F32Residual mode : {ops::F32Residual::GEMM_EPILOGUE, ops::F32Residual::LAYER_NORM}) {
    const bool refused = [&] {
      try {
        ops::linear_residual_layer_norm_forward(*ctx, y, x, weight, bias, y, ln_w, ln_b, kEps, nullptr, mode);
        return false;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("overlaps y"), std::string::npos) << e.what();
        return true;
      }
    }();
    EXPECT_EQ(refused, mode == ops::F32Residual::LAYER_NORM) << "the GEMM adds a residual that is y itself";
  }
}

TEST_P(BertFusedCuda, LinearGeluMatchesCpu) {
  std::mt19937 rng(105);
  // OC = 161: the element count is no multiple of the 16-byte vector, so the GELU takes its scalar tail too.
  for (const LinearSize s :
       {LinearSize{3, 37, 72, 288}, LinearSize{2, 13, 768, 3072}, LinearSize{3, 5, 40, 161}}) {
    SCOPED_TRACE("C=" + std::to_string(s.C) + " OC=" + std::to_string(s.OC));
    const double bound = 2.0 / std::sqrt(static_cast<double>(s.C));
    const Tensor x = random_tensor(rng, {s.B, s.T, s.C}, -1, 1);
    const Tensor weight = random_tensor(rng, {s.OC, s.C}, -bound, bound),
                 bias = random_tensor(rng, {s.OC}, -1, 1);
    Tensor ref = Tensor::empty(DType::F32, {s.B, s.T, s.OC});
    ops::linear_gelu_forward(cpu_context(), ref, rounded(x), rounded(weight), rounded(bias));
    Tensor y = poisoned(dtype(), {s.B, s.T, s.OC});
    ops::linear_gelu_forward(gpu(), y, device(x), device(weight), device(bias));
    const std::vector<double> ref_values = to_double(ref);
    EXPECT_TRUE(all_close(values(y), ref_values, scaled(GetParam(), ref_values)));
  }
}

TEST_P(BertFusedCuda, LinearGeluWithPaddingMatchesCpu) {
  // With the batch's mask, and x's padded rows zero as the LayerNorms leave them, f32 on CUDA gives exact
  // zeros there (the GEMM without bias writes them, the bias + GELU pass leaves them; y is poisoned with NaN
  // first), as the CPU does; the 16-bit epilogue computes every row (ops/bert_fused.h). OC = 161: the element
  // path of the f32 kernel (rows not a whole number of 16-byte vectors); 288: the vectors.
  std::mt19937 rng(110);
  const int64_t B = 4, T = 37, C = 72;
  const Tensor mask = ragged_mask(rng, B, T), mask_gpu = to_device(gpu(), mask);
  for (const int64_t OC : {int64_t{288}, int64_t{161}}) {
    SCOPED_TRACE("OC=" + std::to_string(OC));
    Tensor x = random_tensor(rng, {B, T, C}, -1, 1);
    zero_padded_rows(x, mask);
    const Tensor weight = random_tensor(rng, {OC, C}, -0.2, 0.2), bias = random_tensor(rng, {OC}, 0.5, 1);
    const bool f32 = dtype() == DType::F32;
    Tensor ref = Tensor::empty(DType::F32, {B, T, OC});
    ops::linear_gelu_forward(cpu_context(), ref, rounded(x), rounded(weight), rounded(bias),
                             f32 ? &mask : nullptr);
    Tensor y = poisoned(dtype(), {B, T, OC});
    ops::linear_gelu_forward(gpu(), y, device(x), device(weight), device(bias), &mask_gpu);
    const std::vector<double> got = values(y), want = to_double(ref);
    EXPECT_TRUE(all_close(got, want, scaled(GetParam(), want)));
    if (f32) expect_padded_rows_zero(got, mask, OC);
  }
}

TEST(BertFusedTf32Cuda, GeluEpilogueComputesTheTanhFormUnderTf32Only) {
  // f32 under TF32 math with F32Gelu::TANH_EPILOGUE: cuBLASLt's epilogue, so the tanh form of GELU over the
  // CPU's product (TF32's tolerance, 1e-2), every row computed even with a mask; IEEE fp32 refuses it.
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const std::unique_ptr<ExecutionContext> gpu = make_execution_context(Device{DeviceType::CUDA, 0});
  std::mt19937 rng(111);
  const int64_t B = 3, T = 21, C = 96, OC = 384;
  const Tensor mask = ragged_mask(rng, B, T), mask_gpu = to_device(*gpu, mask);
  const Tensor x = random_tensor(rng, {B, T, C}, -1, 1);
  const Tensor weight = random_tensor(rng, {OC, C}, -0.3, 0.3), bias = random_tensor(rng, {OC}, -1, 1);
  Tensor product = Tensor::empty(DType::F32, {B, T, OC});
  ops::linear_residual_forward(cpu_context(), product, x, weight, bias, nullptr);
  std::vector<double> want = to_double(product);
  for (double& u : want) u = 0.5 * u * (1 + std::tanh(0.7978845608028654 * (u + 0.044715 * u * u * u)));
  const Tensor d_x = to_device(*gpu, x), d_w = to_device(*gpu, weight), d_b = to_device(*gpu, bias);
  Tensor y = to_device(*gpu, Tensor::zeros(DType::F32, {B, T, OC}));
  EXPECT_THROW(ops::linear_gelu_forward(*gpu, y, d_x, d_w, d_b, &mask_gpu, ops::F32Gelu::TANH_EPILOGUE),
               Error)
      << "IEEE fp32 keeps the exact GELU";
  gpu->set_math_mode(MathMode::TF32);
  ops::linear_gelu_forward(*gpu, y, d_x, d_w, d_b, &mask_gpu, ops::F32Gelu::TANH_EPILOGUE);
  const Tensor got = to_host(*gpu, y);
  EXPECT_TRUE(all_close(to_double(got), want, Tolerance{1e-2, 1e-2 * largest_abs(want)}));
}

TEST(BertFusedTf32Cuda, TensorCoreAttentionMatchesCpuWithPaddingUnderTf32Only) {
  // The tf32 tensor-core kernel (head sizes 32 and 64; whole and partial tiles of 64, T = 1, a sequence with
  // holes, one cut short, one all padding) against the CPU at TF32's tolerance, out poisoned with NaN first;
  // not bit-equal to the fp32 CUDA-core kernel (the products really are tf32); refused under IEEE math.
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const std::unique_ptr<ExecutionContext> gpu = make_execution_context(Device{DeviceType::CUDA, 0});
  gpu->set_math_mode(MathMode::TF32);
  std::mt19937 rng(113);
  const AttentionSize sizes[] = {{3, 37, 96, 3},   {3, 1, 64, 2},    {3, 130, 768, 12}, {5, 128, 768, 12},
                                 {3, 64, 384, 12}, {4, 70, 384, 12}, {2, 511, 128, 2}};
  for (const AttentionSize& s : sizes) {
    SCOPED_TRACE(s.name());
    const Tensor qkv = random_tensor(rng, {s.B, s.T, 3 * s.C}, -2, 2);
    const Tensor mask = ragged_mask(rng, s.B, s.T), mask_gpu = to_device(*gpu, mask),
                 qkv_gpu = to_device(*gpu, qkv);
    Tensor ref = Tensor::empty(DType::F32, {s.B, s.T, s.C});
    ops::fused_attention_forward(cpu_context(), ref, qkv, mask, s.NH);
    Tensor poison = Tensor::empty(DType::F32, {s.B, s.T, s.C});
    std::memset(poison.raw_data(), 0xFF, poison.nbytes());
    Tensor tensor_cores = to_device(*gpu, poison), cuda_cores = to_device(*gpu, poison);
    ops::fused_attention_forward(*gpu, tensor_cores, qkv_gpu, mask_gpu, s.NH, nullptr, true);
    ops::fused_attention_forward(*gpu, cuda_cores, qkv_gpu, mask_gpu, s.NH);
    const std::vector<double> want = to_double(ref), got = to_double(to_host(*gpu, tensor_cores));
    EXPECT_TRUE(all_close(got, want, Tolerance{1e-2, 1e-2 * largest_abs(want)}));
    if (s.T > 1) {
      EXPECT_NE(got, to_double(to_host(*gpu, cuda_cores)));
    }
  }
  gpu->set_math_mode(MathMode::IEEE_FP32);
  const Tensor mask = to_device(*gpu, i32_tensor({1, 4}, std::vector<int32_t>(4, 1)));
  Tensor out = to_device(*gpu, Tensor::zeros(DType::F32, {1, 4, 64})),
         qkv = to_device(*gpu, Tensor::zeros(DType::F32, {1, 4, 192}));
  expect_error([&] { ops::fused_attention_forward(*gpu, out, qkv, mask, 2, nullptr, true); },
               ErrorCode::INVALID_ARGUMENT, {"TF32"});
}

TEST_P(BertFusedCuda, LinearGeluIntoAnUnalignedViewMatchesCpu) {
  // y one element past a 16-byte boundary: the GELU kernel's element-at-a-time path.
  std::mt19937 rng(106);
  const int64_t N = 17, C = 40, OC = 97;
  const Tensor x = random_tensor(rng, {N, C}, -1, 1);
  const Tensor weight = random_tensor(rng, {OC, C}, -0.3, 0.3), bias = random_tensor(rng, {OC}, -1, 1);
  Tensor ref = Tensor::empty(DType::F32, {N, OC});
  ops::linear_gelu_forward(cpu_context(), ref, rounded(x), rounded(weight), rounded(bias));
  const Tensor storage = poisoned(dtype(), {N * OC + 1});
  Tensor y = storage.view({N, OC}, dtype_size(dtype()));
  ops::linear_gelu_forward(gpu(), y, device(x), device(weight), device(bias));
  const std::vector<double> ref_values = to_double(ref);
  EXPECT_TRUE(all_close(values(y), ref_values, scaled(GetParam(), ref_values)));
}

TEST_P(BertFusedCuda, ClassifierHeadMatchesCpuAndCountsCorrect) {
  std::mt19937 rng(107);
  struct Size {
    int64_t B, T, C, NL;
  };
  for (const Size s : {Size{5, 7, 72, 2}, Size{33, 3, 768, 3}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " C=" + std::to_string(s.C) + " NL=" + std::to_string(s.NL));
    const double bound = 1.5 / std::sqrt(static_cast<double>(s.C));
    const Tensor hidden = random_tensor(rng, {s.B, s.T, s.C}, -1, 1);
    const Tensor pooler_weight = random_tensor(rng, {s.C, s.C}, -bound, bound),
                 pooler_bias = random_tensor(rng, {s.C}, -0.5, 0.5),
                 classifier_weight = random_tensor(rng, {s.NL, s.C}, -bound, bound),
                 classifier_bias = random_tensor(rng, {s.NL}, -0.1, 0.1);
    const Tensor labels = random_ids(rng, {s.B}, static_cast<int32_t>(s.NL));

    Tensor ref_logits = Tensor::empty(DType::F32, {s.B, s.NL}),
           ref_predictions = Tensor::empty(DType::I32, {s.B}),
           ref_scratch = Tensor::empty(DType::F32, {s.B, s.C}), ref_correct = i32_tensor({1}, {5});
    ops::classifier_head_forward(cpu_context(), ref_logits, ref_predictions, &ref_correct, ref_scratch,
                                 rounded(hidden), rounded(pooler_weight), rounded(pooler_bias),
                                 rounded(classifier_weight), classifier_bias, &labels);

    const Tensor hidden_gpu = device(hidden), pooler_weight_gpu = device(pooler_weight),
                 pooler_bias_gpu = device(pooler_bias), classifier_weight_gpu = device(classifier_weight),
                 classifier_bias_gpu = to_device(gpu(), classifier_bias),
                 labels_gpu = to_device(gpu(), labels);
    Tensor scratch = poisoned(dtype(), {s.B, s.C});
    Tensor correct = to_device(gpu(), i32_tensor({1}, {5}));
    for (const bool with_labels : {true, false}) {
      SCOPED_TRACE(with_labels ? "with labels" : "without labels");
      Tensor logits = poisoned(DType::F32, {s.B, s.NL}), predictions = poisoned(DType::I32, {s.B});
      ops::classifier_head_forward(gpu(), logits, predictions, with_labels ? &correct : nullptr, scratch,
                                   hidden_gpu, pooler_weight_gpu, pooler_bias_gpu, classifier_weight_gpu,
                                   classifier_bias_gpu, with_labels ? &labels_gpu : nullptr);
      const std::vector<double> got = values(logits), ref = to_double(ref_logits);
      EXPECT_TRUE(all_close(got, ref, scaled(GetParam(), ref)));

      // Predictions: the first maximum of the GPU's own logits; the CPU's wherever its top two are apart.
      const Tensor p = to_host(gpu(), predictions);
      int32_t expected_correct = 5;
      for (int64_t b = 0; b < s.B; ++b) {
        int32_t first_max = 0, runner_up = -1;
        for (int32_t j = 1; j < s.NL; ++j) {
          if (got[b * s.NL + j] > got[b * s.NL + first_max]) first_max = j;
        }
        EXPECT_EQ(p.data<int32_t>()[b], first_max) << "row " << b;
        for (int32_t j = 0; j < s.NL; ++j) {
          if (j != ref_predictions.data<int32_t>()[b] &&
              (runner_up < 0 || ref[b * s.NL + j] > ref[b * s.NL + runner_up]))
            runner_up = j;
        }
        const double margin = ref[b * s.NL + ref_predictions.data<int32_t>()[b]] - ref[b * s.NL + runner_up];
        if (margin > 10 * GetParam().tol * largest_abs(ref)) {
          EXPECT_EQ(p.data<int32_t>()[b], ref_predictions.data<int32_t>()[b]) << "row " << b;
        }
        expected_correct += p.data<int32_t>()[b] == labels.data<int32_t>()[b] ? 1 : 0;
      }
      // The count accumulates (+=) with labels, and is left alone without them.
      EXPECT_EQ(to_host(gpu(), correct).data<int32_t>()[0], expected_correct);
    }
  }
}

TEST_P(BertFusedCuda, CapturedGraphReplaysEagerResults) {
  // One encoder-like chain with the pooler head, queued eagerly and then as a CUDA graph: same bits. Nothing
  // in it may allocate, synchronise or read back, or the capture fails.
  std::mt19937 rng(108);
  const int64_t B = 3, T = 37, C = 72, NH = 3, I = 144, NL = 2;
  const Tensor mask = to_device(gpu(), ragged_mask(rng, B, T));
  const Tensor qkv = device(random_tensor(rng, {B, T, 3 * C}, -2, 2));
  const Tensor w1 = device(random_tensor(rng, {I, C}, -0.2, 0.2)),
               b1 = device(random_tensor(rng, {I}, -1, 1));
  const Tensor w2 = device(random_tensor(rng, {C, I}, -0.1, 0.1)),
               b2 = device(random_tensor(rng, {C}, -1, 1));
  const Tensor ln_w = to_device(gpu(), random_tensor(rng, {C}, 0.5, 1.5)),
               ln_b = to_device(gpu(), random_tensor(rng, {C}, -0.5, 0.5));
  const Tensor pw = device(random_tensor(rng, {C, C}, -0.2, 0.2)),
               pb = device(random_tensor(rng, {C}, -0.5, 0.5));
  const Tensor cw = device(random_tensor(rng, {NL, C}, -0.2, 0.2)),
               cb = to_device(gpu(), random_tensor(rng, {NL}, -0.1, 0.1));
  const Tensor labels = to_device(gpu(), random_ids(rng, {B}, NL));
  Tensor attn = poisoned(dtype(), {B, T, C}), inter = poisoned(dtype(), {B, T, I}),
         hidden = poisoned(dtype(), {B, T, C}), scratch = poisoned(dtype(), {B, C}),
         logits = poisoned(DType::F32, {B, NL}), predictions = poisoned(DType::I32, {B}),
         correct = to_device(gpu(), i32_tensor({1}, {0}));
  const auto work = [&] {
    ops::fused_attention_forward(gpu(), attn, qkv, mask, NH);
    ops::layer_norm_inference_forward(gpu(), attn, attn, ln_w, ln_b, kEps);
    ops::linear_gelu_forward(gpu(), inter, attn, w1, b1);
    ops::linear_residual_forward(gpu(), hidden, inter, w2, b2, &attn);
    ops::layer_norm_inference_forward(gpu(), hidden, hidden, ln_w, ln_b, kEps);
    ops::classifier_head_forward(gpu(), logits, predictions, &correct, scratch, hidden, pw, pb, cw, cb,
                                 &labels);
  };
  work();
  const std::vector<double> eager_hidden = values(hidden), eager_logits = values(logits);
  const Tensor eager_predictions = to_host(gpu(), predictions);
  const int32_t eager_correct = to_host(gpu(), correct).data<int32_t>()[0];

  const std::unique_ptr<CapturedWork> graph = gpu().capture(work);
  const Tensor nan_hidden = to_host(gpu(), poisoned(dtype(), {B, T, C}));
  copy_tensor(gpu(), hidden, nan_hidden);
  copy_tensor(gpu(), logits, to_host(gpu(), poisoned(DType::F32, {B, NL})));
  graph->replay();
  gpu().synchronize();
  EXPECT_EQ(values(hidden), eager_hidden);
  EXPECT_EQ(values(logits), eager_logits);
  const Tensor replay_predictions = to_host(gpu(), predictions);
  for (int64_t b = 0; b < B; ++b)
    EXPECT_EQ(replay_predictions.data<int32_t>()[b], eager_predictions.data<int32_t>()[b]);
  EXPECT_EQ(to_host(gpu(), correct).data<int32_t>()[0], 2 * eager_correct)
      << "the count accumulates per replay";
}

INSTANTIATE_TEST_SUITE_P(Dtypes, BertFusedCuda, ::testing::ValuesIn(kCases), case_name);

}  // namespace
}  // namespace nlpf::test
