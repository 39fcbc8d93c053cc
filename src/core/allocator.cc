// Allocator bookkeeping and the host allocator (64-byte aligned, for AVX-512 loads).
#include "core/allocator.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace nlpf {

void* Allocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = raw_allocate(bytes);
  NLPF_CHECK(ptr != nullptr, ErrorCode::OUT_OF_MEMORY, "out of ",
             device_.type == DeviceType::CPU ? "host" : "GPU", " memory allocating ", bytes, " bytes (",
             bytes >> 20, " MiB) with ", current_bytes() >> 20, " MiB in use");
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
 public:
  HostAllocator() : Allocator(Device{DeviceType::CPU, 0}) {}

 protected:
  void* raw_allocate(size_t bytes) override {
    constexpr size_t kAlignment = 64;
    return std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  }
  void raw_deallocate(void* ptr) override { std::free(ptr); }
};

}  // namespace

Allocator& host_allocator() {
  static HostAllocator host;
  return host;
}

}  // namespace nlpf
