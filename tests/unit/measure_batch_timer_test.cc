// BatchTimer bookkeeping and the steady-clock implementation (through make_batch_timer for the CPU): order
// and count of latencies, reuse after finish(), and the errors of a misused timer. No upper bounds on time:
// only std::this_thread::sleep_for's guarantee that at least the requested time passes.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "backend/device.h"
#include "core/error.h"
#include "measure/batch_timer.h"

namespace nlpf {
namespace {

constexpr Device kCpu{DeviceType::CPU, 0};

void expect_error(const std::function<void()>& fn, ErrorCode code, const std::string& needle) {
  try {
    fn();
    FAIL() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(MeasureBatchTimer, SteadyTimerReturnsOneLatencyPerBatchInOrder) {
  const std::unique_ptr<BatchTimer> timer = make_batch_timer(kCpu);
  EXPECT_EQ(timer->source(), "steady_clock");
  EXPECT_TRUE(timer->finish().empty());  // nothing timed: no latencies
  const double sleeps_ms[] = {3.0, 0.0, 6.0};
  for (const double ms : sleeps_ms) {
    timer->start();
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
    timer->stop();
  }
  EXPECT_EQ(timer->batches(), 3u);
  const std::vector<double> latencies = timer->finish();
  ASSERT_EQ(latencies.size(), 3u);
  for (size_t i = 0; i < latencies.size(); ++i) {
    EXPECT_GE(latencies[i], sleeps_ms[i]) << "batch " << i;
  }
  EXPECT_GE(latencies[1], 0.0);
  EXPECT_EQ(timer->batches(), 0u);

  // The next pass starts from an empty timer.
  timer->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  timer->stop();
  const std::vector<double> second = timer->finish();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GE(second[0], 1.0);
}

TEST(MeasureBatchTimer, MisuseThrowsInternalNamingTheTimerAndBatch) {
  const std::unique_ptr<BatchTimer> timer = make_batch_timer(kCpu);
  expect_error([&] { timer->stop(); }, ErrorCode::INTERNAL,
               "batch timer (steady_clock): stop() with no open");
  timer->start();
  timer->stop();
  timer->start();
  expect_error([&] { timer->start(); }, ErrorCode::INTERNAL,
               "start() while batch 2 of this pass is still open");
  expect_error([&] { timer->finish(); }, ErrorCode::INTERNAL, "finish() while batch 2 is still open");
  // A rejected call leaves the timer as it was: the open batch can still be closed and collected.
  timer->stop();
  EXPECT_EQ(timer->finish().size(), 2u);
}

TEST(MeasureBatchTimer, FactoryRejectsWhatThisBuildCannotTime) {
  int stream_token = 0;
  expect_error([&] { make_batch_timer(kCpu, &stream_token); }, ErrorCode::INVALID_ARGUMENT,
               "make_batch_timer: a CUDA stream was given for the CPU");
  if (cuda_built()) GTEST_SKIP() << "built with CUDA: the CUDA timer is checked in batch_timer_cuda_test";
  expect_error(
      [] {
        make_batch_timer(Device{DeviceType::CUDA, 0});
      },
      ErrorCode::UNSUPPORTED, "batch timer for cuda:0: this nlpf was built without CUDA");
  expect_error([] { cuda_enqueue_spin(0, 10.0); }, ErrorCode::UNSUPPORTED, "spin kernel on cuda:0");
  expect_error([] { cuda_synchronize(0); }, ErrorCode::UNSUPPORTED, "synchronize cuda:0");
}

}  // namespace
}  // namespace nlpf
