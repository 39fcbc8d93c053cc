// CUDA runtime device queries (see cuda_devices.h).
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace nlpf::cuda {
namespace {

std::string version_string(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

CudaDeviceInfo device_info(int index) {
  cudaDeviceProp prop{};
  NLPF_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  CudaDeviceInfo info;
  info.name = prop.name;
  char bus_id[32] = {};
  NLPF_CUDA_CHECK(cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, index));
  info.pci_bus_id = bus_id;
  char uuid[64];
  const unsigned char* u = reinterpret_cast<const unsigned char*>(prop.uuid.bytes);
  std::snprintf(uuid, sizeof uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  info.uuid = uuid;
  info.compute_capability_major = prop.major;
  info.compute_capability_minor = prop.minor;
  info.total_memory_bytes = prop.totalGlobalMem;
  info.multiprocessor_count = prop.multiProcessorCount;
  return info;
}

std::string runtime_version() {
  int v = 0;
  return cudaRuntimeGetVersion(&v) == cudaSuccess ? version_string(v) : "";
}

std::string driver_version() {
  int v = 0;
  return cudaDriverGetVersion(&v) == cudaSuccess && v > 0 ? version_string(v) : "";
}

void profiler_collect(bool on) {
  NLPF_CUDA_CHECK(on ? cudaProfilerStart() : cudaProfilerStop());
}

}  // namespace nlpf::cuda
