// run_protocol with a deterministic world (a fake clock that the workload advances, and a meter whose energy
// grows with a known power), so every number has an exact expected value; plus the real steady clock with
// tiny windows, prediction-mismatch enforcement, bad options, and the metrics JSON (nulls with reasons).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <thread>

#include "core/error.h"
#include "measure/metrics_json.h"
#include "measure/protocol.h"

namespace nlpf {
namespace {

// Time and energy advance only when told to: idle at idle_power_w, passes at the power the workload sets.
struct World {
  double now_s = 0.0;
  double energy_j = 0.0;
  void advance(double seconds, double power_w) {
    now_s += seconds;
    energy_j += seconds * power_w;
  }
};

class WorldMeter : public EnergyMeter {
 public:
  explicit WorldMeter(World& world) : world_(world) {}
  std::string source() const override { return "fake"; }
  bool available() const override { return true; }
  std::string unavailable_reason() const override { return ""; }
  std::optional<uint64_t> throttle;

 protected:
  double read_energy_j_locked() override { return world_.energy_j; }
  DeviceState read_device_state_locked() override { return {std::nullopt, std::nullopt, throttle}; }

 private:
  World& world_;
};

constexpr double kIdlePowerW = 20.0;
constexpr double kPassSeconds = 0.02;
constexpr int64_t kExamples = 10;

ProtocolClock world_clock(World& world) {
  return {[&world] { return world.now_s; }, [&world](double s) { world.advance(s, kIdlePowerW); }};
}

ProtocolOptions tiny_options() {
  ProtocolOptions o;
  o.trials = 5;
  o.min_trial_seconds = 0.05;  // 3 passes of 0.02 s
  o.idle_seconds = 3.0;
  o.warmup_min_seconds = 0.0;  // exactly one warm-up pass
  return o;
}

// Pass p (1-based) runs at power_for_pass(p); warm-up is pass 1, trial k holds passes 3k-1 .. 3k+1.
Workload world_workload(World& world, const std::function<double(int)>& power_for_pass, int* passes) {
  return [&world, power_for_pass, passes] {
    ++*passes;
    world.advance(kPassSeconds, power_for_pass(*passes));
    return PassResult{kExamples, {0, 1, 1, 0, 1, 0, 0, 1, 1, 1}, {1.0, 2.0, 3.0, 4.0}};
  };
}

TEST(MeasureProtocol, ExactNumbersInADeterministicWorld) {
  World world;
  WorldMeter meter(world);
  int passes = 0;
  const ProtocolResult r = run_protocol(tiny_options(), meter, nullptr,
                                        world_workload(
                                            world, [](int) { return 100.0; }, &passes),
                                        world_clock(world));
  EXPECT_EQ(passes, 1 + 5 * 3);
  EXPECT_EQ(r.warmup_passes, 1);
  EXPECT_EQ(r.examples_per_pass, kExamples);
  EXPECT_EQ(r.predictions, (std::vector<int32_t>{0, 1, 1, 0, 1, 0, 0, 1, 1, 1}));
  EXPECT_EQ(r.energy_source, "fake");
  EXPECT_NEAR(*r.idle_power_w, kIdlePowerW, 1e-9);
  ASSERT_EQ(r.trials.size(), 5u);
  for (const TrialResult& t : r.trials) {
    EXPECT_EQ(t.passes, 3);
    EXPECT_EQ(t.examples, 30);
    EXPECT_GE(t.seconds, 0.05);
    EXPECT_NEAR(t.seconds, 0.06, 1e-9);
    EXPECT_NEAR(*t.energy_j, 6.0, 1e-9);
    EXPECT_NEAR(*t.energy_per_example_j, 0.2, 1e-9);
    EXPECT_NEAR(*t.dynamic_energy_per_example_j, (6.0 - 20.0 * 0.06) / 30.0, 1e-9);
    EXPECT_NEAR(*t.average_power_w, 100.0, 1e-6);
    EXPECT_NEAR(t.latency_per_example_ms, 2.0, 1e-9);
  }
  EXPECT_NEAR(*r.energy_per_example_j, 0.2, 1e-9);
  EXPECT_NEAR(*r.energy_per_example_j_ci_low, 0.2, 1e-9);
  EXPECT_NEAR(*r.energy_per_example_j_ci_high, 0.2, 1e-9);
  EXPECT_DOUBLE_EQ(*r.energy_per_example_j_ci_level, 0.9375);
  EXPECT_NEAR(*r.cv, 0.0, 1e-9);
  EXPECT_FALSE(*r.cv_flagged);
  EXPECT_NEAR(*r.dynamic_energy_per_example_j, 0.16, 1e-9);
  EXPECT_NEAR(*r.average_power_w, 100.0, 1e-6);
  EXPECT_NEAR(r.average_latency_per_example_ms, 2.0, 1e-9);
  EXPECT_NEAR(r.throughput_examples_per_s, 500.0, 1e-6);
  EXPECT_DOUBLE_EQ(*r.latency_p50_ms, 2.5);
  EXPECT_NEAR(*r.latency_p90_ms, 4.0, 1e-12);  // numpy.percentile([1,2,3,4]*15, [50,90,99]) = 2.5,4,4
  EXPECT_NEAR(*r.latency_p99_ms, 4.0, 1e-12);
  EXPECT_FALSE(r.throttled.has_value());
  EXPECT_TRUE(r.null_reasons.count("throttled"));
}

TEST(MeasureProtocol, SpreadAcrossTrialsGivesMedianIntervalAndFlaggedCv) {
  World world;
  WorldMeter meter(world);
  int passes = 0;
  const double trial_power[] = {100.0, 110.0, 90.0, 100.0, 100.0};
  const auto power = [&trial_power](int pass) { return pass == 1 ? 100.0 : trial_power[(pass - 2) / 3]; };
  const ProtocolResult r =
      run_protocol(tiny_options(), meter, nullptr, world_workload(world, power, &passes), world_clock(world));
  EXPECT_NEAR(*r.energy_per_example_j, 0.2, 1e-9);
  EXPECT_NEAR(*r.energy_per_example_j_ci_low, 0.18, 1e-9);
  EXPECT_NEAR(*r.energy_per_example_j_ci_high, 0.22, 1e-9);
  EXPECT_NEAR(*r.cv, std::sqrt(0.0002) / 0.2, 1e-9);  // sd of {.2,.22,.18,.2,.2} over their mean
  EXPECT_TRUE(*r.cv_flagged);
}

TEST(MeasureProtocol, ThrottlingIsFlaggedOnlyForSlowdownReasons) {
  World world;
  WorldMeter meter(world);
  int passes = 0;
  meter.throttle = kThrottleReasonGpuIdle;
  ProtocolResult r = run_protocol(tiny_options(), meter, nullptr,
                                  world_workload(
                                      world, [](int) { return 100.0; }, &passes),
                                  world_clock(world));
  EXPECT_FALSE(*r.throttled);
  meter.throttle = kThrottleReasonSwPowerCap;
  r = run_protocol(tiny_options(), meter, nullptr,
                   world_workload(
                       world, [](int) { return 100.0; }, &passes),
                   world_clock(world));
  EXPECT_TRUE(*r.throttled);
  EXPECT_EQ(*r.throttle_reasons, kThrottleReasonSwPowerCap);
}

TEST(MeasureProtocol, PredictionsChangingOnTheThirdPassRaise) {
  World world;
  WorldMeter meter(world);
  int passes = 0;
  const Workload workload = [&] {
    ++passes;
    world.advance(kPassSeconds, 100.0);
    PassResult pass{3, {1, 1, 0}, {}};
    if (passes == 3) pass.predictions[2] = 1;
    return pass;
  };
  try {
    run_protocol(tiny_options(), meter, nullptr, workload, world_clock(world));
    FAIL() << "expected Error(NUMERIC)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NUMERIC);
    const std::string what = e.what();
    EXPECT_NE(what.find("predictions differ between passes: a bug"), std::string::npos) << what;
    EXPECT_NE(what.find("pass 3, example 2"), std::string::npos) << what;
  }
  EXPECT_EQ(passes, 3);
}

TEST(MeasureProtocol, RealClockRespectsMinimumSeconds) {
  World world;  // energy frozen: the counter "does not advance", so energy is null with that reason
  WorldMeter meter(world);
  ProtocolOptions o;
  o.trials = 2;
  o.min_trial_seconds = 0.05;
  o.idle_seconds = 0.01;
  o.warmup_min_seconds = 0.02;
  o.cooldown_seconds = 0.005;
  int passes = 0;
  const Workload workload = [&passes] {
    ++passes;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return PassResult{2, {0, 1}, {}};
  };
  PowerSampler sampler(meter, {0.01, 0.5});
  sampler.start();
  const ProtocolResult r = run_protocol(o, meter, &sampler, workload);
  sampler.stop();
  ASSERT_EQ(r.trials.size(), 2u);
  for (const TrialResult& t : r.trials) {
    EXPECT_GE(t.seconds, o.min_trial_seconds);
    EXPECT_GE(t.passes, 1);
    EXPECT_FALSE(t.energy_j.has_value());
  }
  EXPECT_GE(r.warmup_seconds, o.warmup_min_seconds);
  EXPECT_FALSE(r.energy_per_example_j.has_value());
  EXPECT_NE(r.null_reasons.at("energy_per_example_j").find("did not advance"), std::string::npos);
  EXPECT_FALSE(r.latency_p50_ms.has_value());
  EXPECT_EQ(sampler.phase(), "end");
  EXPECT_FALSE(r.idle_power_w.has_value());
  EXPECT_NE(r.null_reasons.at("idle_power_w").find("idle baseline"), std::string::npos);
  const std::vector<PowerTraceRow> rows = sampler.rows();
  ASSERT_GE(rows.size(), 2u);  // the polls at start and at stop
  EXPECT_EQ(rows.back().phase, "end");
  const std::set<std::string> phases = {"", "idle", "warmup", "cooldown", "trial 1", "trial 2", "end"};
  for (const PowerTraceRow& row : rows) EXPECT_TRUE(phases.count(row.phase)) << row.phase;
}

TEST(MeasureProtocol, BadOptionsNameTheOption) {
  World world;
  WorldMeter meter(world);
  const Workload workload = [] { return PassResult{1, {0}, {}}; };
  const auto expect_bad = [&](ProtocolOptions o, const std::string& option) {
    try {
      run_protocol(o, meter, nullptr, workload, world_clock(world));
      FAIL() << "expected Error(INVALID_ARGUMENT) for " << option;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
    }
  };
  ProtocolOptions o = tiny_options();
  o.trials = 0;
  expect_bad(o, "--trials");
  o = tiny_options();
  o.min_trial_seconds = -1.0;
  expect_bad(o, "--min-trial-seconds");
  o = tiny_options();
  o.idle_seconds = std::numeric_limits<double>::quiet_NaN();
  expect_bad(o, "--idle-seconds");
  const Workload empty = [] { return PassResult{0, {}, {}}; };
  try {
    run_protocol(tiny_options(), meter, nullptr, empty, world_clock(world));
    FAIL() << "expected Error(INVALID_ARGUMENT) for an empty pass";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("no examples"), std::string::npos) << e.what();
  }
}

TEST(MeasureProtocol, MetricsJsonHasTheStudyKeysAndNullsWithReasons) {
  World world;
  WorldMeter meter(world);
  int passes = 0;
  ProtocolOptions o = tiny_options();
  o.idle_seconds = 0.0;  // no idle baseline: dynamic energy is null with the reason
  const ProtocolResult r = run_protocol(o, meter, nullptr,
                                        world_workload(
                                            world, [](int) { return 100.0; }, &passes),
                                        world_clock(world));
  InferenceMetricsInputs inputs;
  inputs.accuracy = 0.8;
  inputs.peak_gpu_memory_null_reason = "CPU run: see peak_memory_mb";
  inputs.peak_memory_mb = 512.0;
  const nlohmann::json m = inference_metrics_json(r, inputs);
  EXPECT_DOUBLE_EQ(m["accuracy"].get<double>(), 0.8);
  EXPECT_NEAR(m["average_latency_per_example_ms"].get<double>(), 2.0, 1e-9);
  EXPECT_NEAR(m["energy_per_example_j"].get<double>(), 0.2, 1e-9);
  EXPECT_NEAR(m["energy_per_correct_j"].get<double>(), 0.25, 1e-9);
  EXPECT_TRUE(m["peak_gpu_memory_mb"].is_null());
  EXPECT_EQ(m["null_reasons"]["peak_gpu_memory_mb"], "CPU run: see peak_memory_mb");
  EXPECT_DOUBLE_EQ(m["peak_memory_mb"].get<double>(), 512.0);
  EXPECT_TRUE(m["dynamic_energy_per_example_j"].is_null());
  EXPECT_NE(m["null_reasons"]["dynamic_energy_per_example_j"].get<std::string>().find("--idle-seconds"),
            std::string::npos);
  EXPECT_TRUE(m["idle_power_w"].is_null());
  EXPECT_EQ(m["trials"], 5);
  EXPECT_EQ(m["energy_source"], "fake");
  EXPECT_FALSE(m["cv_flagged"].get<bool>());
  EXPECT_TRUE(m["throttled"].is_null());
  EXPECT_TRUE(m["null_reasons"].contains("throttled"));
  EXPECT_EQ(m["trial_details"].size(), 5u);
  for (const char* key :
       {"energy_per_example_j_ci_low", "energy_per_example_j_ci_high", "throughput_examples_per_s",
        "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "average_power_w", "cv"}) {
    EXPECT_TRUE(m[key].is_number()) << key;
    EXPECT_FALSE(m["null_reasons"].contains(key)) << key;
  }
  // Every null has a reason; no reason without a null.
  for (const auto& [key, value] : m.items()) {
    if (value.is_null()) {
      EXPECT_TRUE(m["null_reasons"].contains(key)) << key;
    }
  }
  for (const auto& [key, reason] : m["null_reasons"].items()) EXPECT_TRUE(m[key].is_null()) << key;

  // Accuracy 0 or unknown: energy per correct is null with the reason; NaN never reaches the JSON.
  ProtocolResult odd = r;
  odd.cv = std::numeric_limits<double>::quiet_NaN();
  inputs.accuracy = 0.0;
  nlohmann::json z = inference_metrics_json(odd, inputs);
  EXPECT_TRUE(z["energy_per_correct_j"].is_null());
  EXPECT_NE(z["null_reasons"]["energy_per_correct_j"].get<std::string>().find("accuracy is 0"),
            std::string::npos);
  EXPECT_TRUE(z["cv"].is_null());
  EXPECT_EQ(z["null_reasons"]["cv"], "not a finite number");
  inputs.accuracy.reset();
  inputs.accuracy_null_reason = "evaluation set has no labels";
  z = inference_metrics_json(r, inputs);
  EXPECT_TRUE(z["accuracy"].is_null());
  EXPECT_EQ(z["null_reasons"]["accuracy"], "evaluation set has no labels");
  EXPECT_NE(z["null_reasons"]["energy_per_correct_j"].get<std::string>().find("no labels"),
            std::string::npos);
}

}  // namespace
}  // namespace nlpf
