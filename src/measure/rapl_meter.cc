// RaplMeter: zone discovery under the powercap root and per-zone counter folding. The platform zone
// ("psys") and MMIO duplicates (intel-rapl-mmio:N) are skipped: both overlap the package zones and would
// count the same joules twice; core/uncore subzones are parts of their package and are skipped too.
#include "measure/rapl_meter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace nlpf {

namespace fs = std::filesystem;

namespace {

std::string read_failure(int error_number, const fs::path& path) {
  if (error_number == EACCES || error_number == EPERM)
    return "permission denied reading " + path.string() + "; run as root or chmod a+r " + path.string();
  return "cannot read " + path.string() + ": " + std::strerror(error_number);
}

// One unsigned decimal from a sysfs file; nullopt with *error naming the file when it cannot be read.
std::optional<uint64_t> read_counter(const fs::path& path, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = read_failure(errno, path);
    return std::nullopt;
  }
  char buffer[64];
  const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
  const int saved_errno = errno;
  ::close(fd);
  if (n < 0) {
    *error = read_failure(saved_errno, path);
    return std::nullopt;
  }
  buffer[n] = '\0';
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(buffer, &end, 10);
  if (end == buffer || errno != 0 || (*end != '\0' && *end != '\n')) {
    *error = path.string() + ": expected an unsigned integer, got '" +
             std::string(buffer, static_cast<size_t>(n)) + "'";
    return std::nullopt;
  }
  return value;
}

std::string read_zone_name(const fs::path& zone_dir) {
  std::string name;
  const fs::path path = zone_dir / "name";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buffer[128];
    const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    if (n > 0) name.assign(buffer, static_cast<size_t>(n));
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return name.empty() ? zone_dir.filename().string() : name;
}

// True for "<prefix>:<digits>".
bool is_zone_name(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() + 1 || name.compare(0, prefix.size(), prefix) != 0 ||
      name[prefix.size()] != ':')
    return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()) + 1, name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// Entries of `dir` named <prefix>:<digits> for any of the prefixes.
std::vector<fs::path> zone_entries(const fs::path& dir, const std::vector<std::string>& prefixes) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (std::any_of(prefixes.begin(), prefixes.end(),
                    [&](const std::string& p) { return is_zone_name(name, p); }))
      out.push_back(it->path());
  }
  // intel-rapl:10 after intel-rapl:9: order by the numeric suffix, then name.
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    const std::string sa = a.filename().string(), sb = b.filename().string();
    const auto suffix = [](const std::string& s) { return std::atoll(s.substr(s.rfind(':') + 1).c_str()); };
    return std::make_pair(suffix(sa), sa) < std::make_pair(suffix(sb), sb);
  });
  return out;
}

}  // namespace

RaplMeter::RaplMeter(fs::path root) : root_(std::move(root)) {
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) {
    reason_ = "no powercap interface: " + root_.string() + " does not exist (not Linux, or RAPL not exposed)";
    return;
  }
  std::vector<std::pair<std::string, fs::path>> found;  // (name, zone directory)
  for (const fs::path& package_dir : zone_entries(root_, {"intel-rapl", "amd-rapl"})) {
    const std::string package_name = read_zone_name(package_dir);
    if (package_name == "psys") continue;
    found.emplace_back(package_name, package_dir);
    for (const fs::path& sub_dir : zone_entries(package_dir, {package_dir.filename().string()})) {
      if (read_zone_name(sub_dir) == "dram") found.emplace_back(package_name + "/dram", sub_dir);
    }
  }
  if (found.empty()) {
    reason_ = "no RAPL package zones (intel-rapl:N or amd-rapl:N) under " + root_.string();
    return;
  }
  for (const auto& [name, dir] : found) {
    Zone zone;
    zone.name = name;
    zone.energy_path = dir / "energy_uj";
    std::string error;
    const std::optional<uint64_t> range = read_counter(dir / "max_energy_range_uj", &error);
    const std::optional<uint64_t> first = range ? read_counter(zone.energy_path, &error) : std::nullopt;
    if (!first) {
      reason_ = error;
      zones_.clear();
      return;
    }
    zone.max_energy_range_uj = *range;
    zone.last_uj = *first;
    zones_.push_back(std::move(zone));
  }
}

void RaplMeter::update_zones_locked() {
  NLPF_CHECK(available(), ErrorCode::INTERNAL, "RAPL energy read on an unavailable meter: ", reason_);
  for (Zone& zone : zones_) {
    std::string error;
    const std::optional<uint64_t> now = read_counter(zone.energy_path, &error);
    NLPF_CHECK(now.has_value(), ErrorCode::IO, error);
    if (*now >= zone.last_uj) {
      zone.accumulated_uj += *now - zone.last_uj;
    } else if (zone.last_uj <= zone.max_energy_range_uj) {
      // The counter passed max_energy_range_uj and restarted from 0 (every ~60 s per 260 W on Intel).
      zone.accumulated_uj += (zone.max_energy_range_uj - zone.last_uj) + *now;
    } else {
      zone.accumulated_uj += *now;  // out-of-range previous value: treat as a reset
    }
    zone.last_uj = *now;
  }
}

double RaplMeter::read_energy_j_locked() {
  update_zones_locked();
  uint64_t total_uj = 0;
  for (const Zone& zone : zones_) total_uj += zone.accumulated_uj;
  return static_cast<double>(total_uj) * 1e-6;
}

std::vector<RaplZoneEnergy> RaplMeter::read_zone_energies() {
  std::lock_guard<std::mutex> lock(meter_mutex());
  update_zones_locked();
  std::vector<RaplZoneEnergy> out;
  for (const Zone& zone : zones_)
    out.push_back({zone.name, zone.energy_path.string(), static_cast<double>(zone.accumulated_uj) * 1e-6});
  return out;
}

nlohmann::json RaplMeter::describe() const {
  nlohmann::json out = {{"source", "rapl"}, {"available", available()}, {"root", root_.string()}};
  if (!available()) {
    out["reason"] = reason_;
    return out;
  }
  nlohmann::json zones = nlohmann::json::array();
  for (const Zone& zone : zones_)
    zones.push_back({{"name", zone.name},
                     {"path", zone.energy_path.string()},
                     {"max_energy_range_uj", zone.max_energy_range_uj}});
  out["zones"] = std::move(zones);
  return out;
}

}  // namespace nlpf
