// Conversions between fp32 and the storage dtypes of the kernels (float, __half, __nv_bfloat16), for device
// code: to_float widens exactly; from_float rounds to nearest even, as the host's f32_to_f16 / f32_to_bf16.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"

namespace nlpf::cuda {

template <typename T>
__device__ __forceinline__ float to_float(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else if constexpr (std::is_same_v<T, __half>) {
    return __half2float(v);
  } else {
    return __bfloat162float(v);
  }
}

template <typename T>
__device__ __forceinline__ T from_float(float v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(v);
  } else {
    return __float2bfloat16_rn(v);
  }
}

// f(static_cast<T*>(nullptr)) with T the element type of dtype (float, __nv_bfloat16 or __half): a host-side
// dispatch from a runtime dtype to a kernel's template argument; UNSUPPORTED naming op for another dtype.
template <typename F>
void with_float_type(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32:
      return f(static_cast<float*>(nullptr));
    case DType::BF16:
      return f(static_cast<__nv_bfloat16*>(nullptr));
    case DType::F16:
      return f(static_cast<__half*>(nullptr));
    default:
      NLPF_THROW(ErrorCode::UNSUPPORTED, op, " (cuda): dtype ", dtype_name(dtype),
                 ", expected f32, bf16 or f16");
  }
}

// Host-side checks of the kernels' vector paths: whether p is 16-byte aligned (a float4 load or store), and
// whether p holds whole vectors of 4 elements of `dtype` (16 bytes of f32, 8 of a 16-bit type: store4's
// alignment).
inline bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}
inline bool aligned4(const void* p, DType dtype) {
  return reinterpret_cast<uintptr_t>(p) % (4 * dtype_size(dtype)) == 0;
}

// The four values of v stored at p, rounded to T (nearest even): one 16-byte store for float (p 16-byte
// aligned), one 8-byte store of two pairs for the 16-bit types (p 8-byte aligned).
template <typename T>
__device__ __forceinline__ void store4(T* p, float4 v) {
  if constexpr (std::is_same_v<T, float>) {
    *reinterpret_cast<float4*>(p) = v;
  } else {
    using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    T2 h[2];
    if constexpr (std::is_same_v<T, __half>) {
      h[0] = __floats2half2_rn(v.x, v.y);
      h[1] = __floats2half2_rn(v.z, v.w);
    } else {
      h[0] = __floats2bfloat162_rn(v.x, v.y);
      h[1] = __floats2bfloat162_rn(v.z, v.w);
    }
    uint2 raw;
    memcpy(&raw, h, sizeof raw);  // type punning by memcpy: a pointer cast would break strict aliasing
    *reinterpret_cast<uint2*>(p) = raw;
  }
}

}  // namespace nlpf::cuda
