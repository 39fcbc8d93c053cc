// linear_forward / linear_backward on CUDA (cuBLASLt, ops/linear.h) against the CPU op on random inputs with
// odd sizes, in both math modes: IEEE fp32 within 1e-5; TF32 within 1e-2 (TF32 keeps 10 mantissa bits of each
// input, a relative rounding of 2^-11 per product, so sums of tens of terms land near 1e-3 of max |ref|).
// Gradients of the parameters start non-zero (they must accumulate), dx is poisoned with NaN (it must be
// overwritten); N > 4,096 rows takes the chunked bias-gradient path (two kernels), smaller N one kernel. Both
// GEMM algorithm selections: an autotuned plan must give the same results, and an accumulating GEMM (dweight
// +=) must not be timed on its own output (it would add several times). Mixed precision: x, weight and dy in
// bf16 or f16 against the CPU's f32 kernels on the same values. The backward captured into a CUDA graph
// replays the eager results bit for bit. The autotune records what it timed and chose
// (gemm_autotune_records), and a context given those records makes the same choices without timing.
#include "ops/linear.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

struct Size {
  int64_t B, T, C, OC;
};
constexpr Size kSizes[] = {{5, 13, 37, 29}, {1, 1, 3, 1}, {7, 157, 37, 29}, {3, 1399, 37, 29}};

struct ModeCase {
  MathMode mode;
  double tol;
  const char* name;
};
// bf16 inputs keep 8 significant bits (relative rounding 2^-9 per input): STYLE's 4e-2; fp16 inputs 11 (the
// random inputs here are far from fp16's range limits): 1e-2.
const ModeCase kModes[] = {{MathMode::IEEE_FP32, 1e-5, "ieee"},
                           {MathMode::TF32, 1e-2, "tf32"},
                           {MathMode::BF16, 4e-2, "bf16"},
                           {MathMode::FP16, 1e-2, "fp16"}};

std::string case_name(const Size& s, const ModeCase& m, GemmSelection selection) {
  return "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" + std::to_string(s.C) +
         " OC=" + std::to_string(s.OC) + " " + m.name +
         (selection == GemmSelection::AUTOTUNE                      ? " autotuned"
          : selection == GemmSelection::HEURISTIC_INPLACE_REDUCTION ? " in-place split-K"
                                                                    : "");
}

class LinearCuda : public CudaOpTest {
 protected:
  // linear_backward on the GPU against the CPU from the same x, weight and dy (host tensors), the parameter
  // gradients starting from random values (they must accumulate), dx from NaN where it must be overwritten
  // and from random values where the GEMM adds to it: dx and dweight within tol of the largest entry, dbias
  // within fp32's 1e-5 (a sum in double on both devices, whatever the math mode).
  void expect_backward_matches_cpu(std::mt19937& rng, const Size& s, const Tensor& x, const Tensor& weight,
                                   const Tensor& dy, ops::GradientOutput output, double tol) {
    const bool accumulate = output == ops::GradientOutput::ACCUMULATE;
    const Tensor dweight0 = random_tensor(rng, {s.OC, s.C}), dbias0 = random_tensor(rng, {s.OC}),
                 dx0 = random_tensor(rng, {s.B, s.T, s.C});
    Tensor ref_dx = host_copy(dx0), ref_dweight = host_copy(dweight0), ref_dbias = host_copy(dbias0);
    ops::linear_backward(cpu_context(), ref_dx, ref_dweight, ref_dbias, dy, x, weight, output);
    Tensor dx = accumulate ? device(dx0) : poisoned({s.B, s.T, s.C}), dweight = device(dweight0),
           dbias = device(dbias0);
    ops::linear_backward(gpu(), dx, dweight, dbias, device(dy), device(x), device(weight), output);
    const std::vector<double> expected_dx = to_double(ref_dx), expected_dweight = to_double(ref_dweight),
                              expected_dbias = to_double(ref_dbias);
    EXPECT_TRUE(all_close(values(dx), expected_dx, scaled_tolerance(tol, expected_dx)));
    EXPECT_TRUE(all_close(values(dweight), expected_dweight, scaled_tolerance(tol, expected_dweight)));
    EXPECT_TRUE(all_close(values(dbias), expected_dbias, scaled_tolerance(1e-5, expected_dbias)));
  }
};

TEST_F(LinearCuda, ForwardMatchesCpu) {
  std::mt19937 rng(701);
  // AUTOTUNE three times: with the default 8 candidates in one round and in three (TF32 only: under
  // compute-sanitizer every timed launch is slow, and the rounds do not depend on the math mode), and with
  // every candidate the heuristic offers (up to 64).
  struct Selection {
    GemmSelection selection;
    int candidates, rounds;
  };
  const Selection selections[] = {{GemmSelection::HEURISTIC, 8, 1},
                                  {GemmSelection::AUTOTUNE, 8, 1},
                                  {GemmSelection::AUTOTUNE, 8, 3},
                                  {GemmSelection::AUTOTUNE, ExecutionContext::kMaxAutotuneCandidates, 1},
                                  {GemmSelection::HEURISTIC_INPLACE_REDUCTION, 8, 1}};
  for (const auto& [selection, candidates, rounds] : selections) {
    gpu().set_gemm_selection(selection);
    gpu().set_autotune_candidates(candidates);
    gpu().set_autotune_rounds(rounds);
    for (const ModeCase m : kModes) {
      if (rounds > 1 && m.mode != MathMode::TF32) continue;
      gpu().set_math_mode(m.mode);
      for (const Size s : kSizes) {
        SCOPED_TRACE(case_name(s, m, selection) + " of " + std::to_string(candidates) + " in " +
                     std::to_string(rounds) + " rounds");
        const Tensor x = random_tensor(rng, {s.B, s.T, s.C}), weight = random_tensor(rng, {s.OC, s.C}),
                     bias = random_tensor(rng, {s.OC});
        Tensor ref = Tensor::empty(DType::F32, {s.B, s.T, s.OC});
        ops::linear_forward(cpu_context(), ref, x, weight, bias);
        Tensor y = poisoned({s.B, s.T, s.OC});
        ops::linear_forward(gpu(), y, device(x), device(weight), device(bias));
        const std::vector<double> expected = to_double(ref);
        EXPECT_TRUE(all_close(values(y), expected, scaled_tolerance(m.tol, expected)));
      }
    }
  }
}

// The autotune's records (ops::gemm_autotune_records): one per plan it timed, none for a HEURISTIC plan; each
// with the GEMM's shape in matmul's terms (rows, OC, C), one time per candidate (at most the candidates asked
// for; -1 for one the library refused) and the choice the fastest timed one, ties to the heuristic's order.
// In one round and in three (every candidate's fastest round).
TEST_F(LinearCuda, AutotuneRecordsTheFastestCandidateOfEachTimedPlan) {
  std::mt19937 rng(704);
  gpu().set_math_mode(MathMode::TF32);
  EXPECT_TRUE(ops::gemm_autotune_records(gpu()).empty());
  EXPECT_TRUE(ops::gemm_autotune_records(cpu_context()).empty());
  const auto forward = [&](int64_t rows, int64_t C, int64_t OC) {
    const Tensor x = random_tensor(rng, {rows, C}), weight = random_tensor(rng, {OC, C}),
                 bias = random_tensor(rng, {OC});
    Tensor y = poisoned({rows, OC});
    ops::linear_forward(gpu(), y, device(x), device(weight), device(bias));
  };
  gpu().set_gemm_selection(GemmSelection::HEURISTIC);
  forward(96, 64, 48);
  EXPECT_TRUE(ops::gemm_autotune_records(gpu()).empty()) << "HEURISTIC times nothing";
  gpu().set_gemm_selection(GemmSelection::AUTOTUNE);
  gpu().set_autotune_candidates(8);
  for (const int rounds : {1, 3}) {
    SCOPED_TRACE(std::to_string(rounds) + " rounds");
    gpu().set_autotune_rounds(rounds);
    const int64_t rows = 200 + rounds;  // a shape of its own: a new plan
    forward(rows, 64, 48);
    int found = 0;
    for (const GemmAutotuneRecord& r : ops::gemm_autotune_records(gpu())) {
      if (r.M != rows) continue;
      ++found;
      EXPECT_EQ(r.N, 48);
      EXPECT_EQ(r.K, 64);
      EXPECT_EQ(r.batch, 1);
      EXPECT_EQ(r.math_mode, MathMode::TF32);
      EXPECT_FALSE(r.reads_c);
      ASSERT_GE(r.candidate_ms.size(), 1u);
      EXPECT_LE(r.candidate_ms.size(), 8u);
      ASSERT_GE(r.chosen, 0);
      ASSERT_LT(r.chosen, static_cast<int>(r.candidate_ms.size()));
      EXPECT_GT(r.candidate_ms[r.chosen], 0.0f) << "the choice was timed";
      for (size_t i = 0; i < r.candidate_ms.size(); ++i) {
        if (r.candidate_ms[i] < 0.0f) continue;  // refused
        if (static_cast<int>(i) < r.chosen) {
          EXPECT_GT(r.candidate_ms[i], r.candidate_ms[r.chosen]) << "an earlier candidate at least as fast";
        } else {
          EXPECT_GE(r.candidate_ms[i], r.candidate_ms[r.chosen]) << "candidate " << i << " was faster";
        }
      }
    }
    EXPECT_EQ(found, 1);
  }
}

// Replayed choices (ExecutionContext::set_autotune_replay): a second context given the first's records makes
// the same plans with the same choices (the same names, candidates and cuBLASLt configurations, marked
// replayed) without timing, and computes the same outputs as the first, bit for bit (the same algorithms on
// the same inputs). A plan no record names, or a record whose candidate has another configuration, is refused
// naming the plan.
TEST_F(LinearCuda, AutotuneReplayTakesTheRecordedChoices) {
  std::mt19937 rng(705);
  const auto make_context = [] {
    std::unique_ptr<ExecutionContext> ctx = make_execution_context(Device{DeviceType::CUDA, 0});
    ctx->set_math_mode(MathMode::TF32);
    ctx->set_gemm_selection(GemmSelection::AUTOTUNE);
    return ctx;
  };
  const Tensor x = random_tensor(rng, {300, 64}), weight = random_tensor(rng, {96, 64}),
               bias = random_tensor(rng, {96}), x2 = random_tensor(rng, {40, 64});
  const auto forward = [&](ExecutionContext& ctx, const Tensor& input) {
    Tensor y = empty_tensor(ctx, DType::F32, {input.shape()[0], 96});
    ops::linear_forward(ctx, y, to_device(ctx, input), to_device(ctx, weight), to_device(ctx, bias));
    return to_host(ctx, y);
  };
  std::unique_ptr<ExecutionContext> timed = make_context();
  const Tensor y_timed = forward(*timed, x), y2_timed = forward(*timed, x2);
  const std::vector<GemmAutotuneRecord> records = ops::gemm_autotune_records(*timed);
  ASSERT_EQ(records.size(), 2u);

  std::unique_ptr<ExecutionContext> replaying = make_context();
  replaying->set_autotune_replay(records);
  const Tensor y_replayed = forward(*replaying, x), y2_replayed = forward(*replaying, x2);
  EXPECT_EQ(to_double(y_replayed), to_double(y_timed));
  EXPECT_EQ(to_double(y2_replayed), to_double(y2_timed));
  const std::vector<GemmAutotuneRecord> replayed = ops::gemm_autotune_records(*replaying);
  ASSERT_EQ(replayed.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(replayed[i].plan, records[i].plan);
    EXPECT_FALSE(records[i].plan.empty());
    EXPECT_EQ(replayed[i].chosen, records[i].chosen);
    EXPECT_EQ(replayed[i].chosen_algo, records[i].chosen_algo);
    EXPECT_EQ(replayed[i].chosen_algo.rfind("algo ", 0), 0u) << replayed[i].chosen_algo;
    EXPECT_EQ(replayed[i].candidate_ms, records[i].candidate_ms);
    EXPECT_TRUE(replayed[i].replayed);
    EXPECT_FALSE(records[i].replayed);
  }

  const auto expect_refused = [&](std::vector<GemmAutotuneRecord> given, const std::string& why) {
    std::unique_ptr<ExecutionContext> ctx = make_context();
    ctx->set_autotune_replay(std::move(given));
    try {
      forward(*ctx, x);
      FAIL() << why << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  const auto x_record =
      std::find_if(records.begin(), records.end(), [](const GemmAutotuneRecord& r) { return r.M == 300; });
  ASSERT_NE(x_record, records.end());
  std::vector<GemmAutotuneRecord> others;
  for (const GemmAutotuneRecord& r : records) {
    if (r.M != 300) others.push_back(r);
  }
  expect_refused(others, "no record of GEMM plan " + x_record->plan);
  GemmAutotuneRecord changed = *x_record;
  changed.chosen_algo = "algo -7";
  expect_refused({changed}, "GEMM plan " + x_record->plan + " recorded");
}

// Every size with dx overwritten, and the first and the last (the chunked bias gradient) with dx accumulated.
std::vector<std::pair<Size, ops::GradientOutput>> size_output_cases() {
  std::vector<std::pair<Size, ops::GradientOutput>> cases;
  for (const Size s : kSizes) cases.emplace_back(s, ops::GradientOutput::OVERWRITE);
  cases.emplace_back(kSizes[0], ops::GradientOutput::ACCUMULATE);
  cases.emplace_back(kSizes[std::size(kSizes) - 1], ops::GradientOutput::ACCUMULATE);
  return cases;
}

TEST_F(LinearCuda, BackwardMatchesCpuAndAccumulates) {
  std::mt19937 rng(702);
  for (const GemmSelection selection :
       {GemmSelection::HEURISTIC, GemmSelection::AUTOTUNE, GemmSelection::HEURISTIC_INPLACE_REDUCTION}) {
    gpu().set_gemm_selection(selection);
    for (const ModeCase m : kModes) {
      gpu().set_math_mode(m.mode);
      for (const auto& [s, output] : size_output_cases()) {
        const bool accumulate = output == ops::GradientOutput::ACCUMULATE;
        SCOPED_TRACE(case_name(s, m, selection) + (accumulate ? " dx +=" : ""));
        const Tensor x = random_tensor(rng, {s.B, s.T, s.C}), weight = random_tensor(rng, {s.OC, s.C}),
                     dy = random_tensor(rng, {s.B, s.T, s.OC});
        expect_backward_matches_cpu(rng, s, x, weight, dy, output, m.tol);
      }
    }
  }
}

TEST_F(LinearCuda, BackwardIsDeterministic) {
  // Both deterministic selections (training's): split-K partial products reduced by a kernel or in place.
  std::mt19937 rng(703);
  const Tensor x = random_tensor(rng, {7, 157, 37}), weight = random_tensor(rng, {29, 37}),
               dy = random_tensor(rng, {7, 157, 29});
  for (const GemmSelection selection :
       {GemmSelection::HEURISTIC, GemmSelection::HEURISTIC_INPLACE_REDUCTION}) {
    gpu().set_gemm_selection(selection);
    std::vector<double> first[3];
    for (int run = 0; run < 2; ++run) {
      Tensor dx = poisoned({7, 157, 37}), dweight = device(Tensor::zeros(DType::F32, {29, 37})),
             dbias = device(Tensor::zeros(DType::F32, {29}));
      ops::linear_backward(gpu(), dx, dweight, dbias, device(dy), device(x), device(weight));
      const std::vector<double> got[3] = {values(dx), values(dweight), values(dbias)};
      for (int i = 0; i < 3; ++i) {
        if (run == 0) {
          first[i] = got[i];
        } else {
          EXPECT_EQ(got[i], first[i]) << "output " << i << " differs between two runs";
        }
      }
    }
  }
}

// The backward captured into a CUDA graph and replayed gives the eager results bit for bit, with one chunk of
// rows in the bias gradient and with the chunked path, whose scratch the graph allocates inside the capture.
TEST_F(LinearCuda, CapturedBackwardEqualsEager) {
  std::mt19937 rng(704);
  for (const Size& s : {kSizes[2], kSizes[3]}) {
    SCOPED_TRACE(case_name(s, kModes[0], GemmSelection::HEURISTIC));
    const Tensor x = device(random_tensor(rng, {s.B, s.T, s.C})),
                 weight = device(random_tensor(rng, {s.OC, s.C})),
                 dy = device(random_tensor(rng, {s.B, s.T, s.OC}));
    const Tensor dweight0 = random_tensor(rng, {s.OC, s.C}), dbias0 = random_tensor(rng, {s.OC});
    Tensor dx = poisoned({s.B, s.T, s.C}), dweight = device(dweight0), dbias = device(dbias0);
    const auto work = [&] { ops::linear_backward(gpu(), dx, dweight, dbias, dy, x, weight); };
    work();
    const std::vector<double> eager[3] = {values(dx), values(dweight), values(dbias)};
    const std::unique_ptr<CapturedWork> graph = gpu().capture(work);
    copy_tensor(gpu(), dx, to_host(gpu(), poisoned({s.B, s.T, s.C})));
    copy_tensor(gpu(), dweight, dweight0);
    copy_tensor(gpu(), dbias, dbias0);
    graph->replay();
    gpu().synchronize();
    EXPECT_EQ(values(dx), eager[0]);
    EXPECT_EQ(values(dweight), eager[1]);
    EXPECT_EQ(values(dbias), eager[2]);
  }
}

// Mixed-precision training's linear (autocast's): x, weight and dy of one 16-bit dtype, y, dx and the
// parameter gradients f32. The CPU runs its f32 kernels on the operands' values; products of 16-bit values
// are exact in fp32, so only the order of the fp32 sums differs: fp32's tolerance, whatever the math mode
// (it does not apply to 16-bit operands). The bias gradient sums the 16-bit dy in double on both devices.
TEST_F(LinearCuda, SixteenBitOperandsMatchCpu) {
  std::mt19937 rng(704);
  gpu().set_math_mode(MathMode::BF16);
  for (const DType dtype : {DType::BF16, DType::F16}) {
    for (const auto& [s, output] : size_output_cases()) {
      const bool accumulate = output == ops::GradientOutput::ACCUMULATE;
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + case_name(s, kModes[0], GemmSelection::HEURISTIC) +
                   (accumulate ? " dx +=" : ""));
      const Tensor x = random_tensor(rng, {s.B, s.T, s.C}).to(dtype),
                   weight = random_tensor(rng, {s.OC, s.C}).to(dtype), bias = random_tensor(rng, {s.OC}),
                   dy = random_tensor(rng, {s.B, s.T, s.OC}).to(dtype);
      Tensor ref_y = Tensor::empty(DType::F32, {s.B, s.T, s.OC});
      ops::linear_forward(cpu_context(), ref_y, x, weight, bias);
      Tensor y = poisoned({s.B, s.T, s.OC});
      ops::linear_forward(gpu(), y, device(x), device(weight), device(bias));
      const std::vector<double> expected_y = to_double(ref_y);
      EXPECT_TRUE(all_close(values(y), expected_y, scaled_tolerance(1e-5, expected_y)));

      expect_backward_matches_cpu(rng, s, x, weight, dy, output, 1e-5);
    }
  }
  gpu().set_math_mode(MathMode::IEEE_FP32);
}

TEST_F(LinearCuda, Bf16WeightIsCpuOnly) {
  const Tensor x = device(Tensor::zeros(DType::F32, {2, 3})),
               weight = device(Tensor::zeros(DType::F32, {4, 3}).to(DType::BF16)),
               bias = device(Tensor::zeros(DType::F32, {4}));
  Tensor y = poisoned({2, 4});
  expect_error([&] { ops::linear_forward(gpu(), y, x, weight, bias); }, ErrorCode::UNSUPPORTED,
               {"linear_forward", "bf16"});
}

}  // namespace
}  // namespace nlpf::test
