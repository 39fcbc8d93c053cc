// evaluate_on_gpu / measure_on_gpu: the engine is built per call (weights uploaded in the precision asked,
// workspaces planned for the longest batch the runner makes), so its memory is freed when the call returns.
#include "experiment/gpu_measure.h"

#include <unistd.h>

#include <memory>
#include <optional>

#include "backend/device.h"
#include "core/allocator.h"
#include "core/error.h"
#include "experiment/run_files.h"
#include "measure/batch_timer.h"
#include "measure/nvml_meter.h"
#include "model/bert_inference.h"
#include "model/inference_runner.h"

namespace nlpf {
namespace {

// The engine (weights in the precision asked, workspaces planned for the longest batch the runner makes), the
// runner over `data` and a CUDA-event timer, alive while `pass` runs: `pass(run_one)` with run_one() doing
// one evaluation pass. OUT_OF_MEMORY names the batch size, length and precision.
template <typename Pass>
auto with_gpu_passes(ExecutionContext& gpu, const BertConfig& config,
                     const std::map<std::string, Tensor>& parameters, const TokenizedDataset& data,
                     const GpuEvaluationOptions& options, Pass&& pass) {
  const InferenceRunnerOptions runner_options{.batch_size = options.batch_size, .padding = options.padding};
  const int64_t length = planned_sequence_length(data, runner_options);
  std::unique_ptr<BertInference> engine;
  try {
    engine = std::make_unique<BertInference>(gpu, config, parameters, options.precision, options.batch_size,
                                             length, options.fp8_calibration, options.fp8_weight_scales);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::OUT_OF_MEMORY) throw;
    NLPF_THROW(ErrorCode::OUT_OF_MEMORY, "batch size ", options.batch_size, " at length ", length, " (",
               precision_name(options.precision), "): ", e.what(), "; try a smaller evaluation batch size");
  }
  InferenceRunner runner(*engine, data, runner_options);
  const std::unique_ptr<BatchTimer> timer = make_batch_timer(gpu.device(), gpu.native_stream());
  return pass([&] { return runner.run_pass(timer.get()); });
}

}  // namespace

EvaluationResult evaluate_on_gpu(ExecutionContext& gpu, const BertConfig& config,
                                 const std::map<std::string, Tensor>& parameters,
                                 const TokenizedDataset& data, const GpuEvaluationOptions& options) {
  return with_gpu_passes(gpu, config, parameters, data, options,
                         [](const auto& run_one) { return run_one(); });
}

ProtocolResult measure_on_gpu(ExecutionContext& gpu, EnergyMeter& meter, PowerSampler& sampler,
                              const BertConfig& config, const std::map<std::string, Tensor>& parameters,
                              const TokenizedDataset& data, const GpuEvaluationOptions& options,
                              const ProtocolOptions& protocol, InferenceMetricsInputs& inputs) {
  Allocator& allocator = gpu.allocator();
  allocator.reset_peak();
  return with_gpu_passes(gpu, config, parameters, data, options, [&](const auto& run_one) {
    const Workload workload = evaluation_workload(run_one, data.size());
    ProtocolResult measured = run_protocol(protocol, meter, meter.available() ? &sampler : nullptr, workload);
    inputs.peak_gpu_memory_mb = static_cast<double>(allocator.peak_bytes()) / (1024.0 * 1024.0);
    // NVML's per-process figure while the engine's memory is alive.
    if (const auto* nvml = dynamic_cast<const NvmlMeter*>(&meter)) {
      const NvmlProcessMemory process = nvml->process_memory(static_cast<unsigned int>(::getpid()));
      if (process.used_bytes) {
        inputs.gpu_process_memory_mb = static_cast<double>(*process.used_bytes) / (1024.0 * 1024.0);
      } else {
        inputs.gpu_process_memory_null_reason = process.reason;
      }
    } else {
      inputs.gpu_process_memory_null_reason = "no NVML meter on this run";
    }
    return measured;
  });
}

}  // namespace nlpf
