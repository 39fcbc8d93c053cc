// Tensor: dtype, shape (row-major, contiguous), and a byte offset into a shared buffer that keeps the
// allocator it came from (host, or a CUDA context's). Copies share the buffer (like a handle); view() gives a
// tensor over part of it (a packed QKV weight's Q rows, a max-shape workspace's [B, T] prefix); clone()
// copies the data. Host-side data access (clone, to, zeros) is for host tensors; device tensors are filled
// and copied through backend/copy.h. Shapes use int64_t, bytes size_t.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/error.h"

namespace nlpf {

using Shape = std::vector<int64_t>;

std::string shape_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);

class Buffer {
 public:
  Buffer(Allocator& allocator, size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return allocator_.device(); }

 private:
  Allocator& allocator_;
  size_t bytes_;
  void* data_;
};

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
template <>
constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::I64; }

class Tensor {
 public:
  Tensor() = default;
  // Host tensors (the CPU engine's).
  static Tensor empty(DType dtype, Shape shape);
  static Tensor zeros(DType dtype, Shape shape);
  // A tensor from `allocator` (a CUDA context's for device memory; contents undefined).
  static Tensor empty(DType dtype, Shape shape, Allocator& allocator);

  bool defined() const { return buffer_ != nullptr || numel_ == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  Device device() const { return buffer_ ? buffer_->device() : Device{}; }
  size_t byte_offset() const { return offset_; }

  void* raw_data() { return buffer_ ? static_cast<char*>(buffer_->data()) + offset_ : nullptr; }
  const void* raw_data() const {
    return buffer_ ? static_cast<const char*>(buffer_->data()) + offset_ : nullptr;
  }
  template <typename T>
  T* data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(raw_data());
  }
  template <typename T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(raw_data());
  }
  // 16-bit floats as their bit patterns.
  uint16_t* data_u16() { return static_cast<uint16_t*>(raw_data()); }
  const uint16_t* data_u16() const { return static_cast<const uint16_t*>(raw_data()); }

  Tensor clone() const;
  // A host copy converted to another float dtype (a clone when equal).
  Tensor to(DType dtype) const;
  // Same buffer, new shape with the same number of elements.
  Tensor reshape(Shape shape) const;
  // A tensor of `dtype` and `shape` over this one's storage from `byte_offset` on (relative to this tensor's
  // own start); INVALID_ARGUMENT when it would reach past this tensor's bytes or is misaligned for `dtype`.
  Tensor view(DType dtype, Shape shape, size_t byte_offset = 0) const;
  Tensor view(Shape shape, size_t byte_offset = 0) const {
    return view(dtype_, std::move(shape), byte_offset);
  }

 private:
  void check_dtype(DType expected) const;
  void check_host(const char* what) const;
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;  // bytes from the buffer's start
  DType dtype_ = DType::F32;
  Shape shape_;
  int64_t numel_ = 0;
};

}  // namespace nlpf
