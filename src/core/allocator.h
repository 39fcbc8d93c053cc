// Allocators that record current and peak bytes (peak_gpu_memory_mb / peak_memory_mb come from these
// high-water marks). The host allocator is one per process; a CUDA allocator belongs to an execution context
// (backend/context.h), which orders its allocations and frees on the context's stream. A Buffer keeps the
// allocator it came from, so it is always returned to the right one.
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
  explicit Allocator(Device device) : device_(device) {}
  virtual ~Allocator() = default;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Throws Error(OUT_OF_MEMORY) naming the bytes asked for and the bytes this allocator holds.
  void* allocate(size_t bytes);
  void deallocate(void* ptr, size_t bytes);
  Device device() const { return device_; }
  size_t current_bytes() const { return current_bytes_.load(); }
  size_t peak_bytes() const { return peak_bytes_.load(); }
  void reset_peak() { peak_bytes_.store(current_bytes_.load()); }

 protected:
  virtual void* raw_allocate(size_t bytes) = 0;  // nullptr when out of memory
  virtual void raw_deallocate(void* ptr) = 0;

 private:
  Device device_;
  std::atomic<size_t> current_bytes_{0};
  std::atomic<size_t> peak_bytes_{0};
};

// The host allocator (64-byte aligned, for AVX-512 loads).
Allocator& host_allocator();

}  // namespace nlpf
