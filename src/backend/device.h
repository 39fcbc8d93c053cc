// What devices this build and machine offer, for --device resolution, run.json and capability checks.
// This is the one place that knows whether the CUDA backend was built (NLPF_WITH_CUDA).
#pragma once

#include <string>
#include <vector>

#include "core/allocator.h"

namespace nlpf {

struct DeviceDescription {
  Device device;
  std::string name;        // GPU name, or the CPU model
  std::string pci_bus_id;  // GPUs only
  std::string uuid;        // GPUs only
  int compute_capability = 0;  // 90 for sm_90; 0 for the CPU
  size_t total_memory_bytes = 0;
};

bool cuda_built();
// The CUDA devices visible now (empty without a driver, a GPU, or a CUDA build).
std::vector<DeviceDescription> cuda_devices();
DeviceDescription cpu_description();
// Resolves "auto", "cpu", "cuda" or "cuda:N" (DESIGN §2); throws Error naming --device when unavailable.
Device resolve_device(const std::string& spec);
std::string device_string(Device device);
std::string cuda_runtime_version();
std::string cuda_driver_version();

}  // namespace nlpf
