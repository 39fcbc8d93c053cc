// Host-callable queries of the CUDA runtime, declared without CUDA headers so that plain C++ can call them
// (only src/backend/device.cc does, behind NLPF_WITH_CUDA).
#pragma once

#include <memory>
#include <string>

namespace nlpf {
class ExecutionContext;
}

namespace nlpf::cuda {

struct CudaDeviceInfo {
  std::string name;
  std::string pci_bus_id;  // "0000:65:00.0": how NVML is matched to this device
  std::string uuid;        // "GPU-xxxxxxxx-..."
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  size_t total_memory_bytes = 0;
  int multiprocessor_count = 0;
};

// Number of CUDA devices; 0 when no driver or device is present (never throws for that case).
int device_count();
CudaDeviceInfo device_info(int index);
// "13.0" style versions of the runtime this binary carries and of the installed driver ("" if none).
std::string runtime_version();
std::string driver_version();
// cudaProfilerStart (on) or cudaProfilerStop: the range a profiler started with collection off records.
void profiler_collect(bool on);
// A CudaContext (backend/cuda/cuda_context.h) on device `index`, behind the CUDA-free interface.
std::unique_ptr<ExecutionContext> make_cuda_context(int index);

}  // namespace nlpf::cuda
