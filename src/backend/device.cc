// Device discovery and --device resolution; holds the project's one #if NLPF_WITH_CUDA.
#include "backend/device.h"

#include <fstream>
#include <string>
#include "backend/context.h"

#include "core/error.h"
#include "measure/batch_timer.h"

#if NLPF_WITH_CUDA
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/event_timer.h"
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

void cuda_profiler_collect(bool on) {
#if NLPF_WITH_CUDA
  cuda::profiler_collect(on);
#else
  (void)on;
  NLPF_THROW(ErrorCode::UNSUPPORTED, "the CUDA profiler range needs a build with CUDA");
#endif
}

std::string cuda_driver_version() {
#if NLPF_WITH_CUDA
  return cuda::driver_version();
#else
  return "";
#endif
}

std::unique_ptr<BatchTimer> make_batch_timer(Device device, void* cuda_stream) {
  if (device.type == DeviceType::CPU) {
    NLPF_CHECK(cuda_stream == nullptr, ErrorCode::INVALID_ARGUMENT,
               "make_batch_timer: a CUDA stream was given for the CPU");
    return std::make_unique<SteadyBatchTimer>();
  }
#if NLPF_WITH_CUDA
  return cuda::make_event_batch_timer(device.index, cuda_stream);
#else
  NLPF_THROW(ErrorCode::UNSUPPORTED, "batch timer for ", device_string(device),
             ": this nlpf was built without CUDA");
#endif
}

void cuda_enqueue_spin(int device_index, double microseconds, void* cuda_stream) {
#if NLPF_WITH_CUDA
  cuda::enqueue_spin(device_index, microseconds, cuda_stream);
#else
  (void)microseconds;
  (void)cuda_stream;
  NLPF_THROW(ErrorCode::UNSUPPORTED, "spin kernel on cuda:", device_index,
             ": this nlpf was built without CUDA");
#endif
}

void cuda_synchronize(int device_index) {
#if NLPF_WITH_CUDA
  cuda::synchronize(device_index);
#else
  NLPF_THROW(ErrorCode::UNSUPPORTED, "synchronize cuda:", device_index, ": this nlpf was built without CUDA");
#endif
}

std::unique_ptr<ExecutionContext> make_execution_context(Device device) {
  if (device.type == DeviceType::CPU) {
    NLPF_THROW(ErrorCode::INTERNAL, "make_execution_context: the CPU has one shared context (cpu_context())");
  }
#if NLPF_WITH_CUDA
  const size_t count = cuda_devices().size();
  NLPF_CHECK(static_cast<size_t>(device.index) < count, ErrorCode::UNSUPPORTED, device_string(device), ": ",
             count, " CUDA device(s) visible");
  return cuda::make_cuda_context(device.index);
#else
  NLPF_THROW(ErrorCode::UNSUPPORTED, device_string(device), ": this nlpf was built without CUDA");
#endif
}

}  // namespace nlpf
