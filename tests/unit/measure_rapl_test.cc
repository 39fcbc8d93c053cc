// RaplMeter on a fake powercap tree in a temporary folder: two packages with DRAM subzones, a platform
// (psys) zone and an MMIO duplicate that must not be counted, wraparound, and unreadable counters.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "measure/energy_meter.h"
#include "measure/rapl_meter.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;

class MeasureRapl : public ::testing::Test {
 protected:
  static void write(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  fs::path zone(const std::string& relative, const std::string& name, uint64_t energy_uj, uint64_t max_uj) {
    const fs::path dir = root_ / relative;
    write(dir / "name", name + "\n");
    write(dir / "energy_uj", std::to_string(energy_uj) + "\n");
    write(dir / "max_energy_range_uj", std::to_string(max_uj) + "\n");
    return dir;
  }
  void set_energy(const std::string& relative, uint64_t energy_uj) {
    write(root_ / relative / "energy_uj", std::to_string(energy_uj) + "\n");
  }
  // Two packages, each with a core subzone (part of the package, not counted) and a DRAM subzone.
  void two_packages(const std::string& prefix = "intel-rapl") {
    zone(prefix + ":0", "package-0", 1000000, 262143328850);
    zone(prefix + ":0/" + prefix + ":0:0", "core", 500000, 262143328850);
    zone(prefix + ":0/" + prefix + ":0:1", "dram", 200000, 65712999613);
    zone(prefix + ":1", "package-1", 3000000, 262143328850);
    zone(prefix + ":1/" + prefix + ":1:0", "dram", 400000, 65712999613);
  }
  testing_util::TempDir temp_{"measure_rapl"};
  const fs::path root_ = temp_.path();
};

TEST_F(MeasureRapl, SumsPackagesAndDramPerZone) {
  two_packages();
  zone("intel-rapl:2", "psys", 9000000, 262143328850);            // platform: overlaps the packages
  zone("intel-rapl-mmio:0", "package-0", 7000000, 262143328850);  // MMIO duplicate of package-0
  fs::create_directories(root_ / "intel-rapl");                   // the control-type folder itself
  RaplMeter meter(root_);
  ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
  EXPECT_EQ(meter.source(), "rapl");
  EXPECT_DOUBLE_EQ(meter.read_energy_j(), 0.0);
  set_energy("intel-rapl:0", 1000000 + 2500000);               // +2.5 J
  set_energy("intel-rapl:0/intel-rapl:0:0", 900000);           // core: ignored
  set_energy("intel-rapl:0/intel-rapl:0:1", 200000 + 250000);  // +0.25 J
  set_energy("intel-rapl:1", 3000000 + 1000000);               // +1 J
  set_energy("intel-rapl:1/intel-rapl:1:0", 400000 + 125000);  // +0.125 J
  set_energy("intel-rapl:2", 99000000);                        // psys: ignored
  EXPECT_NEAR(meter.read_energy_j(), 3.875, 1e-12);
  const std::vector<RaplZoneEnergy> zones = meter.read_zone_energies();
  ASSERT_EQ(zones.size(), 4u);
  EXPECT_EQ(zones[0].name, "package-0");
  EXPECT_EQ(zones[1].name, "package-0/dram");
  EXPECT_EQ(zones[2].name, "package-1");
  EXPECT_EQ(zones[3].name, "package-1/dram");
  EXPECT_NEAR(zones[0].energy_j, 2.5, 1e-12);
  EXPECT_NEAR(zones[1].energy_j, 0.25, 1e-12);
  EXPECT_NEAR(zones[2].energy_j, 1.0, 1e-12);
  EXPECT_NEAR(zones[3].energy_j, 0.125, 1e-12);
  EXPECT_EQ(meter.describe()["zones"].size(), 4u);
}

TEST_F(MeasureRapl, WraparoundIsFoldedPerZone) {
  zone("intel-rapl:0", "package-0", 999000, 1000000);
  zone("intel-rapl:0/intel-rapl:0:0", "dram", 10, 5000);
  RaplMeter meter(root_);
  ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
  meter.read_energy_j();
  set_energy("intel-rapl:0", 500);                // wrapped: 1000 to the top, then 500
  set_energy("intel-rapl:0/intel-rapl:0:0", 20);  // dram did not wrap: +10
  EXPECT_NEAR(meter.read_energy_j(), 1510e-6, 1e-15);
  set_energy("intel-rapl:0", 2500);              // +2000
  set_energy("intel-rapl:0/intel-rapl:0:0", 5);  // dram wrapped: 4980 + 5
  EXPECT_NEAR(meter.read_energy_j(), (1510.0 + 2000.0 + 4985.0) * 1e-6, 1e-15);
}

TEST_F(MeasureRapl, AmdNamingIsAccepted) {
  two_packages("amd-rapl");
  RaplMeter meter(root_);
  ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
  EXPECT_EQ(meter.read_zone_energies().size(), 4u);
}

TEST_F(MeasureRapl, UnreadableCounterMakesMeterUnavailableNamingTheFile) {
  two_packages();
  // A directory where the counter should be: unreadable for root too (chmod is not).
  const fs::path counter = root_ / "intel-rapl:1/intel-rapl:1:0/energy_uj";
  fs::remove(counter);
  fs::create_directories(counter);
  RaplMeter meter(root_);
  EXPECT_FALSE(meter.available());
  EXPECT_NE(meter.unavailable_reason().find(counter.string()), std::string::npos)
      << meter.unavailable_reason();
  EXPECT_EQ(meter.describe()["available"], false);
  try {
    meter.read_energy_j();
    FAIL() << "read on an unavailable meter must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INTERNAL);
  }
}

TEST_F(MeasureRapl, PermissionDeniedSaysHowToFixIt) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: chmod 000 does not stop root from reading";
  two_packages();
  const fs::path counter = root_ / "intel-rapl:0/energy_uj";
  ASSERT_EQ(::chmod(counter.c_str(), 0), 0);
  RaplMeter meter(root_);
  EXPECT_FALSE(meter.available());
  EXPECT_NE(meter.unavailable_reason().find("permission denied reading " + counter.string()),
            std::string::npos)
      << meter.unavailable_reason();
  EXPECT_NE(meter.unavailable_reason().find("run as root or chmod"), std::string::npos);
}

TEST_F(MeasureRapl, MalformedCounterNamesTheFile) {
  two_packages();
  write(root_ / "intel-rapl:0/energy_uj", "12abc\n");
  RaplMeter meter(root_);
  EXPECT_FALSE(meter.available());
  EXPECT_NE(meter.unavailable_reason().find((root_ / "intel-rapl:0/energy_uj").string()), std::string::npos)
      << meter.unavailable_reason();
}

TEST_F(MeasureRapl, CounterLostAfterStartThrowsIoNamingTheFile) {
  two_packages();
  RaplMeter meter(root_);
  ASSERT_TRUE(meter.available()) << meter.unavailable_reason();
  const fs::path counter = root_ / "intel-rapl:1/energy_uj";
  fs::remove(counter);
  try {
    meter.read_energy_j();
    FAIL() << "expected Error(IO)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::IO);
    EXPECT_NE(std::string(e.what()).find(counter.string()), std::string::npos) << e.what();
  }
}

TEST_F(MeasureRapl, NoZonesOrNoRootIsUnavailableWithReason) {
  RaplMeter empty(root_);
  EXPECT_FALSE(empty.available());
  EXPECT_NE(empty.unavailable_reason().find("no RAPL package zones"), std::string::npos);
  EXPECT_NE(empty.unavailable_reason().find(root_.string()), std::string::npos);
  RaplMeter missing(root_ / "absent");
  EXPECT_FALSE(missing.available());
  EXPECT_NE(missing.unavailable_reason().find((root_ / "absent").string()), std::string::npos);
}

TEST_F(MeasureRapl, ChooseMeterGivesRaplForTheCpu) {
  const std::unique_ptr<EnergyMeter> meter = choose_meter(DeviceDescription{});
  EXPECT_EQ(meter->source(), "rapl");
  // On this machine it may or may not be readable; either way the answer is explained.
  if (!meter->available()) {
    EXPECT_FALSE(meter->unavailable_reason().empty());
  }
}

}  // namespace
}  // namespace nlpf
