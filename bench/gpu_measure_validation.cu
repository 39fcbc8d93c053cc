// gpu_measure_validation (issue 4, item 8): does the GPU measurement hold on this machine? Runs a
// bert-base-shaped chain of fp32 GEMMs (cuBLASLt, CUBLAS_COMPUTE_32F: IEEE fp32, no TF32, as DESIGN §5's
// fp32) and checks (a) NVML's energy counter against the integral of the driver's 20 ms power samples,
// (b) the repeatability of run_protocol's J/example, (c) the power sampler's cost in latency per example.
// Each check is printed ("check a: ... PASS") and written to --out as JSON, with the GPU's state around them.
// Exit: 0 all three pass, 1 a check failed, 2 bad options, 3 an error while running, 4 no GPU or NVML.
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/device.h"
#include "core/error.h"
#include "core/file_util.h"
#include "measure/batch_timer.h"
#include "measure/metrics_json.h"
#include "measure/nvml_meter.h"
#include "measure/power_sampler.h"
#include "measure/protocol.h"
#include "measure/stats.h"
#include "measure/trace_energy.h"
#include "nlpf/build_info.h"

namespace nlpf {
namespace {

using json = nlohmann::json;

constexpr int kExitPass = 0;
constexpr int kExitCheckFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitError = 3;
constexpr int kExitNoGpu = 4;

// bert-base at batch 32, length 128: B*T rows, hidden C, feed-forward I, L layers.
constexpr int64_t kBatch = 32;
constexpr int64_t kRows = kBatch * 128;
constexpr int64_t kHidden = 768;
constexpr int64_t kIntermediate = 3072;
constexpr int kLayers = 12;
constexpr double kMiB = 1024.0 * 1024.0;

constexpr double kCounterVsTraceLimit = 0.03;
constexpr double kProtocolCvLimit = 0.02;
constexpr double kSamplerCostLimit = 0.01;
// 50 ms polls of the counter and device state; the driver's 20 ms power samples drained every 0.5 s.
constexpr PowerSamplerOptions kSamplerOptions{0.05, 0.5};

void cuda_check(cudaError_t status, const char* what) {
  NLPF_CHECK(status == cudaSuccess, ErrorCode::CUDA, what, ": ", cudaGetErrorString(status));
}

void cublas_check(cublasStatus_t status, const char* what) {
  NLPF_CHECK(status == CUBLAS_STATUS_SUCCESS, ErrorCode::CUBLAS, what, ": cublasStatus ",
             static_cast<int>(status));
}

double steady_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Uniform values in [-scale, scale) from a hash of the index: reproducible, no curand.
__global__ void fill_uniform_kernel(float* out, int64_t n, uint64_t seed, float scale) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  uint64_t z = seed + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;  // splitmix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
  out[i] = (2.0f * u - 1.0f) * scale;
}

// One fp32 GEMM shape through cuBLASLt: row-major out (M×N) = in (M×K) · W (K×N). cuBLASLt is column-major,
// so it computes out^T = W^T · in^T, where each row-major buffer already is its transpose in column-major.
class GemmPlan {
 public:
  GemmPlan(cublasLtHandle_t handle, int64_t M, int64_t K, int64_t N, size_t workspace_bytes)
      : M_(M), K_(K), N_(N) {
    // CUBLAS_COMPUTE_32F, not _FAST_TF32: full fp32 products, the baseline's precision.
    cublas_check(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                 "cublasLtMatmulDescCreate");
    cublas_check(cublasLtMatrixLayoutCreate(&w_layout_, CUDA_R_32F, N, K, N),
                 "cublasLtMatrixLayoutCreate (W)");
    cublas_check(cublasLtMatrixLayoutCreate(&in_layout_, CUDA_R_32F, K, M, K),
                 "cublasLtMatrixLayoutCreate (in)");
    cublas_check(cublasLtMatrixLayoutCreate(&out_layout_, CUDA_R_32F, N, M, N),
                 "cublasLtMatrixLayoutCreate (out)");
    cublasLtMatmulPreference_t preference = nullptr;
    cublas_check(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
    const uint64_t workspace = workspace_bytes;
    cublas_check(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &workspace, sizeof workspace),
                 "cublasLtMatmulPreferenceSetAttribute");
    int found = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
        handle, desc_, w_layout_, in_layout_, out_layout_, out_layout_, preference, 1, &heuristic_, &found);
    cublasLtMatmulPreferenceDestroy(preference);
    cublas_check(status, "cublasLtMatmulAlgoGetHeuristic");
    NLPF_CHECK(found > 0, ErrorCode::CUBLAS, "cuBLASLt has no fp32 algorithm for ", M, "x", K, " @ ", K, "x",
               N);
  }
  ~GemmPlan() {
    cublasLtMatrixLayoutDestroy(out_layout_);
    cublasLtMatrixLayoutDestroy(in_layout_);
    cublasLtMatrixLayoutDestroy(w_layout_);
    cublasLtMatmulDescDestroy(desc_);
  }
  GemmPlan(const GemmPlan&) = delete;
  GemmPlan& operator=(const GemmPlan&) = delete;

  void enqueue(cublasLtHandle_t handle, const float* in, const float* w, float* out, void* workspace,
               size_t workspace_bytes, cudaStream_t stream) const {
    const float alpha = 1.0f;
    const float beta = 0.0f;
    cublas_check(cublasLtMatmul(handle, desc_, &alpha, w, w_layout_, in, in_layout_, &beta, out, out_layout_,
                                out, out_layout_, &heuristic_.algo, workspace, workspace_bytes, stream),
                 "cublasLtMatmul");
  }
  double flops() const {
    return 2.0 * static_cast<double>(M_) * static_cast<double>(K_) * static_cast<double>(N_);
  }
  std::string shape() const {
    return std::to_string(M_) + "x" + std::to_string(K_) + " @ " + std::to_string(K_) + "x" +
           std::to_string(N_);
  }

 private:
  int64_t M_, K_, N_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t w_layout_ = nullptr;
  cublasLtMatrixLayout_t in_layout_ = nullptr;
  cublasLtMatrixLayout_t out_layout_ = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic_{};
};

// The workload: per batch, L layers of qkv (C -> 3C), attention output (C -> C), FFN up (C -> I) and FFN
// down (I -> C) on B*T rows, each layer's output feeding the next; a pass is `batches` batches on one stream
// with one synchronisation at its end (the batch timer's finish()). Weights are distinct per layer (340 MB)
// so that they stream from HBM as a model's would, instead of staying in L2.
class GemmChain {
 public:
  GemmChain(int device_index, int batches) : device_index_(device_index), batches_(batches) {
    cuda_check(cudaSetDevice(device_index_), "cudaSetDevice");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cublas_check(cublasLtCreate(&handle_), "cublasLtCreate");
    workspace_ = allocate(kWorkspaceBytes / sizeof(float));
    x_ = allocate(kRows * kHidden);
    attention_out_ = allocate(kRows * kHidden);
    qkv_ = allocate(kRows * 3 * kHidden);
    ffn_ = allocate(kRows * kIntermediate);
    // Variance-preserving scales (uniform on ±sqrt(3/K) has variance 1/K): activations stay near 1 through
    // the chain, with no overflow and no denormals to change the power draw.
    fill(x_, kRows * kHidden, 1, std::sqrt(3.0f));
    for (int l = 0; l < kLayers; ++l) {
      Layer layer;
      layer.w_qkv = allocate(kHidden * 3 * kHidden);
      layer.w_out = allocate(kHidden * kHidden);
      layer.w_up = allocate(kHidden * kIntermediate);
      layer.w_down = allocate(kIntermediate * kHidden);
      const uint64_t seed = 100 + 10 * static_cast<uint64_t>(l);
      fill(layer.w_qkv, kHidden * 3 * kHidden, seed, std::sqrt(3.0f / kHidden));
      fill(layer.w_out, kHidden * kHidden, seed + 1, std::sqrt(3.0f / kHidden));
      fill(layer.w_up, kHidden * kIntermediate, seed + 2, std::sqrt(3.0f / kHidden));
      fill(layer.w_down, kIntermediate * kHidden, seed + 3, std::sqrt(3.0f / kIntermediate));
      layers_.push_back(layer);
    }
    qkv_plan_ = std::make_unique<GemmPlan>(handle_, kRows, kHidden, 3 * kHidden, kWorkspaceBytes);
    out_plan_ = std::make_unique<GemmPlan>(handle_, kRows, kHidden, kHidden, kWorkspaceBytes);
    up_plan_ = std::make_unique<GemmPlan>(handle_, kRows, kHidden, kIntermediate, kWorkspaceBytes);
    down_plan_ = std::make_unique<GemmPlan>(handle_, kRows, kIntermediate, kHidden, kWorkspaceBytes);
    cuda_check(cudaStreamSynchronize(stream_), "initialisation");
    timer_ = make_batch_timer(Device{DeviceType::CUDA, device_index_}, stream_);
  }
  ~GemmChain() {
    timer_.reset();
    cudaStreamSynchronize(stream_);  // errors ignored: a destructor cannot report
    for (float* p : allocations_) cudaFree(p);
    cublasLtDestroy(handle_);
    cudaStreamDestroy(stream_);
  }
  GemmChain(const GemmChain&) = delete;
  GemmChain& operator=(const GemmChain&) = delete;

  PassResult run_pass() {
    for (int b = 0; b < batches_; ++b) {
      timer_->start();
      enqueue_batch();
      timer_->stop();
    }
    PassResult pass;
    pass.batch_latencies_ms = timer_->finish();  // the pass's one synchronisation
    cuda_check(cudaGetLastError(), "GEMM chain");
    pass.examples = examples_per_pass();
    // No labels here: constant predictions satisfy the protocol's pass-to-pass check.
    pass.predictions.assign(static_cast<size_t>(pass.examples), 0);
    return pass;
  }

  int64_t examples_per_pass() const { return kBatch * batches_; }
  double allocated_mb() const { return static_cast<double>(allocated_bytes_) / kMiB; }
  double flops_per_batch() const {
    return kLayers * (qkv_plan_->flops() + out_plan_->flops() + up_plan_->flops() + down_plan_->flops());
  }
  json describe() const {
    return {
        {"gemms_per_layer", {qkv_plan_->shape(), out_plan_->shape(), up_plan_->shape(), down_plan_->shape()}},
        {"layers", kLayers},
        {"batch_size", kBatch},
        {"rows_per_batch", kRows},
        {"batches_per_pass", batches_},
        {"examples_per_pass", examples_per_pass()},
        {"compute_type", "CUBLAS_COMPUTE_32F (fp32, no TF32)"},
        {"gflop_per_batch", flops_per_batch() * 1e-9},
        {"allocated_mb", allocated_mb()},
        {"workspace_mb", static_cast<double>(kWorkspaceBytes) / kMiB}};
  }

 private:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;

  struct Layer {
    float* w_qkv = nullptr;
    float* w_out = nullptr;
    float* w_up = nullptr;
    float* w_down = nullptr;
  };

  float* allocate(int64_t count) {
    void* p = nullptr;
    const size_t bytes = static_cast<size_t>(count) * sizeof(float);
    cuda_check(cudaMalloc(&p, bytes), "cudaMalloc");
    allocations_.push_back(static_cast<float*>(p));
    allocated_bytes_ += bytes;
    return static_cast<float*>(p);
  }
  void fill(float* p, int64_t n, uint64_t seed, float scale) {
    constexpr int kThreads = 256;
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    fill_uniform_kernel<<<static_cast<unsigned int>(blocks), kThreads, 0, stream_>>>(p, n, seed, scale);
    cuda_check(cudaGetLastError(), "fill_uniform_kernel launch");
  }
  void enqueue_batch() {
    for (const Layer& layer : layers_) {
      // x (B*T, C) -> qkv (B*T, 3C); x -> attention_out (B*T, C) stands in for softmax(QK^T)V · W_o;
      // attention_out -> ffn (B*T, I) -> x (B*T, C), the next layer's input.
      qkv_plan_->enqueue(handle_, x_, layer.w_qkv, qkv_, workspace_, kWorkspaceBytes, stream_);
      out_plan_->enqueue(handle_, x_, layer.w_out, attention_out_, workspace_, kWorkspaceBytes, stream_);
      up_plan_->enqueue(handle_, attention_out_, layer.w_up, ffn_, workspace_, kWorkspaceBytes, stream_);
      down_plan_->enqueue(handle_, ffn_, layer.w_down, x_, workspace_, kWorkspaceBytes, stream_);
    }
  }

  int device_index_;
  int batches_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t handle_ = nullptr;
  std::vector<float*> allocations_;
  size_t allocated_bytes_ = 0;
  float* workspace_ = nullptr;
  float* x_ = nullptr;
  float* attention_out_ = nullptr;
  float* qkv_ = nullptr;
  float* ffn_ = nullptr;
  std::vector<Layer> layers_;
  std::unique_ptr<GemmPlan> qkv_plan_, out_plan_, up_plan_, down_plan_;
  std::unique_ptr<BatchTimer> timer_;
};

struct Options {
  std::string out = "measure_validation.json";
  double seconds_a = 12.0;
  bool quick = false;
  int device = 0;
  int batches = 27;  // 27 x 32 = 864, about SST-2 dev's 872 examples
  bool help = false;
};

// Durations of every phase; --quick shortens all of them for a smoke test (its verdicts mean little).
struct Durations {
  double warmup_s = 2.0;
  double tail_s = 0.5;  // load kept after check (a)'s window so the driver's last samples are in the buffer
  ProtocolOptions protocol;
  int protocol_repeats = 5;
  int sampler_segments = 4;  // per state (on, off)
  double sampler_segment_s = 3.0;
};

Durations durations_for(const Options& o) {
  Durations d;
  d.protocol.trials = 5;
  d.protocol.min_trial_seconds = 5.0;
  d.protocol.idle_seconds = 3.0;
  if (o.quick) {
    d.warmup_s = 0.5;
    d.protocol.trials = 3;
    d.protocol.min_trial_seconds = 0.5;
    d.protocol.idle_seconds = 0.5;
    d.protocol.warmup_min_seconds = 0.2;
    d.protocol_repeats = 2;
    d.sampler_segments = 2;
    d.sampler_segment_s = 0.5;
  }
  return d;
}

const char* verdict(bool pass) {
  return pass ? "PASS" : "FAIL";
}

json optional_json(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

json state_json(const DeviceState& s) {
  json out = {{"sm_clock_mhz", optional_json(s.sm_clock_mhz)},
              {"temperature_c", optional_json(s.temperature_c)}};
  if (s.throttle_reasons) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(*s.throttle_reasons));
    out["throttle_reasons"] = hex;
    out["slowdown"] = (*s.throttle_reasons & kThrottleReasonsSlowdownMask) != 0;
  } else {
    out["throttle_reasons"] = nullptr;
  }
  return out;
}

// Runs passes until `seconds` have passed (at least one); returns (examples, wall seconds).
std::pair<int64_t, double> run_for(GemmChain& chain, double seconds,
                                   std::vector<double>* batch_ms = nullptr) {
  int64_t examples = 0;
  const double t0 = steady_s();
  do {
    PassResult pass = chain.run_pass();
    examples += pass.examples;
    if (batch_ms != nullptr)
      batch_ms->insert(batch_ms->end(), pass.batch_latencies_ms.begin(), pass.batch_latencies_ms.end());
  } while (steady_s() - t0 < seconds);
  return {examples, steady_s() - t0};
}

// (a) The counter's delta over a window of steady load against the trapezoid integral of the driver's
// 20 ms samples inside the same window (PowerSampler drains them every 0.5 s onto its own timeline).
json check_counter_vs_trace(GemmChain& chain, NvmlMeter& meter, PowerSampler& sampler, const Options& o,
                            const Durations& d) {
  json out = {{"limit_relative", kCounterVsTraceLimit}, {"window_target_s", o.seconds_a}};
  NLPF_CHECK(meter.has_power_sample_buffer(), ErrorCode::UNSUPPORTED,
             "NVML offers no TOTAL_POWER_SAMPLES buffer on this GPU: no trace to integrate");
  sampler.set_phase("a: warmup");
  run_for(chain, d.warmup_s);
  sampler.set_phase("a: window");
  // The counter is read between two sampler-clock readings; the window edge is their midpoint.
  const double before0 = sampler.elapsed_s();
  const double e0 = meter.read_energy_j();
  const double t0 = 0.5 * (before0 + sampler.elapsed_s());
  std::vector<double> batch_ms;
  const auto [examples, seconds] = run_for(chain, o.seconds_a, &batch_ms);
  const double before1 = sampler.elapsed_s();
  const double e1 = meter.read_energy_j();
  const double t1 = 0.5 * (before1 + sampler.elapsed_s());
  sampler.set_phase("a: tail");
  run_for(chain, d.tail_s);
  sampler.stop();  // drains the buffer once more: the window's last samples
  const std::vector<PowerTraceRow> rows = sampler.rows();
  sampler.start();

  const double counter_j = e1 - e0;
  // Where the buffer's rows lie on the sampler's timeline: if the driver's timestamps were not wall-clock
  // microseconds, the window would miss them, and these numbers say so.
  int64_t buffer_rows = 0;
  double first_row_s = NAN, last_row_s = NAN;
  for (const PowerTraceRow& row : rows) {
    if (row.source.find("_sample_buffer") == std::string::npos) continue;
    if (buffer_rows++ == 0) first_row_s = row.timestamp_s;
    last_row_s = row.timestamp_s;
  }
  out.update({{"buffer_rows_in_trace", buffer_rows},
              {"buffer_rows_first_s", std::isfinite(first_row_s) ? json(first_row_s) : json(nullptr)},
              {"buffer_rows_last_s", std::isfinite(last_row_s) ? json(last_row_s) : json(nullptr)},
              {"window_start_s", t0},
              {"window_end_s", t1},
              {"drain_interval_s", kSamplerOptions.drain_interval_s}});
  TraceEnergy trace;
  try {
    trace = integrate_sample_buffer(rows, t0, t1);
  } catch (const Error& e) {
    NLPF_THROW(e.code(), e.what(), "; the trace holds ", buffer_rows, " sample-buffer rows from ",
               first_row_s, " s to ", last_row_s, " s");
  }
  NLPF_CHECK(counter_j > 0.0, ErrorCode::NVML, "the energy counter did not advance over ", t1 - t0,
             " s of load");
  const double relative = (trace.energy_j - counter_j) / counter_j;
  const bool pass = std::fabs(relative) <= kCounterVsTraceLimit;
  out.update({{"window_s", t1 - t0},
              {"examples", examples},
              {"counter_energy_j", counter_j},
              {"trace_energy_j", trace.energy_j},
              {"trace_inner_energy_j", trace.inner_energy_j},
              {"relative_difference", relative},
              {"counter_average_power_w", counter_j / (t1 - t0)},
              {"trace_average_power_w", trace.energy_j / (t1 - t0)},
              {"trace_samples", trace.samples},
              {"trace_first_sample_after_start_s", trace.first_sample_s - t0},
              {"trace_last_sample_before_end_s", t1 - trace.last_sample_s},
              {"trace_median_interval_s", trace.median_interval_s},
              {"trace_max_gap_s", trace.max_gap_s},
              {"energy_per_example_j_counter", counter_j / static_cast<double>(examples)},
              {"latency_per_example_ms", seconds * 1e3 / static_cast<double>(examples)},
              {"batch_latency_p50_ms", percentile(batch_ms, 50.0)},
              {"achieved_tflops", chain.flops_per_batch() / (percentile(batch_ms, 50.0) * 1e-3) * 1e-12},
              {"pass", pass}});
  std::printf(
      "check a (counter vs trace): window %.2f s, counter %.1f J (%.1f W), trace %.1f J from %lld samples "
      "(median spacing %.1f ms, widest gap %.1f ms), difference %+.2f%% (limit %.0f%%): %s\n",
      t1 - t0, counter_j, counter_j / (t1 - t0), trace.energy_j, static_cast<long long>(trace.samples),
      trace.median_interval_s * 1e3, trace.max_gap_s * 1e3, relative * 100.0, kCounterVsTraceLimit * 100.0,
      verdict(pass));
  return out;
}

json protocol_json(const ProtocolResult& r) {
  json trials = json::array();
  for (const TrialResult& t : r.trials)
    trials.push_back({{"trial", t.index},
                      {"seconds", t.seconds},
                      {"passes", t.passes},
                      {"energy_per_example_j", optional_json(t.energy_per_example_j)},
                      {"average_power_w", optional_json(t.average_power_w)},
                      {"latency_per_example_ms", t.latency_per_example_ms}});
  return {{"energy_per_example_j", optional_json(r.energy_per_example_j)},
          {"ci_low", optional_json(r.energy_per_example_j_ci_low)},
          {"ci_high", optional_json(r.energy_per_example_j_ci_high)},
          {"ci_level", optional_json(r.energy_per_example_j_ci_level)},
          {"cv", optional_json(r.cv)},
          {"dynamic_energy_per_example_j", optional_json(r.dynamic_energy_per_example_j)},
          {"idle_power_w", optional_json(r.idle_power_w)},
          {"average_power_w", optional_json(r.average_power_w)},
          {"average_latency_per_example_ms", r.average_latency_per_example_ms},
          {"latency_p50_ms", optional_json(r.latency_p50_ms)},
          {"latency_p99_ms", optional_json(r.latency_p99_ms)},
          {"throttled", r.throttled ? json(*r.throttled) : json(nullptr)},
          {"null_reasons", r.null_reasons},
          {"trials", trials}};
}

// (b) run_protocol as phase 1 runs it, repeated: the issue's "five repeated measurements of one
// configuration" are the repeats' medians, whose CV decides. Each run's CV across its own trials is
// reported beside it (the protocol flags one above 3%): a fresh H200 drew ~28% more power for its first
// ~20 s of load at unchanged clocks and latency (bench/RESULTS.md), which lands in the first run's trials.
json check_protocol(GemmChain& chain, NvmlMeter& meter, PowerSampler& sampler, const Durations& d,
                    const InferenceMetricsInputs& memory_inputs) {
  json out = {{"limit_cv", kProtocolCvLimit},
              {"trials", d.protocol.trials},
              {"min_trial_seconds", d.protocol.min_trial_seconds},
              {"idle_seconds", d.protocol.idle_seconds},
              {"repeats", d.protocol_repeats}};
  const Workload workload = [&chain] { return chain.run_pass(); };
  std::vector<double> medians;
  json runs = json::array();
  std::optional<double> first_cv;
  for (int k = 0; k < d.protocol_repeats; ++k) {
    const ProtocolResult r = run_protocol(d.protocol, meter, &sampler, workload);
    if (k == 0) {
      first_cv = r.cv;
      out["metrics_json_of_first_run"] = inference_metrics_json(r, memory_inputs);
    }
    if (r.energy_per_example_j) medians.push_back(*r.energy_per_example_j);
    runs.push_back(protocol_json(r));
    std::printf("check b: protocol run %d/%d: %.5f J/example [%.5f, %.5f], CV %.2f%%, %.4f ms/example\n",
                k + 1, d.protocol_repeats, r.energy_per_example_j.value_or(NAN),
                r.energy_per_example_j_ci_low.value_or(NAN), r.energy_per_example_j_ci_high.value_or(NAN),
                r.cv.value_or(NAN) * 100.0, r.average_latency_per_example_ms);
  }
  out["runs"] = runs;
  out["medians"] = medians;
  std::optional<double> cv_of_medians;
  if (medians.size() >= 2) cv_of_medians = coefficient_of_variation(medians);
  out["cv_of_medians"] = optional_json(cv_of_medians);
  const bool pass = cv_of_medians && *cv_of_medians <= kProtocolCvLimit;
  out["cv_first_run_trials"] = optional_json(first_cv);
  out["pass"] = pass;
  std::printf(
      "check b (protocol repeatability): J/example %.5f (first run), CV of %zu protocol medians %.2f%% (limit "
      "%.0f%%), CV across the first run's trials %.2f%%: %s\n",
      medians.empty() ? NAN : medians.front(), medians.size(), cv_of_medians.value_or(NAN) * 100.0,
      kProtocolCvLimit * 100.0, first_cv.value_or(NAN) * 100.0, verdict(pass));
  return out;
}

// (c) Latency per example with the sampler thread on and off, in an order that cancels a linear drift
// (off-on, on-off, off-on, ...: each state's mean position is the same).
json check_sampler_cost(GemmChain& chain, PowerSampler& sampler, const Durations& d) {
  json out = {{"limit_relative", kSamplerCostLimit},
              {"segments_per_state", d.sampler_segments},
              {"segment_seconds", d.sampler_segment_s}};
  if (sampler.running()) sampler.stop();
  run_for(chain, 1.0);
  std::vector<double> on_ms, off_ms, on_batch_ms, off_batch_ms;
  json segments = json::array();
  for (int pair = 0; pair < d.sampler_segments; ++pair) {
    for (const bool on : {pair % 2 == 1, pair % 2 == 0}) {
      if (on) {
        sampler.start();
        sampler.set_phase("c: sampler on");
      }
      std::vector<double> batch_ms;
      const auto [examples, seconds] = run_for(chain, d.sampler_segment_s, &batch_ms);
      if (on) sampler.stop();
      const double per_example_ms = seconds * 1e3 / static_cast<double>(examples);
      (on ? on_ms : off_ms).push_back(per_example_ms);
      (on ? on_batch_ms : off_batch_ms).push_back(median(batch_ms));
      segments.push_back(
          {{"sampler", on}, {"latency_per_example_ms", per_example_ms}, {"batch_p50_ms", median(batch_ms)}});
    }
  }
  const double on_mean = mean(on_ms);
  const double off_mean = mean(off_ms);
  const double relative = (on_mean - off_mean) / off_mean;
  const bool pass = std::fabs(relative) < kSamplerCostLimit;
  out.update(
      {{"segments", segments},
       {"latency_per_example_ms_on", on_mean},
       {"latency_per_example_ms_off", off_mean},
       {"relative_difference", relative},
       {"batch_p50_ms_on", mean(on_batch_ms)},
       {"batch_p50_ms_off", mean(off_batch_ms)},
       {"cv_off_segments", off_ms.size() >= 2 ? json(coefficient_of_variation(off_ms)) : json(nullptr)},
       {"pass", pass}});
  std::printf(
      "check c (sampler cost): %.5f ms/example with the sampler, %.5f without, difference %+.3f%% "
      "(limit %.0f%%): %s\n",
      on_mean, off_mean, relative * 100.0, kSamplerCostLimit * 100.0, verdict(pass));
  return out;
}

const char* kUsage =
    "usage: gpu_measure_validation [--out FILE] [--seconds-a S] [--quick] [--device N] [--batches N]\n"
    "  --out FILE      JSON results (default measure_validation.json); the power trace goes beside it as\n"
    "                  <stem>.power_trace.csv\n"
    "  --seconds-a S   check (a)'s window of steady load, seconds (default 12)\n"
    "  --quick         short durations everywhere: a smoke test, not a validation\n"
    "  --device N      CUDA device index (default 0)\n"
    "  --batches N     batches of 32 per pass (default 27, about SST-2 dev)\n";

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      NLPF_CHECK(i + 1 < argc, ErrorCode::INVALID_ARGUMENT, arg, " needs a value");
      return argv[++i];
    };
    const auto number = [&](double low) {
      const std::string text = value();
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      NLPF_CHECK(end != text.c_str() && *end == '\0' && std::isfinite(v) && v >= low,
                 ErrorCode::INVALID_ARGUMENT, arg, ": expected a number >= ", low, ", got '", text, "'");
      return v;
    };
    if (arg == "--out") {
      o.out = value();
    } else if (arg == "--seconds-a") {
      o.seconds_a = number(1.0);
    } else if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--device") {
      o.device = static_cast<int>(number(0.0));
    } else if (arg == "--batches") {
      o.batches = static_cast<int>(number(1.0));
    } else if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else {
      NLPF_THROW(ErrorCode::INVALID_ARGUMENT, "unknown option '", arg, "'");
    }
  }
  if (o.quick && o.seconds_a == 12.0) o.seconds_a = 2.0;
  return o;
}

void write_results(const Options& o, const json& results) {
  write_file_atomic(o.out, results.dump(2) + "\n");
  std::printf("results: %s\n", o.out.c_str());
}

// Runs one check; an Error fails that check (recorded with its message) and the others still run.
json guarded(const char* name, bool& errored, const std::function<json()>& check) {
  try {
    return check();
  } catch (const Error& e) {
    errored = true;
    std::printf("check %s: ERROR (%s): %s\n", name, error_code_name(e.code()), e.what());
    return {{"pass", false}, {"error", e.what()}, {"error_code", error_code_name(e.code())}};
  }
}

int run(const Options& o) {
  json results = {{"tool", "gpu_measure_validation"},
                  {"nlpf_version", kVersion},
                  {"git_commit", kGitCommit},
                  {"quick", o.quick}};
  const char* tf32_override = std::getenv("NVIDIA_TF32_OVERRIDE");
  results["env_NVIDIA_TF32_OVERRIDE"] = tf32_override != nullptr ? json(tf32_override) : json(nullptr);

  const std::vector<DeviceDescription> devices = cuda_devices();
  if (static_cast<size_t>(o.device) >= devices.size()) {
    const std::string reason = "no CUDA device " + std::to_string(o.device) + " (" +
                               std::to_string(devices.size()) + " visible; driver " +
                               (cuda_driver_version().empty() ? "absent" : cuda_driver_version()) + ")";
    std::fprintf(stderr, "gpu_measure_validation: %s\n", reason.c_str());
    results["error"] = reason;
    write_results(o, results);
    return kExitNoGpu;
  }
  const DeviceDescription& gpu = devices[static_cast<size_t>(o.device)];
  results["cuda_device"] = {{"index", o.device},
                            {"name", gpu.name},
                            {"pci_bus_id", gpu.pci_bus_id},
                            {"uuid", gpu.uuid},
                            {"compute_capability", gpu.compute_capability},
                            {"runtime", cuda_runtime_version()},
                            {"driver", cuda_driver_version()}};
  NvmlMeter meter(NvmlDeviceSelector{gpu.pci_bus_id, gpu.uuid});
  if (!meter.available()) {
    const std::string reason =
        "NVML energy counter unavailable for " + gpu.pci_bus_id + ": " + meter.unavailable_reason();
    std::fprintf(stderr, "gpu_measure_validation: %s\n", reason.c_str());
    results["error"] = reason;
    write_results(o, results);
    return kExitNoGpu;
  }
  results["nvml_before"] = meter.describe();
  results["state_before"] = state_json(meter.read_device_state());
  std::printf("GPU %s (%s), driver %s, power limit %s W, persistence %s\n", gpu.name.c_str(),
              gpu.pci_bus_id.c_str(),
              results["nvml_before"].value("driver_version", std::string("?")).c_str(),
              results["nvml_before"].contains("enforced_power_limit_w")
                  ? std::to_string(results["nvml_before"]["enforced_power_limit_w"].get<double>()).c_str()
                  : "?",
              results["nvml_before"].value("persistence_mode", std::string("?")).c_str());

  const Durations d = durations_for(o);
  GemmChain chain(o.device, o.batches);
  results["workload"] = chain.describe();
  PowerSampler sampler(meter, kSamplerOptions);
  sampler.start();

  // NVML's view of this process while the chain's memory is allocated, and what it says about the context.
  InferenceMetricsInputs memory_inputs;
  memory_inputs.accuracy_null_reason = "synthetic GEMM workload: no labels";
  memory_inputs.peak_gpu_memory_mb = chain.allocated_mb();
  chain.run_pass();
  try {
    const NvmlProcessMemory process = meter.process_memory(static_cast<unsigned int>(::getpid()));
    if (process.used_bytes) {
      memory_inputs.gpu_process_memory_mb = static_cast<double>(*process.used_bytes) / kMiB;
    } else {
      memory_inputs.gpu_process_memory_null_reason = process.reason;
    }
    const NvmlMemoryInfo info = meter.memory_info();
    results["memory"] = {{"read", "after the first pass, every buffer and cuBLASLt's state allocated"},
                         {"allocated_mb", chain.allocated_mb()},
                         {"nvml_process_mb", optional_json(memory_inputs.gpu_process_memory_mb)},
                         {"nvml_process_reason", process.reason},
                         {"nvml_device_used_mb", static_cast<double>(info.used_bytes) / kMiB},
                         {"nvml_device_total_mb", static_cast<double>(info.total_bytes) / kMiB}};
  } catch (const Error& e) {
    memory_inputs.gpu_process_memory_null_reason = e.what();
    results["memory"] = {{"read", "after the first pass, every buffer and cuBLASLt's state allocated"},
                         {"allocated_mb", chain.allocated_mb()},
                         {"error", e.what()}};
  }
  std::printf("memory: %.1f MB allocated, NVML process %s\n", chain.allocated_mb(),
              memory_inputs.gpu_process_memory_mb
                  ? (std::to_string(*memory_inputs.gpu_process_memory_mb) + " MB").c_str()
                  : memory_inputs.gpu_process_memory_null_reason.c_str());

  bool errored = false;
  json checks;
  checks["a_counter_vs_trace"] =
      guarded("a", errored, [&] { return check_counter_vs_trace(chain, meter, sampler, o, d); });
  if (!sampler.running()) sampler.start();
  checks["b_protocol"] =
      guarded("b", errored, [&] { return check_protocol(chain, meter, sampler, d, memory_inputs); });
  checks["c_sampler_cost"] = guarded("c", errored, [&] { return check_sampler_cost(chain, sampler, d); });
  if (sampler.running()) sampler.stop();

  results["checks"] = checks;
  results["nvml_after"] = meter.describe();
  results["state_after"] = state_json(meter.read_device_state());
  bool all_pass = true;
  for (const auto& [name, check] : checks.items()) all_pass = all_pass && check.value("pass", false);
  results["all_pass"] = all_pass;
  write_power_trace_csv(std::filesystem::path(o.out).replace_extension(".power_trace.csv"), sampler.rows());
  write_results(o, results);
  std::printf("RESULT: %s (a %s, b %s, c %s)%s\n", all_pass ? "all checks pass" : "a check failed",
              verdict(checks["a_counter_vs_trace"].value("pass", false)),
              verdict(checks["b_protocol"].value("pass", false)),
              verdict(checks["c_sampler_cost"].value("pass", false)),
              o.quick ? " [--quick: smoke test only]" : "");
  if (all_pass) return kExitPass;
  return errored ? kExitError : kExitCheckFailed;
}

}  // namespace
}  // namespace nlpf

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // logs keep every finished line if the run is cut short
  nlpf::Options options;
  try {
    options = nlpf::parse(argc, argv);
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "gpu_measure_validation: %s\n%s", e.what(), nlpf::kUsage);
    return nlpf::kExitUsage;
  }
  if (options.help) {
    std::fputs(nlpf::kUsage, stdout);
    return nlpf::kExitPass;
  }
  try {
    return nlpf::run(options);
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "gpu_measure_validation: %s error: %s\n", nlpf::error_code_name(e.code()), e.what());
    return nlpf::kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_measure_validation: %s\n", e.what());
    return nlpf::kExitError;
  }
}
