// cuda::matmul (backend/cuda/gemm.h) strided-batched against a per-matrix CPU reference in double: odd sizes,
// every pair of transposes, = and +=, leading dimensions past the row width and batch strides past the matrix
// (so the matrices are only 4-byte aligned and d has gaps that must stay untouched), in both math modes:
// IEEE fp32 within 1e-5, TF32 within 1e-2 (as linear_cuda_test). Also: a batch of 1 is the plain product,
// bf16 operands with an f32 output (matmul and gemm's linear form with its bias: the products of bf16 values
// are exact in fp32, so within 1e-5 of the double reference on the same bf16 values), and the argument
// errors. Calls the CUDA backend directly, so it is built only where CUDA is (tests/CMake).
#include <optional>
#include <string>

#include "backend/cuda/gemm.h"
#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

using cuda::Transpose;

struct ModeCase {
  MathMode mode;
  double tol;
};
const ModeCase kModes[] = {{MathMode::IEEE_FP32, 1e-5}, {MathMode::TF32, 1e-2}};

// One strided-batched problem in matmul's terms; the stored shapes follow from the transposes.
struct Problem {
  Transpose transpose_a, transpose_b;
  bool accumulate;
  int64_t batch, M, N, K, lda, ldb, ldd, stride_a, stride_b, stride_d;
};

// Elements of a buffer holding `batch` matrices of `rows` rows of stride ld, `stride` apart.
int64_t buffer_size(int64_t batch, int64_t rows, int64_t ld, int64_t stride) {
  return (batch - 1) * stride + rows * ld;
}

// d (as given, with its gaps) after d (= or +=) op(a) op(b) per matrix, in double.
std::vector<double> reference(const Problem& p, const Tensor& a, const Tensor& b, const Tensor& d) {
  std::vector<double> out = to_double(d);
  const float* av = a.data<float>();
  const float* bv = b.data<float>();
  for (int64_t i = 0; i < p.batch; ++i) {
    for (int64_t m = 0; m < p.M; ++m) {
      for (int64_t n = 0; n < p.N; ++n) {
        double sum = 0;
        for (int64_t k = 0; k < p.K; ++k) {
          const double x =
              av[i * p.stride_a + (p.transpose_a == Transpose::YES ? k * p.lda + m : m * p.lda + k)];
          const double y =
              bv[i * p.stride_b + (p.transpose_b == Transpose::YES ? n * p.ldb + k : k * p.ldb + n)];
          sum += x * y;
        }
        double& at = out[static_cast<size_t>(i * p.stride_d + m * p.ldd + n)];
        at = p.accumulate ? at + sum : sum;
      }
    }
  }
  return out;
}

class MatmulCuda : public CudaOpTest {
 protected:
  // d after matmul on the GPU from the host a, b, d (copied to the device; a and b converted to `operands`
  // first where given).
  std::vector<double> run(const Problem& p, const Tensor& a, const Tensor& b, const Tensor& d,
                          std::optional<DType> operands = std::nullopt) {
    const Tensor a_d = to_device(gpu(), operands ? a.to(*operands) : a),
                 b_d = to_device(gpu(), operands ? b.to(*operands) : b);
    Tensor d_d = device(d);
    cuda::MatmulArgs m;
    m.d = d_d.data<float>();
    m.a = a_d.raw_data();
    m.b = b_d.raw_data();
    m.operand_dtype = operands;
    m.transpose_a = p.transpose_a;
    m.transpose_b = p.transpose_b;
    m.accumulate = p.accumulate;
    m.M = p.M;
    m.N = p.N;
    m.K = p.K;
    m.lda = p.lda;
    m.ldb = p.ldb;
    m.ldd = p.ldd;
    m.batch = p.batch;
    m.stride_a = p.stride_a;
    m.stride_b = p.stride_b;
    m.stride_d = p.stride_d;
    cuda::matmul(gpu(), m);
    return values(d_d);
  }
};

TEST_F(MatmulCuda, StridedBatchMatchesCpu) {
  std::mt19937 rng(1201);
  const int64_t batch = 5, M = 7, N = 11, K = 13;
  for (const ModeCase mode : kModes) {
    gpu().set_math_mode(mode.mode);
    for (const Transpose ta : {Transpose::NO, Transpose::YES}) {
      for (const Transpose tb : {Transpose::NO, Transpose::YES}) {
        for (const bool accumulate : {false, true}) {
          for (const bool padded : {false, true}) {
            SCOPED_TRACE(std::string(mode.mode == MathMode::TF32 ? "tf32" : "ieee") +
                         (ta == Transpose::YES ? " a^T" : " a") + (tb == Transpose::YES ? " b^T" : " b") +
                         (accumulate ? " +=" : " =") + (padded ? " padded" : " packed"));
            // Stored shapes: a [M, K] or [K, M], b [K, N] or [N, K], d [M, N]; padded: ld one past the row
            // width and a gap of 3 elements between matrices.
            const int64_t a_rows = ta == Transpose::YES ? K : M, a_cols = ta == Transpose::YES ? M : K;
            const int64_t b_rows = tb == Transpose::YES ? N : K, b_cols = tb == Transpose::YES ? K : N;
            const int64_t pad = padded ? 1 : 0, gap = padded ? 3 : 0;
            Problem p{ta, tb, accumulate, batch, M, N, K, a_cols + pad, b_cols + pad, N + pad, 0, 0, 0};
            p.stride_a = a_rows * p.lda + gap;
            p.stride_b = b_rows * p.ldb + gap;
            p.stride_d = M * p.ldd + gap;
            const Tensor a = random_tensor(rng, {buffer_size(batch, a_rows, p.lda, p.stride_a)});
            const Tensor b = random_tensor(rng, {buffer_size(batch, b_rows, p.ldb, p.stride_b)});
            const Tensor d = random_tensor(rng, {buffer_size(batch, M, p.ldd, p.stride_d)});
            const std::vector<double> expected = reference(p, a, b, d);
            EXPECT_TRUE(all_close(run(p, a, b, d), expected, scaled_tolerance(mode.tol, expected)));
          }
        }
      }
    }
  }
}

TEST_F(MatmulCuda, SharedOperandAndBatchOfOne) {
  // stride_b = 0: every product reads the same b (a broadcast operand); batch 1 ignores its strides.
  std::mt19937 rng(1202);
  const int64_t M = 9, N = 3, K = 17;
  for (const int64_t batch : {int64_t{1}, int64_t{4}}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    const Problem p{Transpose::NO, Transpose::YES, false, batch, M, N, K, K, K, N, M * K, 0, M * N};
    const Tensor a = random_tensor(rng, {batch * M * K}), b = random_tensor(rng, {N * K}),
                 d = random_tensor(rng, {batch * M * N});
    const std::vector<double> expected = reference(p, a, b, d);
    EXPECT_TRUE(all_close(run(p, a, b, d), expected, scaled_tolerance(1e-5, expected)));
  }
}

// Host values rounded to bf16 (kept in f32): the operands both sides multiply.
Tensor bf16_values(std::mt19937& rng, const Shape& shape) {
  return random_tensor(rng, shape).to(DType::BF16).to(DType::F32);
}

TEST_F(MatmulCuda, Bf16OperandsWithF32OutputMatchCpu) {
  std::mt19937 rng(1203);
  const int64_t batch = 3, M = 24, N = 40, K = 72;
  for (const MathMode mode : {MathMode::IEEE_FP32, MathMode::BF16}) {  // the math mode does not apply
    gpu().set_math_mode(mode);
    for (const Transpose ta : {Transpose::NO, Transpose::YES}) {
      for (const Transpose tb : {Transpose::NO, Transpose::YES}) {
        for (const bool accumulate : {false, true}) {
          SCOPED_TRACE(std::string(mode == MathMode::BF16 ? "bf16 mode" : "ieee mode") +
                       (ta == Transpose::YES ? " a^T" : " a") + (tb == Transpose::YES ? " b^T" : " b") +
                       (accumulate ? " +=" : " ="));
          const int64_t a_rows = ta == Transpose::YES ? K : M, a_cols = ta == Transpose::YES ? M : K;
          const int64_t b_rows = tb == Transpose::YES ? N : K, b_cols = tb == Transpose::YES ? K : N;
          const Problem p{ta,     tb, accumulate,      batch,           M,    N, K, a_cols,
                          b_cols, N,  a_rows * a_cols, b_rows * b_cols, M * N};
          const Tensor a = bf16_values(rng, {batch * a_rows * a_cols});
          const Tensor b = bf16_values(rng, {batch * b_rows * b_cols});
          const Tensor d = random_tensor(rng, {batch * M * N});
          const std::vector<double> expected = reference(p, a, b, d);
          EXPECT_TRUE(all_close(run(p, a, b, d, DType::BF16), expected, scaled_tolerance(1e-5, expected)));
        }
      }
    }
  }
  gpu().set_math_mode(MathMode::IEEE_FP32);

  // gemm's linear form: y [N, OC] f32 = x [N, C] W^T + bias, x and W bf16, the bias f32.
  const int64_t rows = 33, C = 64, OC = 48;
  const Tensor x = bf16_values(rng, {rows, C}), w = bf16_values(rng, {OC, C}),
               bias = random_tensor(rng, {OC});
  std::vector<double> expected(static_cast<size_t>(rows * OC));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < OC; ++o) {
      double sum = bias.data<float>()[o];
      for (int64_t c = 0; c < C; ++c) sum += double{x.data<float>()[r * C + c]} * w.data<float>()[o * C + c];
      expected[static_cast<size_t>(r * OC + o)] = sum;
    }
  }
  const Tensor x_d = to_device(gpu(), x.to(DType::BF16)), w_d = to_device(gpu(), w.to(DType::BF16)),
               bias_d = device(bias);
  Tensor y = poisoned({rows, OC});
  cuda::GemmArgs g;
  g.y = y.data<float>();
  g.x = x_d.raw_data();
  g.weight = w_d.raw_data();
  g.bias = bias_d.data<float>();
  g.dtype = DType::F32;
  g.operand_dtype = DType::BF16;
  g.N = rows;
  g.C = C;
  g.OC = OC;
  g.ldx = C;
  cuda::gemm(gpu(), g);
  EXPECT_TRUE(all_close(values(y), expected, scaled_tolerance(1e-5, expected)));

  // 16-bit operands give an f32 output or their own dtype, nothing else.
  g.dtype = DType::F16;
  expect_error([&] { cuda::gemm(gpu(), g); }, ErrorCode::UNSUPPORTED,
               {"gemm", "bf16 operands", "f16 output"});
}

TEST_F(MatmulCuda, RejectsBadBatches) {
  const Tensor a = device(Tensor::zeros(DType::F32, {64})), b = device(Tensor::zeros(DType::F32, {64}));
  Tensor d = device(Tensor::zeros(DType::F32, {64}));
  cuda::MatmulArgs m;
  m.d = d.data<float>();
  m.a = a.data<float>();
  m.b = b.data<float>();
  m.M = m.N = m.K = m.lda = m.ldb = m.ldd = 2;
  m.batch = 0;
  expect_error([&] { cuda::matmul(gpu(), m); }, ErrorCode::INVALID_ARGUMENT, {"matmul", "batch=0"});
  m.batch = 3;
  m.stride_a = m.stride_b = 4;
  m.stride_d = 3;  // matrices of d 4 elements long, 3 apart: they would overlap
  expect_error([&] { cuda::matmul(gpu(), m); }, ErrorCode::INVALID_ARGUMENT, {"matmul", "overlap"});
  m.stride_d = 4;
  m.stride_a = -1;
  expect_error([&] { cuda::matmul(gpu(), m); }, ErrorCode::INVALID_ARGUMENT, {"matmul", "stride_a=-1"});
}

}  // namespace
}  // namespace nlpf::test
