// safetensors reader and writer (https://github.com/huggingface/safetensors): 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
// then the data section. Validation matches the reference Rust crate: the tensors must tile the data
// section exactly (no holes, no overlaps, nothing after the last one). Every error names the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace nlpf {

// Largest header accepted (the Rust crate's MAX_HEADER_SIZE).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// One header entry. `dtype_name` is the file's name ("F32", "U8", ...); `dtype` is set when it is one we
// can hold in a Tensor. Offsets are relative to the start of the data section.
struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;
  std::optional<DType> dtype;
  Shape shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in data order (ascending offsets)
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + N: file offset of the data section

  const SafetensorsEntry* find(const std::string& name) const;
};

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // stored dtype kept; convert with Tensor::to
  std::map<std::string, std::string> metadata;
};

// Which tensors to copy out (all when empty). Entries not selected are validated but not copied, so a
// checkpoint can skip a 90 MB pre-training head or a dtype it does not use.
using SafetensorsFilter = std::function<bool(const std::string& name)>;

// Parses and validates the header of a whole file held in memory (`source` names it in errors).
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& source);
// Parses a whole file held in memory and copies the selected tensors out; the fuzzer's entry point.
// A selected tensor of a dtype we cannot hold (U8, F64, ...) is Error(UNSUPPORTED).
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& source,
                                  const SafetensorsFilter& filter = {});
// Reads a file through a read-only memory map (a 440 MB checkpoint is never held twice).
SafetensorsFile read_safetensors(const std::filesystem::path& path, const SafetensorsFilter& filter = {});
// Only the header (names, dtypes, shapes) of a file.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// Writes host tensors as `path` through a temporary file and a rename, streaming the data (no copy of the
// whole file in memory). The layout is canonical, as the Rust crate writes it: entries ordered by element
// size (largest first, so every tensor is aligned to its element size) then by name; "__metadata__"
// first in the header; header padded with spaces to a multiple of 8. Duplicate or empty names are
// Error(INVALID_ARGUMENT).
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace nlpf
