// RaplMeter: CPU energy from the Linux powercap interface (RAPL): every package zone (intel-rapl:N, or
// amd-rapl:N) plus its DRAM subzone, each an energy_uj counter that wraps at max_energy_range_uj. The
// meter's energy is the sum over zones, each zone's wraparound folded in separately.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "measure/energy_meter.h"

namespace nlpf {

inline constexpr const char* kPowercapRoot = "/sys/class/powercap";

struct RaplZoneEnergy {
  std::string name;       // "package-0", "package-0/dram"
  std::string path;       // the zone's energy_uj
  double energy_j = 0.0;  // cumulative since the meter was made
};

class RaplMeter : public EnergyMeter {
 public:
  // Finds the zones under `root` and reads each once; an unreadable counter (energy_uj is root-only on
  // kernels since 2020) or no zones at all makes the meter unavailable with the reason, naming the file.
  explicit RaplMeter(std::filesystem::path root = kPowercapRoot);

  std::string source() const override { return "rapl"; }
  bool available() const override { return reason_.empty(); }
  std::string unavailable_reason() const override { return reason_; }
  nlohmann::json describe() const override;

  // Cumulative joules per zone (the breakdown of read_energy_j()).
  std::vector<RaplZoneEnergy> read_zone_energies();

 protected:
  double read_energy_j_locked() override;

 private:
  struct Zone {
    std::string name;
    std::filesystem::path energy_path;
    uint64_t max_energy_range_uj = 0;
    uint64_t last_uj = 0;
    uint64_t accumulated_uj = 0;
  };
  void update_zones_locked();

  std::filesystem::path root_;
  std::vector<Zone> zones_;
  std::string reason_;
};

}  // namespace nlpf
