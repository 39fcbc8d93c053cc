// ExecutionContext: what every op is handed besides its tensors (STYLE "GPU code"): the device, its
// allocator, and for CUDA the stream, cuBLASLt handle and workspace (backend/cuda/cuda_context.h gives those
// their types; this header stays free of CUDA). One context per device and thread of work; nothing CUDA lives
// in globals. Work on a CUDA context is ordered on its stream; the host waits only in synchronize() and in a
// copy to the host. Also here: tensor copies between host and device, through the context.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/tensor.h"

namespace nlpf {

// Device work recorded once and replayed (a CUDA graph on a CUDA context).
class CapturedWork {
 public:
  virtual ~CapturedWork() = default;
  // Queues the recorded work again on the context it was captured on.
  virtual void replay() = 0;
};

// How f32 GEMMs run (DESIGN §5): IEEE fp32 arithmetic; TF32 tensor-core inputs with fp32 accumulation; or
// BF16, inputs down-converted to bf16 on the tensor cores with fp32 accumulation (cuBLASLt's
// CUBLAS_COMPUTE_32F_FAST_16BF, which may keep TF32 where that is faster, never less precise than bf16);
// FP16, the same with fp16 inputs (CUBLAS_COMPUTE_32F_FAST_16F). BF16 and FP16 also select mixed-precision
// training (model/bert_model.h, Memory): the encoder's GEMMs then take real 16-bit operands, and these modes
// apply to the GEMMs left with f32 operands (pooler, classifier, the attention's per-head products).
enum class MathMode { IEEE_FP32, TF32, BF16, FP16 };

// How a GEMM's algorithm is chosen when its plan is made (CUDA; the CPU ignores it). HEURISTIC: the library's
// first choice, the same on every run (training keeps it: deterministic runs). AUTOTUNE: the heuristic's
// candidates are timed once on the GEMM's own operands and the fastest kept (TensorRT's builder does the
// same); only for a GEMM that can be repeated (its output is not also its input) and made outside a graph
// capture, others fall back to HEURISTIC. HEURISTIC_INPLACE_REDUCTION: the heuristic's first choice among
// algorithms that add a split-K GEMM's partial products in the output buffer in a fixed order (cuBLASLt's
// CUBLASLT_REDUCTION_SCHEME_INPLACE) or do not split K, so no reduction kernel runs after a split GEMM
// (training's weight gradients, whose K is the batch's tokens); where the library offers none, HEURISTIC's.
// Deterministic as HEURISTIC. Each selection keeps its own plans.
enum class GemmSelection { HEURISTIC, AUTOTUNE, HEURISTIC_INPLACE_REDUCTION };

// What GemmSelection::AUTOTUNE decided for one plan of a context: the GEMM in matmul's row-major terms (M, N,
// K, batch), its math mode, whether it reads C (beta = 1), the time of 5 launches of each of the
// heuristic's candidates in its order (a candidate's fastest round; -1 where the library refused it), and the
// index chosen (0: the heuristic's own choice) with its configuration. `plan` names the plan: its whole cache
// key as text (shape, leading dimensions, dtypes, epilogue, alignments, ...), opaque, unique within a
// context. `replayed`: the choice came from set_autotune_replay, not from timing (candidate_ms are then the
// recorded run's). For benchmarks that report what the autotune saw (ops::gemm_autotune_records).
struct GemmAutotuneRecord {
  int64_t M = 0, N = 0, K = 0, batch = 1;
  MathMode math_mode = MathMode::IEEE_FP32;
  bool reads_c = false;
  std::vector<float> candidate_ms;
  int chosen = 0;
  // The chosen candidate's cuBLASLt configuration: "algo A tile T stages S split-k K swizzle W custom C".
  std::string chosen_algo;
  std::string plan;
  bool replayed = false;
};

class ExecutionContext {
 public:
  explicit ExecutionContext(Device device) : device_(device) {}
  virtual ~ExecutionContext() = default;
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  Device device() const { return device_; }
  virtual Allocator& allocator() = 0;
  MathMode math_mode() const { return math_mode_; }
  void set_math_mode(MathMode mode) { math_mode_ = mode; }
  GemmSelection gemm_selection() const { return gemm_selection_; }
  void set_gemm_selection(GemmSelection selection) { gemm_selection_ = selection; }
  // How many of the heuristic's candidates GemmSelection::AUTOTUNE times for each GEMM shape: 1 to
  // kMaxAutotuneCandidates, 8 by default (INVALID_ARGUMENT outside that range).
  static constexpr int kMaxAutotuneCandidates = 64;
  int autotune_candidates() const { return autotune_candidates_; }
  void set_autotune_candidates(int count);
  // How many rounds AUTOTUNE times its candidates in: 1 to kMaxAutotuneRounds, 1 by default
  // (INVALID_ARGUMENT outside that range). Each round times every candidate once, in the heuristic's order,
  // and a candidate counts its fastest round. Meant to even out what the order costs (a GPU that was idle
  // raises its clocks while the first candidates run); three rounds were no faster than one for bert-base on
  // the H200 (bench/RESULTS.md, 2026-12-01), so one stays the default and more are for A/B.
  static constexpr int kMaxAutotuneRounds = 16;
  int autotune_rounds() const { return autotune_rounds_; }
  void set_autotune_rounds(int rounds);
  // AUTOTUNE's choices taken from an earlier run instead of timed (a profiler's run, whose own timings are
  // its instrumentation's: tools/device_check.sh tf32_profile): once set, a plan AUTOTUNE would time takes
  // the `chosen` candidate of the record with its `plan` and runs nothing to time it; a plan no record names
  // is an error when it is made. INVALID_ARGUMENT for two records of one plan, or a `chosen` that is not one
  // of its record's timed candidates. An empty list: timing again.
  void set_autotune_replay(std::vector<GemmAutotuneRecord> records);
  // The record set_autotune_replay gave for `plan`; nullptr when there is none.
  const GemmAutotuneRecord* autotune_replay(const std::string& plan) const;
  bool autotune_replaying() const { return !autotune_replay_.empty(); }
  // Waits until the work queued on this context has finished (CPU: returns at once).
  virtual void synchronize() {}
  // The cudaStream_t work is queued on, for timers that record on it (nullptr on the CPU).
  virtual void* native_stream() const { return nullptr; }

  // Copies `bytes` from `src` to `dst`, each on the host or on this context's device as the flags say,
  // ordered after the work queued so far. A copy to the host has landed when this returns.
  virtual void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device,
                          size_t bytes) = 0;
  // Zeroes `bytes` at `dst` on this context's device, in order.
  virtual void fill_zero_bytes(void* dst, size_t bytes) = 0;
  // Records the device work that `work` queues on this context, without running it, for replay (CUDA: stream
  // capture into a graph, instantiated once). `work` must not synchronise or read results on the host, and
  // must free what it allocates (CUDA: the allocations become the graph's own allocation and free nodes,
  // made again at each replay). The CPU context has no device queue: its CapturedWork runs `work` again at
  // each replay.
  virtual std::unique_ptr<CapturedWork> capture(const std::function<void()>& work);
  // The most memory CUDA graphs' own allocations (made inside captured work) have held on this context's
  // device, which the allocator's counts do not include (CUDA: cudaGraphMemAttrReservedMemHigh, the process's
  // graphs on the device); 0 on the CPU.
  virtual size_t graph_memory_peak_bytes() const { return 0; }

 private:
  Device device_;
  MathMode math_mode_ = MathMode::IEEE_FP32;
  GemmSelection gemm_selection_ = GemmSelection::HEURISTIC;
  int autotune_candidates_ = 8;
  int autotune_rounds_ = 1;
  std::map<std::string, GemmAutotuneRecord> autotune_replay_;  // by plan
};

// The CPU's context (host allocator, no stream): for the CPU engine and host-side tests.
ExecutionContext& cpu_context();
// A new context on `device` (CUDA: its own stream, cuBLASLt handle, workspace and stream-ordered caching
// allocator). Defined in backend/device.cc; UNSUPPORTED for CUDA in a build without it.
std::unique_ptr<ExecutionContext> make_execution_context(Device device);

// Tensor helpers over a context. Every tensor given must live on the host or on ctx's device.
Tensor empty_tensor(ExecutionContext& ctx, DType dtype, Shape shape);  // on ctx's device
Tensor to_device(ExecutionContext& ctx, const Tensor& tensor);         // a copy on ctx's device
Tensor to_host(ExecutionContext& ctx, const Tensor& tensor);           // a host copy (landed on return)
// dst = src: same dtype and element count (shapes may differ), any of the two placements.
void copy_tensor(ExecutionContext& ctx, Tensor& dst, const Tensor& src);
void fill_zero(ExecutionContext& ctx, Tensor& tensor);

}  // namespace nlpf
