// cross_entropy_forward / cross_entropy_backward on CUDA against the CPU op: odd B and NL, logits spread wide
// enough that the softmax saturates some rows; the loss is a double on both devices (the same sum in the same
// order, so near its last bit), probabilities and gradients f32 within 1e-5. An out-of-range label is found
// on the device and reported with the CPU's message.
#include "ops/cross_entropy.h"

#include <cmath>
#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};

class CrossEntropyCuda : public CudaOpTest {};

Tensor random_labels(std::mt19937& rng, int64_t B, int64_t NL) {
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(NL) - 1);
  Tensor labels = Tensor::empty(DType::I32, {B});
  for (int64_t b = 0; b < B; ++b) labels.data<int32_t>()[b] = dist(rng);
  return labels;
}

TEST_F(CrossEntropyCuda, ForwardAndBackwardMatchCpu) {
  std::mt19937 rng(801);
  struct Size {
    int64_t B, NL;
  };
  for (const Size s : {Size{37, 5}, Size{1, 2}, Size{300, 2}, Size{13, 131}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " NL=" + std::to_string(s.NL));
    const Tensor logits = random_tensor(rng, {s.B, s.NL}, -8, 8), labels = random_labels(rng, s.B, s.NL);
    Tensor ref_probs = Tensor::empty(DType::F32, {s.B, s.NL});
    const double ref_loss = ops::cross_entropy_forward(cpu_context(), ref_probs, logits, labels);
    Tensor probs = poisoned({s.B, s.NL});
    const Tensor labels_d = device(labels);
    const double loss = ops::cross_entropy_forward(gpu(), probs, device(logits), labels_d);
    EXPECT_TRUE(std::isfinite(loss));
    EXPECT_NEAR(loss, ref_loss, 1e-12 * std::abs(ref_loss) + 1e-14);
    EXPECT_TRUE(all_close(values(probs), to_double(ref_probs), kF32));

    for (const double dloss : {1.0, 1024.0}) {
      Tensor ref_dlogits = Tensor::empty(DType::F32, {s.B, s.NL});
      ops::cross_entropy_backward(cpu_context(), ref_dlogits, ref_probs, labels, dloss);
      Tensor dlogits = poisoned({s.B, s.NL});
      // The GPU's own probs: the backward is checked on the forward's output as the model uses it.
      ops::cross_entropy_backward(gpu(), dlogits, probs, labels_d, dloss);
      const std::vector<double> expected = to_double(ref_dlogits);
      EXPECT_TRUE(all_close(values(dlogits), expected, Tolerance{1e-5, 1e-6 * largest_abs(expected)}));
    }
  }
}

TEST_F(CrossEntropyCuda, OutOfRangeLabelIsReported) {
  std::mt19937 rng(802);
  const Tensor logits = random_tensor(rng, {6, 5});
  for (const int32_t bad : {5, -1}) {
    Tensor labels = i32_tensor({6}, {0, 4, 1, bad, 2, 7});
    Tensor probs = poisoned({6, 5});
    expect_error([&] { ops::cross_entropy_forward(gpu(), probs, device(logits), device(labels)); },
                 ErrorCode::INVALID_ARGUMENT,
                 {"cross_entropy_forward", "labels[3] = " + std::to_string(bad), "outside [0, 5)"});
  }
  // The context stays usable after the reported error.
  Tensor probs = poisoned({6, 5});
  const double loss =
      ops::cross_entropy_forward(gpu(), probs, device(logits), device(i32_tensor({6}, {0, 1, 2, 3, 4, 0})));
  EXPECT_TRUE(std::isfinite(loss));
}

}  // namespace
}  // namespace nlpf::test
