// Device discovery and --device resolution; holds the project's one #if NLPF_WITH_CUDA.
#include "backend/device.h"

#include <fstream>
#include <string>

#include "core/error.h"

#if NLPF_WITH_CUDA
#include "backend/cuda/cuda_devices.h"
#endif

namespace nlpf {

bool cuda_built() { return NLPF_WITH_CUDA != 0; }

std::vector<DeviceDescription> cuda_devices() {
  std::vector<DeviceDescription> out;
#if NLPF_WITH_CUDA
  const int count = cuda::device_count();
  for (int i = 0; i < count; ++i) {
    const cuda::CudaDeviceInfo info = cuda::device_info(i);
    out.push_back({Device{DeviceType::CUDA, i}, info.name, info.pci_bus_id, info.uuid,
                   info.compute_capability_major * 10 + info.compute_capability_minor, info.total_memory_bytes});
  }
#endif
  return out;
}

DeviceDescription cpu_description() {
  DeviceDescription d;
  d.name = "cpu";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) d.name = line.substr(line.find_first_not_of(' ', colon + 1));
      break;
    }
  }
  return d;
}

Device resolve_device(const std::string& spec) {
  if (spec == "cpu") return Device{DeviceType::CPU, 0};
  if (spec == "auto") return cuda_devices().empty() ? Device{DeviceType::CPU, 0} : Device{DeviceType::CUDA, 0};
  NLPF_CHECK(spec == "cuda" || spec.rfind("cuda:", 0) == 0, ErrorCode::INVALID_ARGUMENT,
             "--device: expected auto, cpu, cuda or cuda:N, got '", spec, "'");
  NLPF_CHECK(cuda_built(), ErrorCode::UNSUPPORTED, "--device ", spec,
             ": this nlpf was built without CUDA (rebuild on a machine with the CUDA toolkit)");
  const int index = spec == "cuda" ? 0 : std::stoi(spec.substr(5));
  const size_t count = cuda_devices().size();
  NLPF_CHECK(static_cast<size_t>(index) < count, ErrorCode::UNSUPPORTED, "--device ", spec, ": ", count,
             " CUDA device(s) visible");
  return Device{DeviceType::CUDA, index};
}

std::string device_string(Device device) {
  return device.type == DeviceType::CPU ? "cpu" : "cuda:" + std::to_string(device.index);
}

std::string cuda_runtime_version() {
#if NLPF_WITH_CUDA
  return cuda::runtime_version();
#else
  return "";
#endif
}

std::string cuda_driver_version() {
#if NLPF_WITH_CUDA
  return cuda::driver_version();
#else
  return "";
#endif
}

}  // namespace nlpf
