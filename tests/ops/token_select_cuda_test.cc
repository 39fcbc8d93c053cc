// token_select_forward / token_select_backward on CUDA against the CPU ops: odd sizes, the first, a middle
// and the last token, and every element of dx written (dx starts as NaN); the 16-bit forward copies the bits;
// 16 bits on the CPU and a 16-bit backward are refused. Skipped where the build has no CUDA
// or no GPU is visible.
#include "ops/token_select.h"

#include <cstring>
#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class TokenSelectCuda : public CudaOpTest {};

TEST_F(TokenSelectCuda, ForwardAndBackwardMatchCpu) {
  std::mt19937 rng(15);
  struct Size {
    int64_t B, T, C;
  };
  for (const Size s : {Size{5, 13, 37}, Size{1, 1, 3}, Size{3, 7, 300}}) {
    for (const int64_t index : {int64_t{0}, s.T / 2, s.T - 1}) {
      SCOPED_TRACE("B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" + std::to_string(s.C) +
                   " index=" + std::to_string(index));
      const Tensor x = random_tensor(rng, {s.B, s.T, s.C}), dout = random_tensor(rng, {s.B, s.C});
      Tensor out_ref = Tensor::empty(DType::F32, {s.B, s.C}),
             dx_ref = Tensor::empty(DType::F32, {s.B, s.T, s.C});
      ops::token_select_forward(cpu_context(), out_ref, x, index);
      ops::token_select_backward(cpu_context(), dx_ref, dout, index);

      Tensor out = poisoned({s.B, s.C}), dx = poisoned({s.B, s.T, s.C});
      ops::token_select_forward(gpu(), out, device(x), index);
      ops::token_select_backward(gpu(), dx, device(dout), index);
      EXPECT_TRUE(all_close(values(out), to_double(out_ref), kCudaF32));
      EXPECT_TRUE(all_close(values(dx), to_double(dx_ref), kCudaF32));
    }
  }
}

TEST_F(TokenSelectCuda, SixteenBitForwardCopiesTheRowsBits) {
  std::mt19937 rng(16);
  for (const DType dtype : {DType::BF16, DType::F16}) {
    for (const int64_t index : {int64_t{0}, int64_t{6}}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " index=" + std::to_string(index));
      const int64_t B = 5, T = 7, C = 37;
      const Tensor x = random_tensor(rng, {B, T, C}).to(dtype);
      Tensor host_out = Tensor::empty(dtype, {B, C});
      std::memset(host_out.raw_data(), 0xFF, host_out.nbytes());
      Tensor out = to_device(gpu(), host_out);
      ops::token_select_forward(gpu(), out, to_device(gpu(), x), index);
      const Tensor got = to_host(gpu(), out);
      for (int64_t b = 0; b < B; ++b) {
        EXPECT_EQ(std::memcmp(static_cast<const uint16_t*>(got.raw_data()) + b * C,
                              static_cast<const uint16_t*>(x.raw_data()) + (b * T + index) * C, C * 2),
                  0)
            << "row " << b;
      }
    }
  }
  Tensor cpu_out = Tensor::empty(DType::BF16, {1, 3});
  expect_error(
      [&] {
        ops::token_select_forward(cpu_context(), cpu_out, Tensor::zeros(DType::BF16, {1, 2, 3}), 0);
      },
      ErrorCode::UNSUPPORTED, {"x"});
  Tensor dx = to_device(gpu(), Tensor::zeros(DType::BF16, {1, 2, 3}));
  expect_error(
      [&] {
        ops::token_select_backward(gpu(), dx, to_device(gpu(), Tensor::zeros(DType::BF16, {1, 3})), 0);
      },
      ErrorCode::UNSUPPORTED, {"dx"});
}

}  // namespace
}  // namespace nlpf::test
