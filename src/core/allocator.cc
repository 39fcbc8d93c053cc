// Allocator bookkeeping and the host allocator (64-byte aligned, for AVX-512 loads).
#include "core/allocator.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace nlpf {

void* Allocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = raw_allocate(bytes);
  const size_t now = current_bytes_.fetch_add(bytes) + bytes;
  size_t peak = peak_bytes_.load();
  while (now > peak && !peak_bytes_.compare_exchange_weak(peak, now)) {
  }
  return ptr;
}

void Allocator::deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  raw_deallocate(ptr);
  current_bytes_.fetch_sub(bytes);
}

namespace {

class HostAllocator final : public Allocator {
 protected:
  void* raw_allocate(size_t bytes) override {
    constexpr size_t kAlignment = 64;
    void* ptr = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    if (ptr == nullptr) NLPF_THROW(ErrorCode::IO, "out of host memory allocating ", bytes, " bytes");
    return ptr;
  }
  void raw_deallocate(void* ptr) override { std::free(ptr); }
};

}  // namespace

Allocator& allocator_for(Device device) {
  static HostAllocator host;
  NLPF_CHECK(device.type == DeviceType::CPU, ErrorCode::UNSUPPORTED,
             "no allocator for CUDA devices in this build yet");
  return host;
}

}  // namespace nlpf
