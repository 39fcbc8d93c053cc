// backend/context.h on a CUDA device: the stream-ordered caching allocator (current and peak bytes, the
// out-of-memory message), host<->device copies of tensors and of views at byte offsets, zero fills.
// Skipped with the reason where the build has no CUDA or no GPU is visible.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <string>

#include "backend/context.h"
#include "backend/device.h"
#include "core/error.h"

namespace nlpf {
namespace {

class CudaContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
    if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
    ctx_ = make_execution_context(Device{DeviceType::CUDA, 0});
  }
  std::unique_ptr<ExecutionContext> ctx_;
};

Tensor iota(int64_t n) {
  Tensor t = Tensor::empty(DType::F32, {n});
  std::iota(t.data<float>(), t.data<float>() + n, 1.0f);
  return t;
}

TEST_F(CudaContextTest, RoundTripThroughTheDevice) {
  const Tensor host = iota(1000);
  const Tensor device = to_device(*ctx_, host);
  EXPECT_EQ(device.device(), (Device{DeviceType::CUDA, 0}));
  Tensor back = to_host(*ctx_, device);
  ASSERT_EQ(back.numel(), 1000);
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(back.data<float>()[i], host.data<float>()[i]) << i;
  EXPECT_THROW(device.clone(), Error) << "host-only clone of a device tensor must be refused";
}

TEST_F(CudaContextTest, ViewsAtByteOffsetsAndZeroFill) {
  Tensor device = to_device(*ctx_, iota(30));
  Tensor middle = device.view({10}, 10 * sizeof(float));
  Tensor host_middle = to_host(*ctx_, middle);
  EXPECT_EQ(host_middle.data<float>()[0], 11.0f);
  EXPECT_EQ(host_middle.data<float>()[9], 20.0f);
  fill_zero(*ctx_, middle);
  Tensor all = to_host(*ctx_, device);
  EXPECT_EQ(all.data<float>()[9], 10.0f);
  EXPECT_EQ(all.data<float>()[10], 0.0f);
  EXPECT_EQ(all.data<float>()[19], 0.0f);
  EXPECT_EQ(all.data<float>()[20], 21.0f);
  Tensor into = device.view({10}, 20 * sizeof(float));
  copy_tensor(*ctx_, into, iota(10));  // host -> device view
  EXPECT_EQ(to_host(*ctx_, device).data<float>()[29], 10.0f);
}

TEST_F(CudaContextTest, AllocatorCountsCurrentAndPeakBytes) {
  Allocator& allocator = ctx_->allocator();
  const size_t before = allocator.current_bytes();
  allocator.reset_peak();
  {
    Tensor a = empty_tensor(*ctx_, DType::F32, {1 << 20});
    Tensor b = empty_tensor(*ctx_, DType::F16, {1 << 20});
    EXPECT_EQ(allocator.current_bytes(), before + (4u << 20) + (2u << 20));
  }
  EXPECT_EQ(allocator.current_bytes(), before);
  EXPECT_EQ(allocator.peak_bytes(), before + (6u << 20));
  // Cached, stream-ordered reuse: the same size again does not raise the peak.
  { Tensor c = empty_tensor(*ctx_, DType::F32, {1 << 20}); }
  EXPECT_EQ(allocator.peak_bytes(), before + (6u << 20));
}

TEST_F(CudaContextTest, OutOfMemoryNamesTheSizeAndTheContextStaysUsable) {
  const int64_t elements = int64_t{1} << 48;  // 1 PiB of f32
  try {
    Tensor t = empty_tensor(*ctx_, DType::F32, {elements});
    FAIL() << "a 1 PiB tensor was allocated";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::OUT_OF_MEMORY) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(elements * 4) + " bytes"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("GPU"), std::string::npos) << e.what();
  }
  const Tensor back = to_host(*ctx_, to_device(*ctx_, iota(4)));
  EXPECT_EQ(back.data<float>()[3], 4.0f);
  ctx_->synchronize();
}

TEST_F(CudaContextTest, TensorsOfAnotherDeviceAreRefused) {
  if (cuda_devices().size() < 2) GTEST_SKIP() << "one CUDA device: nothing to mix";
  auto other = make_execution_context(Device{DeviceType::CUDA, 1});
  Tensor elsewhere = to_device(*other, iota(4));
  EXPECT_THROW(to_host(*ctx_, elsewhere), Error);
}

}  // namespace
}  // namespace nlpf
