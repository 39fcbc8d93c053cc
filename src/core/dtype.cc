// dtype names, sizes and IEEE half conversions (bit-exact, round to nearest even).
#include "core/dtype.h"

#include <cmath>

#include "core/error.h"

namespace nlpf {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return 4;
    case DType::F16:
      return 2;
    case DType::BF16:
      return 2;
    case DType::I32:
      return 4;
    case DType::I64:
      return 8;
    case DType::F8E4M3:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::I32:
      return "i32";
    case DType::I64:
      return "i64";
    case DType::F8E4M3:
      return "f8e4m3";
  }
  return "?";
}

const char* dtype_safetensors_name(DType dtype) {
  switch (dtype) {
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::I32:
      return "I32";
    case DType::I64:
      return "I64";
    case DType::F8E4M3:
      return "F8_E4M3";
  }
  return "?";
}

bool parse_safetensors_dtype(std::string_view name, DType* out) {
  static constexpr DType kAll[] = {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64};
  for (DType d : kAll) {
    if (name == dtype_safetensors_name(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

bool dtype_is_float(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t u;
  if (exponent == 0) {
    if (mantissa == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mantissa <<= 1;
      } while ((mantissa & 0x400u) == 0);
      u = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mantissa & 0x3ffu) << 13;
    }
  } else if (exponent == 0x1f) {
    u = sign | 0x7f800000u | mantissa << 13;
  } else {
    u = sign | (exponent + 127 - 15) << 23 | mantissa << 13;
  }
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow (incl. rounding) -> inf
  if (abs < 0x38800000u) {                                               // subnormal or zero in half
    if (abs < 0x33000000u) return sign;  // below half of the smallest subnormal
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);  // round to nearest even on the 13 dropped bits
  return static_cast<uint16_t>(sign | (((rounded >> 23) - 127 + 15) << 10 | ((rounded >> 13) & 0x3ffu)));
}

void convert_float_buffer(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n) {
  NLPF_CHECK(dtype_is_float(src_dtype) && dtype_is_float(dst_dtype), ErrorCode::INTERNAL,
             "convert_float_buffer: ", dtype_name(src_dtype), " -> ", dtype_name(dst_dtype));
  auto load = [&](int64_t i) -> float {
    switch (src_dtype) {
      case DType::F32:
        return static_cast<const float*>(src)[i];
      case DType::F16:
        return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      default:
        return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
    }
  };
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(i);
    switch (dst_dtype) {
      case DType::F32:
        static_cast<float*>(dst)[i] = v;
        break;
      case DType::F16:
        static_cast<uint16_t*>(dst)[i] = f32_to_f16(v);
        break;
      default:
        static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
        break;
    }
  }
}

}  // namespace nlpf
