// CUDA device discovery and --device resolution. On a machine without a GPU (or a build without CUDA)
// the GPU checks skip with the reason; resolution errors are checked everywhere.
#include <gtest/gtest.h>

#include <regex>

#include "backend/device.h"
#include "core/error.h"

namespace nlpf {
namespace {

TEST(DeviceCuda, ListsVisibleGpus) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  const std::vector<DeviceDescription> devices = cuda_devices();
  if (devices.empty()) GTEST_SKIP() << "no CUDA device visible";
  for (const DeviceDescription& d : devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_TRUE(std::regex_match(d.pci_bus_id, std::regex("[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\\.[0-9]")))
        << d.pci_bus_id;
    EXPECT_TRUE(std::regex_match(d.uuid, std::regex("GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")))
        << d.uuid;
    EXPECT_GE(d.compute_capability, 70);
    EXPECT_GT(d.total_memory_bytes, size_t{1} << 30);
  }
  EXPECT_EQ(resolve_device("auto").type, DeviceType::CUDA);
  EXPECT_EQ(resolve_device("cuda").index, 0);
  EXPECT_FALSE(cuda_runtime_version().empty());
  EXPECT_FALSE(cuda_driver_version().empty());
}

TEST(DeviceCuda, ResolutionErrorsNameTheOption) {
  EXPECT_EQ(resolve_device("cpu").type, DeviceType::CPU);
  try {
    resolve_device("cuda:99");
    FAIL() << "cuda:99 resolved";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("--device cuda:99"), std::string::npos) << e.what();
  }
  if (cuda_devices().empty()) {
    EXPECT_EQ(resolve_device("auto").type, DeviceType::CPU);
  }
}

}  // namespace
}  // namespace nlpf
