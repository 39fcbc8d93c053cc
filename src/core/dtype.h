// Element types of tensors and their conversions. 16-bit floats are stored as uint16_t bit patterns;
// conversions from float round to nearest even (as PyTorch and safetensors writers do).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace nlpf {

// F8E4M3: one byte per element, the code of core/fp8.h; meaningful only with the scale kept beside it, so it
// is not a "float" dtype here (no scale-less conversion) and not read from checkpoints.
enum class DType { F32, F16, BF16, I32, I64, F8E4M3 };

size_t dtype_size(DType dtype);
// Our name ("f32") and the safetensors name ("F32").
const char* dtype_name(DType dtype);
const char* dtype_safetensors_name(DType dtype);
// Parses a safetensors dtype name; false when it is not one we read.
bool parse_safetensors_dtype(std::string_view name, DType* out);
bool dtype_is_float(DType dtype);
// BF16 or F16: mixed precision's GEMM operands and the 16-bit inference dtypes.
inline bool dtype_is_16bit(DType dtype) {
  return dtype == DType::BF16 || dtype == DType::F16;
}

inline float bf16_to_f32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float f);

// Converts n elements between float types (F32, F16, BF16) on the host.
void convert_float_buffer(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n);

}  // namespace nlpf
