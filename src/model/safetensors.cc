// safetensors parsing (from memory or a read-only memory map) and streaming writes. The checks mirror the
// Rust crate's Metadata::validate: known dtype, byte size == numel * element size, offsets tiling the data
// section from 0 to its end, header <= 100 MB starting with '{'; duplicates are refused outright.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace nlpf {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied without byte swapping");

namespace {

using nlohmann::json;

// Element sizes in bits of every dtype the format defines (so files holding tensors we do not use still
// validate); the ones we can hold in a Tensor are those parse_safetensors_dtype knows.
std::optional<uint64_t> safetensors_dtype_bits(const std::string& name) {
  static const std::pair<const char*, uint64_t> kBits[] = {
      {"BOOL", 8}, {"U8", 8},   {"I8", 8},    {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},
      {"U16", 16}, {"F16", 16}, {"BF16", 16}, {"I32", 32},    {"U32", 32},    {"F32", 32},    {"F64", 64},
      {"I64", 64}, {"U64", 64}, {"C64", 64},  {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6},
  };
  for (const auto& [dtype, bits] : kBits) {
    if (name == dtype) return bits;
  }
  return std::nullopt;
}

std::string short_json(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> as_index(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0)
    return static_cast<uint64_t>(value.get<int64_t>());
  return std::nullopt;
}

SafetensorsEntry parse_entry(const std::string& name, const json& info, const std::string& source) {
  const std::string where = source + ": tensor \"" + name + "\"";
  NLPF_CHECK(info.is_object(), ErrorCode::INVALID_ARGUMENT, where, ": header entry must be an object, got ",
             short_json(info));
  SafetensorsEntry entry;
  entry.name = name;
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    NLPF_CHECK(info.contains(field), ErrorCode::INVALID_ARGUMENT, where, ": header entry has no \"", field,
               "\"");
  }
  const json& dtype = info["dtype"];
  NLPF_CHECK(dtype.is_string(), ErrorCode::INVALID_ARGUMENT, where, ": dtype must be a string, got ",
             short_json(dtype));
  entry.dtype_name = dtype.get<std::string>();
  const std::optional<uint64_t> bits = safetensors_dtype_bits(entry.dtype_name);
  NLPF_CHECK(bits.has_value(), ErrorCode::INVALID_ARGUMENT, where, ": unknown dtype \"", entry.dtype_name,
             "\"");
  DType parsed;
  if (parse_safetensors_dtype(entry.dtype_name, &parsed)) entry.dtype = parsed;

  const json& shape = info["shape"];
  NLPF_CHECK(shape.is_array(), ErrorCode::INVALID_ARGUMENT, where, ": shape must be a list, got ",
             short_json(shape));
  uint64_t numel = 1;
  bool overflow = false, zero = false;
  for (const json& dim : shape) {
    const std::optional<uint64_t> d = as_index(dim);
    NLPF_CHECK(d.has_value() && *d <= static_cast<uint64_t>(INT64_MAX), ErrorCode::INVALID_ARGUMENT, where,
               ": shape ", short_json(shape), " must hold non-negative integers");
    entry.shape.push_back(static_cast<int64_t>(*d));
    if (*d == 0)
      zero = true;
    else if (numel > UINT64_MAX / *d)
      overflow = true;
    else
      numel *= *d;
  }
  // A zero dimension makes the tensor empty whatever the other dimensions are.
  if (zero) {
    overflow = false;
    numel = 0;
  }
  NLPF_CHECK(!overflow && numel <= UINT64_MAX / *bits, ErrorCode::INVALID_ARGUMENT, where, ": shape ",
             short_json(shape), " has too many elements");
  const uint64_t nbits = numel * *bits;
  NLPF_CHECK(nbits % 8 == 0, ErrorCode::INVALID_ARGUMENT, where, ": ", numel, " elements of ",
             entry.dtype_name, " do not fill whole bytes");

  const json& offsets = info["data_offsets"];
  const bool pair = offsets.is_array() && offsets.size() == 2;
  const std::optional<uint64_t> begin = pair ? as_index(offsets[0]) : std::nullopt;
  const std::optional<uint64_t> end = pair ? as_index(offsets[1]) : std::nullopt;
  NLPF_CHECK(begin && end && *begin <= *end, ErrorCode::INVALID_ARGUMENT, where,
             ": data_offsets must be two ascending non-negative integers [begin, end], got ",
             short_json(offsets));
  entry.begin = *begin;
  entry.end = *end;
  NLPF_CHECK(entry.end - entry.begin == nbits / 8, ErrorCode::INVALID_ARGUMENT, where, ": data_offsets [",
             entry.begin, ", ", entry.end, "] hold ", entry.end - entry.begin, " bytes but shape ",
             short_json(shape), " of ", entry.dtype_name, " needs ", nbits / 8);
  return entry;
}

// A read-only memory map of a whole file, unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    NLPF_CHECK(fd >= 0, ErrorCode::IO, path.string(), ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int saved = errno;
      ::close(fd);
      NLPF_THROW(ErrorCode::IO, path.string(), ": not a regular file",
                 S_ISDIR(st.st_mode) ? " (a directory)" : "",
                 saved ? std::string(": ") + std::strerror(saved) : "");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      const int saved = errno;
      ::close(fd);
      NLPF_CHECK(data != MAP_FAILED, ErrorCode::IO, path.string(), ": cannot map: ", std::strerror(saved));
      data_ = static_cast<const uint8_t*>(data);
      ::madvise(data, size_, MADV_SEQUENTIAL);
    } else {
      ::close(fd);
    }
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Removes a temporary file unless released (the final name only ever holds a complete file).
class TempFileGuard {
 public:
  explicit TempFileGuard(std::filesystem::path path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (file_ != nullptr) std::fclose(file_);
    if (!released_) std::remove(path_.c_str());
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  FILE* file_ = nullptr;
  bool released_ = false;

 private:
  std::filesystem::path path_;
};

}  // namespace

const SafetensorsEntry* SafetensorsHeader::find(const std::string& name) const {
  for (const SafetensorsEntry& entry : entries) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size, const std::string& source) {
  NLPF_CHECK(size >= 8, ErrorCode::INVALID_ARGUMENT, source, ": ", size,
             " bytes, shorter than the 8-byte header length of a safetensors file");
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes, 8);
  NLPF_CHECK(header_bytes <= kSafetensorsMaxHeaderBytes, ErrorCode::INVALID_ARGUMENT, source,
             ": header length ", header_bytes, " exceeds the limit of ", kSafetensorsMaxHeaderBytes,
             " bytes (not a safetensors file?)");
  NLPF_CHECK(header_bytes <= size - 8, ErrorCode::INVALID_ARGUMENT, source, ": header length ", header_bytes,
             " runs past the end of the file (", size, " bytes)");
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  NLPF_CHECK(header_bytes > 0 && text[0] == '{', ErrorCode::INVALID_ARGUMENT, source,
             ": header does not start with '{' (not a safetensors file?)");

  // Duplicate top-level keys would be silently merged by the JSON library; the callback sees them first.
  std::set<std::string> seen;
  std::string duplicate;
  const json::parser_callback_t on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !seen.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + header_bytes, on_event);
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, source, ": header is not valid JSON: ", e.what());
  }
  NLPF_CHECK(header.is_object(), ErrorCode::INVALID_ARGUMENT, source, ": header must be a JSON object");
  NLPF_CHECK(duplicate.empty(), ErrorCode::INVALID_ARGUMENT, source, ": tensor \"", duplicate,
             "\" appears twice in the header");

  SafetensorsHeader out;
  out.data_start = 8 + header_bytes;
  const uint64_t data_bytes = size - out.data_start;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (info.is_null()) continue;
      NLPF_CHECK(info.is_object(), ErrorCode::INVALID_ARGUMENT, source,
                 ": __metadata__ must be an object of strings, got ", short_json(info));
      for (const auto& [key, value] : info.items()) {
        NLPF_CHECK(value.is_string(), ErrorCode::INVALID_ARGUMENT, source, ": __metadata__[\"", key,
                   "\"] must be a string, got ", short_json(value));
        out.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    SafetensorsEntry entry = parse_entry(name, info, source);
    NLPF_CHECK(entry.end <= data_bytes, ErrorCode::INVALID_ARGUMENT, source, ": tensor \"", name,
               "\": data_offsets [", entry.begin, ", ", entry.end, "] end beyond the data section (",
               data_bytes, " bytes)");
    out.entries.push_back(std::move(entry));
  }
  std::sort(out.entries.begin(), out.entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& entry : out.entries) {
    NLPF_CHECK(entry.begin >= cursor, ErrorCode::INVALID_ARGUMENT, source, ": tensor \"", entry.name, "\" [",
               entry.begin, ", ", entry.end, ") overlaps tensor \"", previous ? previous->name : "", "\" [",
               previous ? previous->begin : 0, ", ", cursor, ")");
    NLPF_CHECK(entry.begin == cursor, ErrorCode::INVALID_ARGUMENT, source, ": ", entry.begin - cursor,
               " unused bytes in the data section before tensor \"", entry.name, "\" (offset ", cursor, ")");
    cursor = entry.end;
    previous = &entry;
  }
  NLPF_CHECK(cursor == data_bytes, ErrorCode::INVALID_ARGUMENT, source, ": ", data_bytes - cursor,
             " bytes after the last tensor (the data section must end where the tensors do)");
  return out;
}

SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& source,
                                  const SafetensorsFilter& filter) {
  SafetensorsHeader header = parse_safetensors_header(bytes, size, source);
  SafetensorsFile out;
  out.metadata = std::move(header.metadata);
  for (const SafetensorsEntry& entry : header.entries) {
    if (filter && !filter(entry.name)) continue;
    NLPF_CHECK(entry.dtype.has_value(), ErrorCode::UNSUPPORTED, source, ": tensor \"", entry.name,
               "\" has dtype ", entry.dtype_name, "; only F32, F16, BF16, I32 and I64 are read");
    Tensor tensor = Tensor::empty(*entry.dtype, entry.shape);
    if (tensor.nbytes() > 0) {
      std::memcpy(tensor.raw_data(), bytes + header.data_start + entry.begin, tensor.nbytes());
    }
    out.tensors.emplace(entry.name, std::move(tensor));
  }
  return out;
}

SafetensorsFile read_safetensors(const std::filesystem::path& path, const SafetensorsFilter& filter) {
  const MappedFile file(path);
  return parse_safetensors(file.data(), file.size(), path.string(), filter);
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const MappedFile file(path);
  return parse_safetensors_header(file.data(), file.size(), path.string());
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const std::pair<std::string, Tensor>*> order;
  std::set<std::string> names;
  for (const auto& item : tensors) {
    const auto& [name, tensor] = item;
    NLPF_CHECK(!name.empty() && name != "__metadata__", ErrorCode::INVALID_ARGUMENT, path.string(),
               ": invalid tensor name \"", name, "\"");
    NLPF_CHECK(names.insert(name).second, ErrorCode::INVALID_ARGUMENT, path.string(), ": tensor \"", name,
               "\" given twice");
    NLPF_CHECK(tensor.defined() && tensor.device().type == DeviceType::CPU, ErrorCode::INVALID_ARGUMENT,
               path.string(), ": tensor \"", name, "\" must be a defined host tensor");
    order.push_back(&item);
  }
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    const size_t size_a = dtype_size(a->second.dtype()), size_b = dtype_size(b->second.dtype());
    return size_a != size_b ? size_a > size_b : a->first < b->first;
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto* item : order) {
    const Tensor& tensor = item->second;
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_safetensors_name(tensor.dtype());
    entry["shape"] = tensor.shape();
    entry["data_offsets"] = {offset, offset + tensor.nbytes()};
    header[item->first] = std::move(entry);
    offset += tensor.nbytes();
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, path.string(),
               ": tensor names and metadata must be UTF-8: ", e.what());
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_bytes = header_text.size();

  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  TempFileGuard guard(tmp);
  guard.file_ = std::fopen(tmp.c_str(), "wb");
  NLPF_CHECK(guard.file_ != nullptr, ErrorCode::IO, path.string(), ": cannot write: ", std::strerror(errno));
  bool ok = std::fwrite(&header_bytes, 8, 1, guard.file_) == 1 &&
            std::fwrite(header_text.data(), 1, header_text.size(), guard.file_) == header_text.size();
  for (const auto* item : order) {
    const Tensor& tensor = item->second;
    if (!ok) break;
    if (tensor.nbytes() > 0)
      ok = std::fwrite(tensor.raw_data(), 1, tensor.nbytes(), guard.file_) == tensor.nbytes();
  }
  ok = ok && std::fflush(guard.file_) == 0 && ::fsync(::fileno(guard.file_)) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(guard.file_) == 0;
  guard.file_ = nullptr;
  NLPF_CHECK(ok && closed, ErrorCode::IO, path.string(), ": write failed: ", std::strerror(saved_errno));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  NLPF_CHECK(!ec, ErrorCode::IO, path.string(), ": cannot rename into place: ", ec.message());
  guard.released_ = true;
}

}  // namespace nlpf
