// What devices this build and machine offer, for --device resolution, run.json and capability checks.
// This is the one place that knows whether the CUDA backend was built (NLPF_WITH_CUDA).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"

namespace nlpf {

class BatchTimer;  // measure/batch_timer.h

struct DeviceDescription {
  Device device;
  std::string name;        // GPU name, or the CPU model
  std::string pci_bus_id;  // GPUs only
  std::string uuid;        // GPUs only
  int compute_capability = 0;  // 90 for sm_90; 0 for the CPU
  size_t total_memory_bytes = 0;
};

bool cuda_built();
// The same at compile time, for `if constexpr` around calls of CUDA kernels (their definitions exist only in
// a build with CUDA; a discarded branch needs none).
inline constexpr bool kCudaBuilt = NLPF_WITH_CUDA != 0;
// The CUDA devices visible now (empty without a driver, a GPU, or a CUDA build).
std::vector<DeviceDescription> cuda_devices();
DeviceDescription cpu_description();
// Resolves "auto", "cpu", "cuda" or "cuda:N" (DESIGN §2); throws Error naming --device when unavailable.
Device resolve_device(const std::string& spec);
std::string device_string(Device device);
std::string cuda_runtime_version();
std::string cuda_driver_version();
// Starts (on) or stops the CUDA profiler's collection, for a profiler started with it off (ncu
// --profile-from-start off): work outside the range, such as the GEMM autotune's timing, runs unprofiled.
// UNSUPPORTED in a build without CUDA.
void cuda_profiler_collect(bool on);

// A per-batch timer for work on `device`: CUDA events recorded on `cuda_stream` (a cudaStream_t; nullptr is
// the default stream) for a CUDA device, the steady clock for the CPU (cuda_stream must then be nullptr).
// Throws Error(UNSUPPORTED) for a CUDA device in a build without CUDA.
std::unique_ptr<BatchTimer> make_batch_timer(Device device, void* cuda_stream = nullptr);
// Enqueues device work of a known minimum duration (a one-thread kernel spinning on the GPU's nanosecond
// timer) on `cuda_stream`, and waits for a device: for checking timers and meters without a model.
// Both throw Error(UNSUPPORTED) in a build without CUDA.
void cuda_enqueue_spin(int device_index, double microseconds, void* cuda_stream = nullptr);
void cuda_synchronize(int device_index);

}  // namespace nlpf
