// The weights of the base_slice fixture (tests/data/model/base_slice), generated instead of committed: the
// formula of formula_weights in tools/dump_hf_model_goldens.py, reproduced bit for bit (splitmix64's output
// function of (parameter index << 32) + element index, folded to 129 levels).
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "model/checkpoint.h"

namespace nlpf::test {

inline uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Parameter number `index` (in bert_parameter_specs order): biases r/4096, LayerNorm weights 1 + r/512, other
// weights r/2048, r in [-64, 64].
inline Tensor formula_weights(uint64_t index, const ParameterSpec& spec) {
  Tensor t = Tensor::empty(DType::F32, spec.shape);
  float* p = t.data<float>();
  const bool bias = spec.name.ends_with(".bias");
  const bool layer_norm = spec.name.find("LayerNorm") != std::string::npos;
  for (int64_t e = 0; e < t.numel(); ++e) {
    const auto r = static_cast<double>(
        static_cast<int64_t>((splitmix64((index << 32) + static_cast<uint64_t>(e)) >> 40) % 129) - 64);
    p[e] = static_cast<float>(bias ? r / 4096.0 : layer_norm ? 1.0 + r / 512.0 : r / 2048.0);
  }
  return t;
}

}  // namespace nlpf::test
