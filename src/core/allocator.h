// Device allocators that record current and peak bytes (peak_gpu_memory_mb / peak_memory_mb come from
// these high-water marks). One allocator per device, created on first use and alive for the process.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace nlpf {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device&) const = default;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  void* allocate(size_t bytes);
  void deallocate(void* ptr, size_t bytes);
  size_t current_bytes() const { return current_bytes_.load(); }
  size_t peak_bytes() const { return peak_bytes_.load(); }
  void reset_peak() { peak_bytes_.store(current_bytes_.load()); }

 protected:
  virtual void* raw_allocate(size_t bytes) = 0;
  virtual void raw_deallocate(void* ptr) = 0;

 private:
  std::atomic<size_t> current_bytes_{0};
  std::atomic<size_t> peak_bytes_{0};
};

// The allocator of a device (CPU: 64-byte aligned host memory).
Allocator& allocator_for(Device device);

}  // namespace nlpf
