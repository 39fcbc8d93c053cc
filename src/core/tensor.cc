// Tensor construction, conversion and shape helpers (host side).
#include "core/tensor.h"

#include <cstring>
#include <sstream>

namespace nlpf {

std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    NLPF_CHECK(d >= 0, ErrorCode::INVALID_ARGUMENT, "negative dimension in shape ", shape_string(shape));
    n *= d;
  }
  return n;
}

Buffer::Buffer(Device device, size_t bytes)
    : device_(device), bytes_(bytes), data_(allocator_for(device).allocate(bytes)) {}

Buffer::~Buffer() { allocator_for(device_).deallocate(data_, bytes_); }

Tensor Tensor::empty(DType dtype, Shape shape, Device device) {
  Tensor t;
  t.dtype_ = dtype;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.buffer_ = std::make_shared<Buffer>(device, t.nbytes());
  return t;
}

Tensor Tensor::zeros(DType dtype, Shape shape, Device device) {
  Tensor t = empty(dtype, std::move(shape), device);
  if (t.nbytes() > 0) std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype_, shape_, device());
  if (nbytes() > 0) std::memcpy(t.raw_data(), raw_data(), nbytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  Tensor t = empty(dtype, shape_, device());
  convert_float_buffer(raw_data(), dtype_, t.raw_data(), dtype, numel_);
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  NLPF_CHECK(shape_numel(shape) == numel_, ErrorCode::INVALID_ARGUMENT, "cannot reshape ",
             shape_string(shape_), " to ", shape_string(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::check_dtype(DType expected) const {
  NLPF_CHECK(dtype_ == expected, ErrorCode::INTERNAL, "tensor of dtype ", dtype_name(dtype_),
             " accessed as ", dtype_name(expected));
}

}  // namespace nlpf
