// clip_grad_norm on CUDA against the CPU op: gradients of odd shapes (one of them large enough for many
// blocks of the two-pass sum), a max_norm that clips and one that does not (gradients then bit for bit
// untouched), and non-finite gradients (norm inf or NaN, gradients untouched). The norm is summed in double
// on both devices: within 1e-6 relative is the contract, near 1e-15 the expectation. The kernels take up to
// 64 arrays per launch: a model-sized list (151 arrays of odd sizes) crosses launch boundaries.
#include "ops/clip_grad_norm.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class ClipGradNormCuda : public CudaOpTest {
 protected:
  std::vector<Tensor> random_grads(std::mt19937& rng) {
    std::vector<Tensor> grads;
    for (const Shape& shape : {Shape{37}, Shape{29, 37}, Shape{5, 13, 37}, Shape{1}, Shape{300007}}) {
      grads.push_back(random_tensor(rng, shape, -0.5, 0.5));
    }
    return grads;
  }
  std::vector<Tensor> on_device(const std::vector<Tensor>& host) {
    std::vector<Tensor> out;
    for (const Tensor& t : host) out.push_back(device(t));
    return out;
  }
};

TEST_F(ClipGradNormCuda, NormAndScaleMatchCpu) {
  std::mt19937 rng(1001);
  for (const double max_norm : {1.0, 1e6}) {
    SCOPED_TRACE("max_norm " + std::to_string(max_norm));
    std::vector<Tensor> grads = random_grads(rng), ref;
    for (const Tensor& g : grads) ref.push_back(host_copy(g));
    std::vector<Tensor> grads_d = on_device(grads);
    const double ref_norm = ops::clip_grad_norm(cpu_context(), ref, max_norm);
    const double norm = ops::clip_grad_norm(gpu(), grads_d, max_norm);
    EXPECT_TRUE(std::isfinite(norm));
    EXPECT_NEAR(norm, ref_norm, 1e-6 * ref_norm);
    EXPECT_GT(ref_norm, 1.0);  // max_norm 1 clips, 1e6 does not
    for (size_t i = 0; i < grads.size(); ++i) {
      const std::vector<double> expected = to_double(ref[i]);
      EXPECT_TRUE(all_close(values(grads_d[i]), expected, Tolerance{1e-6, 1e-9})) << "grads[" << i << "]";
    }
  }
}

TEST_F(ClipGradNormCuda, ManyArraysAcrossLaunchesMatchCpu) {
  std::mt19937 rng(1004);
  std::uniform_int_distribution<int64_t> size(1, 5000);
  std::vector<Tensor> grads;
  for (int i = 0; i < 150; ++i) grads.push_back(random_tensor(rng, {size(rng)}, -0.5, 0.5));
  grads.push_back(random_tensor(rng, {300007}, -0.5, 0.5));
  std::vector<Tensor> ref;
  for (const Tensor& g : grads) ref.push_back(host_copy(g));
  std::vector<Tensor> grads_d = on_device(grads);
  const double ref_norm = ops::clip_grad_norm(cpu_context(), ref, 1.0);
  const double norm = ops::clip_grad_norm(gpu(), grads_d, 1.0);
  EXPECT_NEAR(norm, ref_norm, 1e-6 * ref_norm);
  EXPECT_GT(ref_norm, 1.0);
  for (size_t i = 0; i < grads.size(); ++i) {
    EXPECT_TRUE(all_close(values(grads_d[i]), to_double(ref[i]), Tolerance{1e-6, 1e-9}))
        << "grads[" << i << "]";
  }
}

TEST_F(ClipGradNormCuda, NoClipLeavesGradientsBitIdentical) {
  std::mt19937 rng(1002);
  std::vector<Tensor> grads = random_grads(rng);
  std::vector<Tensor> grads_d = on_device(grads);
  const double norm = ops::clip_grad_norm(gpu(), grads_d, 1e9);
  EXPECT_GT(norm, 0);
  for (size_t i = 0; i < grads.size(); ++i) EXPECT_EQ(values(grads_d[i]), to_double(grads[i])) << i;
}

TEST_F(ClipGradNormCuda, NonFiniteNormLeavesGradientsUntouched) {
  std::mt19937 rng(1003);
  for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    std::vector<Tensor> grads = random_grads(rng);
    grads[2].data<float>()[17] = bad;
    std::vector<Tensor> ref;
    for (const Tensor& g : grads) ref.push_back(host_copy(g));
    std::vector<Tensor> grads_d = on_device(grads);
    const double ref_norm = ops::clip_grad_norm(cpu_context(), ref, 1.0);
    const double norm = ops::clip_grad_norm(gpu(), grads_d, 1.0);
    EXPECT_FALSE(std::isfinite(norm));
    EXPECT_EQ(std::isnan(norm), std::isnan(ref_norm));
    for (size_t i = 0; i < grads.size(); ++i) {
      const std::vector<double> got = values(grads_d[i]), expected = to_double(grads[i]);
      ASSERT_EQ(got.size(), expected.size());
      for (size_t j = 0; j < got.size(); ++j) {
        if (std::isnan(expected[j])) {
          EXPECT_TRUE(std::isnan(got[j]));
        } else {
          EXPECT_EQ(got[j], expected[j]) << "grads[" << i << "][" << j << "]";
        }
      }
    }
  }
}

TEST_F(ClipGradNormCuda, DeviceMemoryFormMatchesCpuInBothScalings) {
  // The captured step's form (loss scale read, norm and factor written in device memory) against the CPU's:
  // the norm and the factor within the norm's tolerance, the gradients scaled by the factor rounded to f32
  // (IN_PLACE) or untouched (BY_READER: AdamW multiplies them as it reads them).
  std::mt19937 rng(1005);
  for (const ops::ClipScaling scaling : {ops::ClipScaling::IN_PLACE, ops::ClipScaling::BY_READER}) {
    const bool in_place = scaling == ops::ClipScaling::IN_PLACE;
    SCOPED_TRACE(in_place ? "in place" : "by reader");
    std::vector<Tensor> grads = random_grads(rng), ref;
    for (const Tensor& g : grads) ref.push_back(host_copy(g));
    std::vector<Tensor> grads_d = on_device(grads);
    const double loss_scale = 8.0;
    double ref_norm = 0, ref_factor = 0;
    ops::clip_grad_norm(cpu_context(), ref, 1.0, &loss_scale, &ref_norm, &ref_factor, scaling);
    // Three doubles in device memory (loss scale, norm, factor), held by an i64 tensor.
    Tensor scalars = poisoned({3}, DType::I64);
    Tensor host_scalars = Tensor::zeros(DType::I64, {3});
    std::memcpy(host_scalars.data<int64_t>(), &loss_scale, sizeof loss_scale);
    copy_tensor(gpu(), scalars, host_scalars);
    double* d = reinterpret_cast<double*>(scalars.data<int64_t>());
    ops::clip_grad_norm(gpu(), grads_d, 1.0, d, d + 1, d + 2, scaling);
    const Tensor got = to_host(gpu(), scalars);
    double norm = 0, factor = 0;
    std::memcpy(&norm, got.data<int64_t>() + 1, sizeof norm);
    std::memcpy(&factor, got.data<int64_t>() + 2, sizeof factor);
    EXPECT_NEAR(norm, ref_norm, 1e-6 * ref_norm);
    EXPECT_NEAR(factor, ref_factor, 1e-6 * ref_factor);
    EXPECT_LT(factor, 1.0 / loss_scale);  // it clips
    for (size_t i = 0; i < grads.size(); ++i) {
      const std::vector<double> values_d = values(grads_d[i]), original = to_double(grads[i]);
      for (size_t j = 0; j < original.size(); ++j) {
        const double expected =
            in_place ? static_cast<double>(static_cast<float>(original[j]) * static_cast<float>(factor))
                     : original[j];
        ASSERT_EQ(values_d[j], expected) << "grads[" << i << "][" << j << "]";
      }
    }
  }
}

TEST_F(ClipGradNormCuda, Deterministic) {
  std::mt19937 rng(1004);
  const std::vector<Tensor> grads = random_grads(rng);
  std::vector<Tensor> first = on_device(grads), second = on_device(grads);
  EXPECT_EQ(ops::clip_grad_norm(gpu(), first, 1e9), ops::clip_grad_norm(gpu(), second, 1e9));
}

}  // namespace
}  // namespace nlpf::test
