// safetensors: round trips of every dtype, the canonical layout of written files, the committed fixture,
// and every malformed-file check (each error must carry its code and name the file).
#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;

using testing_util::TempDir;

std::string file_bytes(uint64_t header_length, const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  std::memcpy(out.data(), &header_length, 8);
  return out + header + data;
}

// A file with a correct length prefix (header padded as the Rust crate pads it).
std::string file_bytes(std::string header, const std::string& data = "") {
  header.append((8 - header.size() % 8) % 8, ' ');
  return file_bytes(header.size(), header, data);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

Tensor iota(DType dtype, Shape shape) {
  Tensor t = Tensor::empty(dtype, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (dtype) {
      case DType::F32:
        t.data<float>()[i] = 0.25f * static_cast<float>(i) - 1.0f;
        break;
      case DType::F16:
        t.data_u16()[i] = f32_to_f16(0.5f * static_cast<float>(i));
        break;
      case DType::BF16:
        t.data_u16()[i] = f32_to_bf16(-0.5f * static_cast<float>(i));
        break;
      case DType::I32:
        t.data<int32_t>()[i] = static_cast<int32_t>(i * 7 - 3);
        break;
      case DType::I64:
        t.data<int64_t>()[i] = static_cast<int64_t>(i) * 10000000000ll;
        break;
      case DType::F8E4M3:  // codes, not values: any byte pattern but NaN's
        static_cast<uint8_t*>(t.raw_data())[i] = static_cast<uint8_t>(i % 0x7F);
        break;
    }
  }
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Parses `bytes` from memory and from a file; both must fail with `code`, the file's error naming it.
void expect_bad(const std::string& bytes, ErrorCode code, const std::string& part) {
  try {
    parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.safetensors");
    ADD_FAILURE() << "expected an Error (" << part << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find("mem.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
        << "wanted '" << part << "' in: " << e.what();
  }
  TempDir dir;
  const fs::path path = dir.path() / "bad.safetensors";
  write_bytes(path, bytes);
  try {
    read_safetensors(path);
    ADD_FAILURE() << "expected an Error (" << part << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  TempDir dir;
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"z.f16", iota(DType::F16, {3, 5})}, {"a.f32", iota(DType::F32, {2, 3, 4})},
      {"m.bf16", iota(DType::BF16, {7})},  {"i32", iota(DType::I32, {3})},
      {"i64", iota(DType::I64, {1, 2})},   {"empty", iota(DType::F32, {0, 4})},
      {"scalar", iota(DType::F32, {})},
  };
  const fs::path path = dir.path() / "t.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});
  const SafetensorsFile file = read_safetensors(path);
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}}));
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    ASSERT_TRUE(file.tensors.contains(name)) << name;
    EXPECT_TRUE(same_bits(file.tensors.at(name), tensor)) << name;
  }
  EXPECT_FALSE(fs::exists(path.string() + ".tmp-" + std::to_string(::getpid())));
}

TEST(Safetensors, WritesTheRustCrateLayout) {
  TempDir dir;
  const fs::path path = dir.path() / "t.safetensors";
  write_safetensors(path,
                    {{"b", iota(DType::F16, {3})},
                     {"a", iota(DType::F32, {1})},
                     {"c", iota(DType::I64, {1})},
                     {"d", iota(DType::F16, {1})}},
                    {{"format", "pt"}});
  const SafetensorsHeader header = read_safetensors_header(path);
  EXPECT_EQ(header.data_start % 8, 0u);
  std::vector<std::string> order;
  for (const SafetensorsEntry& e : header.entries) {
    order.push_back(e.name);
    EXPECT_EQ(e.begin % dtype_size(*e.dtype), 0u) << e.name << " is not aligned to its element size";
  }
  EXPECT_EQ(order, (std::vector<std::string>{"c", "a", "b", "d"}));  // element size, then name
  std::ifstream in(path, std::ios::binary);
  std::string text(header.data_start, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  EXPECT_EQ(text.substr(8, 16), "{\"__metadata__\":");
  EXPECT_EQ(text.back(), ' ');  // padded (this header is not a multiple of 8 unpadded)
}

TEST(Safetensors, ReadsTheCommittedFixtureAndFilters) {
  const fs::path path = fs::path(NLPF_TEST_DATA) / "checkpoint/tiny/model.safetensors";
  if (!fs::exists(path)) GTEST_SKIP() << path << " missing";
  const SafetensorsFile file = read_safetensors(path);
  EXPECT_EQ(file.tensors.size(), 41u);
  EXPECT_EQ(file.metadata.at("format"), "pt");
  const Tensor& w = file.tensors.at("bert.embeddings.word_embeddings.weight");
  EXPECT_EQ(w.dtype(), DType::F32);
  EXPECT_EQ(w.shape(), (Shape{32, 8}));
  const SafetensorsFile some =
      read_safetensors(path, [](const std::string& n) { return n.starts_with("classifier."); });
  EXPECT_EQ(some.tensors.size(), 2u);
  EXPECT_TRUE(same_bits(some.tensors.at("classifier.weight"), file.tensors.at("classifier.weight")));
}

TEST(Safetensors, MemoryAndFileParsesAgree) {
  TempDir dir;
  const fs::path path = dir.path() / "t.safetensors";
  write_safetensors(path, {{"x", iota(DType::F32, {4, 4})}});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const SafetensorsFile mem =
      parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m");
  EXPECT_TRUE(same_bits(mem.tensors.at("x"), read_safetensors(path).tensors.at("x")));
}

TEST(Safetensors, AcceptsEmptyFileAndUnusedDtypesWhenFiltered) {
  EXPECT_TRUE(
      parse_safetensors(reinterpret_cast<const uint8_t*>(file_bytes("{}").data()), 16, "m").tensors.empty());
  const std::string bytes = file_bytes(
      R"({"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"f":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})",
      std::string("\x01\x02\x03\x00\x00\x80\x3f", 7));
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const SafetensorsFile f =
      parse_safetensors(data, bytes.size(), "m", [](const std::string& n) { return n == "f"; });
  EXPECT_EQ(f.tensors.at("f").data<float>()[0], 1.0f);  // unaligned data offsets are legal
  try {
    parse_safetensors(data, bytes.size(), "u8.safetensors");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("u8.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("U8"), std::string::npos) << e.what();
  }
}

const std::string kFourFloats(16, '\0');

std::string one_tensor(const std::string& info, const std::string& data = kFourFloats) {
  return file_bytes("{\"t\":" + info + "}", data);
}

TEST(SafetensorsBad, ShortFileAndHeaderLength) {
  expect_bad("", ErrorCode::INVALID_ARGUMENT, "shorter than");
  expect_bad("\x08\x00\x00", ErrorCode::INVALID_ARGUMENT, "shorter than");
  expect_bad(file_bytes(1000, "{}      "), ErrorCode::INVALID_ARGUMENT, "past the end");
  expect_bad(file_bytes(200'000'000, "{}      "), ErrorCode::INVALID_ARGUMENT, "exceeds the limit");
  expect_bad(file_bytes(UINT64_MAX, "{}      "), ErrorCode::INVALID_ARGUMENT, "exceeds the limit");
  expect_bad(file_bytes(0, ""), ErrorCode::INVALID_ARGUMENT, "start with '{'");
}

TEST(SafetensorsBad, HeaderNotJsonOrNotObject) {
  expect_bad(file_bytes("{\"t\": {"), ErrorCode::INVALID_ARGUMENT, "not valid JSON");
  expect_bad(file_bytes("[1, 2]"), ErrorCode::INVALID_ARGUMENT, "start with '{'");
  expect_bad(file_bytes("{} {}"), ErrorCode::INVALID_ARGUMENT, "not valid JSON");
  expect_bad(file_bytes("{\"t\": \"\xff\xfe\"}"), ErrorCode::INVALID_ARGUMENT,
             "not valid JSON");  // not UTF-8
  expect_bad(one_tensor("[1]"), ErrorCode::INVALID_ARGUMENT, "must be an object");
  expect_bad(file_bytes(R"({"__metadata__":{"format":1}})"), ErrorCode::INVALID_ARGUMENT, "__metadata__");
  expect_bad(file_bytes(R"({"__metadata__":[1]})"), ErrorCode::INVALID_ARGUMENT, "__metadata__");
}

TEST(SafetensorsBad, EntryFields) {
  expect_bad(one_tensor(R"({"shape":[4],"data_offsets":[0,16]})"), ErrorCode::INVALID_ARGUMENT,
             "no \"dtype\"");
  expect_bad(one_tensor(R"({"dtype":"F32","data_offsets":[0,16]})"), ErrorCode::INVALID_ARGUMENT,
             "no \"shape\"");
  expect_bad(one_tensor(R"({"dtype":"F32","shape":[4]})"), ErrorCode::INVALID_ARGUMENT,
             "no \"data_offsets\"");
  expect_bad(one_tensor(R"({"dtype":"F33","shape":[4],"data_offsets":[0,16]})"), ErrorCode::INVALID_ARGUMENT,
             "unknown dtype \"F33\"");
  expect_bad(one_tensor(R"({"dtype":7,"shape":[4],"data_offsets":[0,16]})"), ErrorCode::INVALID_ARGUMENT,
             "dtype");
  expect_bad(one_tensor(R"({"dtype":"F32","shape":[-4],"data_offsets":[0,16]})"), ErrorCode::INVALID_ARGUMENT,
             "non-negative integers");
  expect_bad(one_tensor(R"({"dtype":"F32","shape":[4.0],"data_offsets":[0,16]})"),
             ErrorCode::INVALID_ARGUMENT, "non-negative integers");
  expect_bad(one_tensor(R"({"dtype":"F32","shape":4,"data_offsets":[0,16]})"), ErrorCode::INVALID_ARGUMENT,
             "shape");
  expect_bad(
      one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]})"),
      ErrorCode::INVALID_ARGUMENT, "too many elements");
}

TEST(SafetensorsBad, Offsets) {
  for (const char* offsets : {"[16,0]", "[0]", "[0,16,16]", "[\"0\",16]", "[-1,15]", "[0.0,16]", "{}"}) {
    expect_bad(one_tensor(std::string(R"({"dtype":"F32","shape":[4],"data_offsets":)") + offsets + "}"),
               ErrorCode::INVALID_ARGUMENT, "two ascending");
  }
  expect_bad(one_tensor(R"({"dtype":"F32","shape":[4],"data_offsets":[8,24]})"), ErrorCode::INVALID_ARGUMENT,
             "beyond the data section");
  expect_bad(one_tensor(R"({"dtype":"F32","shape":[3],"data_offsets":[0,16]})"), ErrorCode::INVALID_ARGUMENT,
             "needs 12");
  expect_bad(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), ErrorCode::INVALID_ARGUMENT,
             "8 bytes after the last tensor");
  expect_bad(one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})"), ErrorCode::INVALID_ARGUMENT,
             "unused bytes");
}

TEST(SafetensorsBad, OverlapsAndDuplicates) {
  expect_bad(file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        kFourFloats),
             ErrorCode::INVALID_ARGUMENT, "overlaps");
  expect_bad(file_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                        kFourFloats),
             ErrorCode::INVALID_ARGUMENT, "overlaps");
  expect_bad(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        kFourFloats),
             ErrorCode::INVALID_ARGUMENT, "appears twice");
}

TEST(SafetensorsBad, TruncatedRealFile) {
  TempDir dir;
  const fs::path path = dir.path() / "t.safetensors";
  write_safetensors(path, {{"x", iota(DType::F32, {64})}});
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  expect_bad(bytes.substr(0, bytes.size() - 1), ErrorCode::INVALID_ARGUMENT, "beyond the data section");
  expect_bad(bytes.substr(0, 20), ErrorCode::INVALID_ARGUMENT, "past the end");
}

TEST(SafetensorsBad, UnreadablePaths) {
  TempDir dir;
  for (const fs::path& path : {dir.path() / "missing.safetensors", dir.path()}) {
    try {
      read_safetensors(path);
      ADD_FAILURE() << "expected an Error for " << path;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::IO) << e.what();
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
}

TEST(SafetensorsWrite, RefusesBadInputAndLeavesNoFile) {
  TempDir dir;
  const fs::path path = dir.path() / "t.safetensors";
  const std::vector<std::vector<std::pair<std::string, Tensor>>> bad = {
      {{"x", iota(DType::F32, {2})}, {"x", iota(DType::F32, {2})}},
      {{"", iota(DType::F32, {2})}},
      {{"__metadata__", iota(DType::F32, {2})}},
  };
  for (const auto& tensors : bad) {
    try {
      write_safetensors(path, tensors);
      ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
  const fs::path unwritable = dir.path() / "no_such_dir" / "t.safetensors";
  try {
    write_safetensors(unwritable, {{"x", iota(DType::F32, {2})}});
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::IO) << e.what();
    EXPECT_NE(std::string(e.what()).find(unwritable.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
}  // namespace nlpf
