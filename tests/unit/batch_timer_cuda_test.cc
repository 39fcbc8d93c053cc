// The CUDA-events BatchTimer against spin kernels of known minimum duration (the GPU's nanosecond timer):
// one latency per batch in start order, each at least its kernel's duration (host calls return at once, so
// only events that follow the device pass this), the events reused by a second pass. Skips with the reason on
// a machine without a GPU or a build without CUDA.
#include <gtest/gtest.h>

#include "backend/device.h"
#include "core/error.h"
#include "measure/batch_timer.h"

namespace nlpf {
namespace {

constexpr Device kGpu{DeviceType::CUDA, 0};

TEST(BatchTimerCuda, EventsTimeSpinKernelsInOrder) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const std::unique_ptr<BatchTimer> timer = make_batch_timer(kGpu);
  EXPECT_EQ(timer->source(), "cuda_events");
  // Spins of 2, 8 and 0.5 ms, then an empty batch: events must follow the kernels, not the host calls
  // (which return at once).
  const double spins_ms[] = {2.0, 8.0, 0.5};
  for (int pass = 0; pass < 2; ++pass) {
    for (const double ms : spins_ms) {
      timer->start();
      cuda_enqueue_spin(kGpu.index, ms * 1e3);
      timer->stop();
    }
    timer->start();
    timer->stop();
    const std::vector<double> latencies = timer->finish();
    ASSERT_EQ(latencies.size(), 4u) << "pass " << pass;
    for (size_t i = 0; i < 3; ++i) {
      // Event resolution is about 0.5 us; the spin lasts at least its duration.
      EXPECT_GE(latencies[i], spins_ms[i] - 1e-3) << "pass " << pass << ", batch " << i;
    }
    EXPECT_GE(latencies[3], 0.0) << "pass " << pass;  // an end event never precedes its start
  }
  cuda_synchronize(kGpu.index);
}

TEST(BatchTimerCuda, MisuseIsCaughtBeforeTheDevice) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
  const std::unique_ptr<BatchTimer> timer = make_batch_timer(kGpu);
  try {
    timer->finish();
    timer->stop();
    FAIL() << "stop() without start() was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INTERNAL);
    EXPECT_NE(std::string(e.what()).find("batch timer (cuda_events)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
