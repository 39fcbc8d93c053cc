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

Buffer::Buffer(Allocator& allocator, size_t bytes)
    : allocator_(allocator), bytes_(bytes), data_(allocator.allocate(bytes)) {}

Buffer::~Buffer() {
  allocator_.deallocate(data_, bytes_);
}

Tensor Tensor::empty(DType dtype, Shape shape, Allocator& allocator) {
  Tensor t;
  t.dtype_ = dtype;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.buffer_ = std::make_shared<Buffer>(allocator, t.nbytes());
  return t;
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  return empty(dtype, std::move(shape), host_allocator());
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  if (t.nbytes() > 0) std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::clone() const {
  check_host("clone");
  Tensor t = empty(dtype_, shape_);
  if (nbytes() > 0) std::memcpy(t.raw_data(), raw_data(), nbytes());
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  check_host("to");
  Tensor t = empty(dtype, shape_);
  convert_float_buffer(raw_data(), dtype_, t.raw_data(), dtype, numel_);
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, size_t byte_offset) const {
  Tensor t;
  t.dtype_ = dtype;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  NLPF_CHECK(byte_offset + t.nbytes() <= nbytes(), ErrorCode::INVALID_ARGUMENT, "view ",
             shape_string(t.shape_), " ", dtype_name(dtype), " at byte ", byte_offset, " reaches past the ",
             nbytes(), " bytes of a ", shape_string(shape_), " ", dtype_name(dtype_), " tensor");
  NLPF_CHECK((offset_ + byte_offset) % dtype_size(dtype) == 0, ErrorCode::INVALID_ARGUMENT, "view at byte ",
             offset_ + byte_offset, " is not aligned for ", dtype_name(dtype));
  t.buffer_ = buffer_;
  t.offset_ = offset_ + byte_offset;
  return t;
}

void Tensor::check_host(const char* what) const {
  NLPF_CHECK(device().type == DeviceType::CPU, ErrorCode::INTERNAL, "Tensor::", what,
             " reads host memory, but this tensor is on a CUDA device (copy it with backend/copy.h)");
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
