// Evaluation and measurement on the GPU through the CUDA inference engine (BertInference + InferenceRunner):
// the weights of a trained model (f32 host tensors) go to the device once in the precision asked, and every
// pass replays the runner's CUDA graphs. Phase 1 uses it for each epoch's evaluation and measurement, so the
// measured passes run the very kernels that chose the best epoch.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "backend/context.h"
#include "backend/precision.h"
#include "core/fp8.h"
#include "core/tensor.h"
#include "measure/energy_meter.h"
#include "measure/metrics_json.h"
#include "measure/power_sampler.h"
#include "measure/protocol.h"
#include "model/bert_config.h"
#include "model/fp8_calibration.h"
#include "text/batching.h"
#include "train/trainer.h"

namespace nlpf {

struct GpuEvaluationOptions {
  Precision precision = Precision::FP32;
  int64_t batch_size = 64;
  PaddingMode padding = kDefaultEvalPadding;
  // FP8's activation scales (model/fp8_calibration.h); required for Precision::FP8, read when the engine is
  // built.
  const Fp8Calibration* fp8_calibration = nullptr;
  // FP8's weight scales: one per weight tensor, or one per output channel.
  Fp8Granularity fp8_weight_scales = Fp8Granularity::PER_TENSOR;
};

// One evaluation pass (predictions in file order, accuracy, batch latencies from CUDA events).
// OUT_OF_MEMORY names the batch size, length and precision when the engine does not fit.
EvaluationResult evaluate_on_gpu(ExecutionContext& gpu, const BertConfig& config,
                                 const std::map<std::string, Tensor>& parameters,
                                 const TokenizedDataset& data, const GpuEvaluationOptions& options);

// The measurement protocol over such passes; fills the GPU memory inputs of metrics.json (the allocator's
// peak over the measurement, NVML's process figure while the engine is alive).
ProtocolResult measure_on_gpu(ExecutionContext& gpu, EnergyMeter& meter, PowerSampler& sampler,
                              const BertConfig& config, const std::map<std::string, Tensor>& parameters,
                              const TokenizedDataset& data, const GpuEvaluationOptions& options,
                              const ProtocolOptions& protocol, InferenceMetricsInputs& inputs);

}  // namespace nlpf
