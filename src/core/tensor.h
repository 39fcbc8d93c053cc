// Tensor: dtype, shape (row-major, contiguous), device and a shared buffer from the device's allocator.
// Copies share the buffer (like a handle); clone() copies the data. Shapes use int64_t, bytes size_t.
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
  Buffer(Device device, size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Device device_;
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
  static Tensor empty(DType dtype, Shape shape, Device device = {});
  static Tensor zeros(DType dtype, Shape shape, Device device = {});

  bool defined() const { return buffer_ != nullptr || numel_ == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  Device device() const { return buffer_ ? buffer_->device() : Device{}; }

  void* raw_data() { return buffer_ ? buffer_->data() : nullptr; }
  const void* raw_data() const { return buffer_ ? buffer_->data() : nullptr; }
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

 private:
  void check_dtype(DType expected) const;
  std::shared_ptr<Buffer> buffer_;
  DType dtype_ = DType::F32;
  Shape shape_;
  int64_t numel_ = 0;
};

}  // namespace nlpf
