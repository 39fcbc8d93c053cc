// src/core: half-precision conversions (exhaustive round trips, rounding ties), tensors, allocator peak
// bytes, atomic file writes and staged directories.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "backend/context.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/tensor.h"
#include "test_util.h"

namespace nlpf {
namespace {

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

TEST(Dtype, F16RoundTripsEveryBitPattern) {
  int mismatches = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const bool is_nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (is_nan) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    if (f32_to_f16(f) != h && ++mismatches < 5) ADD_FAILURE() << "f16 0x" << std::hex << h << " -> " << f;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Dtype, F16KnownValuesAndTies) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);                      // below the rounding boundary
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                      // rounds to infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);         // tie -> even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -26)), 0x0001);         // 0.75 ulp -> 1
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 ulp tie -> even (2)
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);         // smallest normal
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.0f, -24) + std::ldexp(1.0f, -25)), 0x0400);  // carries into normal
}

TEST(Dtype, Bf16KnownValuesAndRoundTrip) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(bits_to_float(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    if ((b & 0x7f80u) == 0x7f80u && (b & 0x7fu)) continue;  // NaN
    ASSERT_EQ(f32_to_bf16(bf16_to_f32(static_cast<uint16_t>(b))), b);
  }
}

TEST(Tensor, ShapesConversionAndPeakBytes) {
  Allocator& host = host_allocator();
  const size_t before = host.current_bytes();
  host.reset_peak();
  {
    Tensor t = Tensor::zeros(DType::F32, {3, 5});
    EXPECT_EQ(t.numel(), 15);
    EXPECT_EQ(t.nbytes(), 60u);
    EXPECT_EQ(host.current_bytes(), before + 60);
    t.data<float>()[7] = 1.5f;
    Tensor h = t.to(DType::F16);
    EXPECT_EQ(h.dtype(), DType::F16);
    EXPECT_EQ(f16_to_f32(h.data_u16()[7]), 1.5f);
    Tensor r = t.reshape({15});
    EXPECT_EQ(r.data<float>()[7], 1.5f);  // shares the buffer
    EXPECT_THROW(t.reshape({4, 4}), Error);
    EXPECT_THROW(t.data<int32_t>(), Error);
  }
  EXPECT_EQ(host.current_bytes(), before);
  EXPECT_GE(host.peak_bytes(), before + 60 + 30);
}

TEST(Tensor, ViewsShareStorageAtByteOffsets) {
  Tensor qkv = Tensor::zeros(DType::F32, {3, 4, 5});  // a packed [3C, C]-style buffer
  for (int64_t i = 0; i < qkv.numel(); ++i) qkv.data<float>()[i] = static_cast<float>(i);
  Tensor k = qkv.view({4, 5}, 20 * sizeof(float));
  EXPECT_EQ(k.byte_offset(), 80u);
  EXPECT_EQ(k.data<float>()[0], 20.0f);
  k.data<float>()[3] = -1.0f;  // writes through to the packed buffer
  EXPECT_EQ(qkv.data<float>()[23], -1.0f);
  Tensor row = k.view({5}, 5 * sizeof(float));  // a view of a view: offsets add up
  EXPECT_EQ(row.byte_offset(), 100u);
  EXPECT_EQ(row.data<float>()[0], 25.0f);
  Tensor bits = qkv.view(DType::I32, {2}, 8);                 // another dtype over the same bytes
  EXPECT_EQ(bits.data<int32_t>()[0], 0x40000000);             // 2.0f
  EXPECT_THROW(qkv.view({4, 5}, 41 * sizeof(float)), Error);  // past the end
  EXPECT_THROW(qkv.view(DType::F32, {1}, 2), Error);          // misaligned for f32
  EXPECT_THROW(k.view({21}), Error);                          // past the view's own end
}

TEST(Tensor, HostAllocatorRefusesTheImpossibleNamingTheSize) {
  try {
    Tensor t = Tensor::empty(DType::F32, {int64_t{1} << 58});
    FAIL() << "a 2^60-byte tensor was allocated";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::OUT_OF_MEMORY);
    EXPECT_NE(std::string(e.what()).find("1152921504606846976 bytes"), std::string::npos) << e.what();
  }
}

TEST(ExecutionContext, CpuContextCopiesAndZeroes) {
  ExecutionContext& cpu = cpu_context();
  EXPECT_EQ(cpu.device(), Device{});
  Tensor a = Tensor::zeros(DType::F32, {2, 3});
  for (int i = 0; i < 6; ++i) a.data<float>()[i] = static_cast<float>(i + 1);
  Tensor b = to_host(cpu, a);
  EXPECT_NE(b.raw_data(), a.raw_data());
  EXPECT_EQ(b.data<float>()[5], 6.0f);
  Tensor flat = Tensor::empty(DType::F32, {6});
  copy_tensor(cpu, flat, a);  // shapes may differ, element counts may not
  EXPECT_EQ(flat.data<float>()[4], 5.0f);
  Tensor wrong = Tensor::empty(DType::F32, {5});
  EXPECT_THROW(copy_tensor(cpu, wrong, a), Error);
  fill_zero(cpu, flat);
  EXPECT_EQ(flat.data<float>()[4], 0.0f);
  EXPECT_THROW(make_execution_context(Device{}), Error);  // the CPU has one shared context
}

// One of AUTOTUNE's integer settings (backend/context.h) on the CPU's shared context: `initial` by default, 1
// to `max`, anything else refused with a message naming the setting and the value, the old value kept;
// restored to `initial` after.
void expect_bounded_setting(const std::string& what, int initial, int max, const std::function<int()>& get,
                            const std::function<void(int)>& set) {
  EXPECT_EQ(get(), initial);
  for (const int bad : {0, -1, max + 1}) {
    try {
      set(bad);
      FAIL() << what << " " << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find(what + " " + std::to_string(bad)), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(get(), initial) << "a refused value must not stick";
  set(max);
  EXPECT_EQ(get(), max);
  set(1);
  EXPECT_EQ(get(), 1);
  set(initial);
}

TEST(ExecutionContext, AutotuneCandidatesAreBounded) {
  ExecutionContext& cpu = cpu_context();
  expect_bounded_setting(
      "autotune candidates", 8, ExecutionContext::kMaxAutotuneCandidates,
      [&] { return cpu.autotune_candidates(); }, [&](int n) { cpu.set_autotune_candidates(n); });
}

TEST(ExecutionContext, AutotuneRoundsAreBounded) {
  ExecutionContext& cpu = cpu_context();
  expect_bounded_setting(
      "autotune rounds", 1, ExecutionContext::kMaxAutotuneRounds, [&] { return cpu.autotune_rounds(); },
      [&](int n) { cpu.set_autotune_rounds(n); });
}

// set_autotune_replay: records found by their plan, none for another plan; two records of one plan, or a
// choice that is not one of its record's timed candidates (out of range, or refused: -1), refused with a
// message naming the plan, the old list kept; an empty list ends the replay.
TEST(ExecutionContext, AutotuneReplayFindsRecordsByPlan) {
  ExecutionContext& cpu = cpu_context();
  EXPECT_FALSE(cpu.autotune_replaying());
  const auto record = [](const std::string& plan, std::vector<float> ms, int chosen) {
    return GemmAutotuneRecord{.M = 8,
                              .N = 16,
                              .K = 32,
                              .candidate_ms = std::move(ms),
                              .chosen = chosen,
                              .chosen_algo = "algo 1",
                              .plan = plan};
  };
  cpu.set_autotune_replay({record("p1", {0.2f, 0.1f}, 1), record("p2", {0.3f}, 0)});
  EXPECT_TRUE(cpu.autotune_replaying());
  ASSERT_NE(cpu.autotune_replay("p1"), nullptr);
  EXPECT_EQ(cpu.autotune_replay("p1")->chosen, 1);
  ASSERT_NE(cpu.autotune_replay("p2"), nullptr);
  EXPECT_EQ(cpu.autotune_replay("p2")->candidate_ms.size(), 1u);
  EXPECT_EQ(cpu.autotune_replay("p3"), nullptr);
  for (const auto& [bad, why] : std::vector<std::pair<std::vector<GemmAutotuneRecord>, std::string>>{
           {{record("p4", {0.1f}, 0), record("p4", {0.1f}, 0)}, "two records of plan p4"},
           {{record("p5", {0.1f}, 1)}, "plan p5 chose candidate 1 of 1"},
           {{record("p6", {0.1f, -1.0f}, 1)}, "plan p6 chose candidate 1 of 2"},
           {{record("p7", {0.1f}, -1)}, "plan p7 chose candidate -1 of 1"}}) {
    try {
      cpu.set_autotune_replay(bad);
      FAIL() << why << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
  EXPECT_NE(cpu.autotune_replay("p1"), nullptr) << "a refused list must not replace the old one";
  cpu.set_autotune_replay({});
  EXPECT_FALSE(cpu.autotune_replaying());
  EXPECT_EQ(cpu.autotune_replay("p1"), nullptr);
}

class FileUtil : public ::testing::Test {
 protected:
  testing_util::TempDir temp_{"core_test"};
  const fs::path dir_ = temp_.path();
};

TEST_F(FileUtil, ReadErrorsNameThePath) {
  try {
    read_file(dir_ / "missing.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::IO);
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos);
  }
  EXPECT_THROW(read_file(dir_), Error);
  write_file_atomic(dir_ / "a.txt", "hello");
  EXPECT_EQ(read_file(dir_ / "a.txt"), "hello");
  EXPECT_THROW(write_file_atomic(dir_ / "no_such_dir" / "a.txt", "x"), Error);
}

TEST_F(FileUtil, StagedDirectoryOnlyAppearsWhenCommitted) {
  const fs::path final_path = dir_ / "run";
  {
    StagedDirectory staged(final_path);
    write_file_atomic(staged.path() / "metrics.json", "{}");
    EXPECT_FALSE(fs::exists(final_path));
  }  // dropped without commit: nothing left behind
  EXPECT_FALSE(fs::exists(final_path));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 0);
  {
    StagedDirectory staged(final_path);
    write_file_atomic(staged.path() / "metrics.json", "{}");
    staged.commit();
  }
  EXPECT_TRUE(fs::exists(final_path / "metrics.json"));
  EXPECT_THROW(StagedDirectory again(final_path), Error);  // never overwrites
  EXPECT_TRUE(fs::exists(final_path / "metrics.json"));
}

}  // namespace
}  // namespace nlpf
