// NvmlMeter: GPU energy from NVML's total-energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ, Volta+),
// with libnvidia-ml loaded by dlopen at run time so that nlpf runs where no driver exists. Power for the
// trace comes from the driver's 20 ms sample buffer, else the instantaneous power field; the 1-second
// averaged nvmlDeviceGetPowerUsage is only recorded in describe(), never used for energy (DESIGN §6).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "measure/energy_meter.h"

namespace nlpf {

inline constexpr const char* kNvmlLibraryName = "libnvidia-ml.so.1";

struct NvmlDeviceSelector {
  std::string pci_bus_id;  // preferred: "0000:65:00.0" as cudaDeviceGetPCIBusId gives it
  std::string uuid;        // "GPU-xxxxxxxx-..." when no bus id is known
};

// Per-process GPU memory as NVML reports it (the driver's view, including the CUDA context).
struct NvmlProcessMemory {
  std::optional<uint64_t> used_bytes;  // nullopt: process not listed, or NVML reports "not available"
  std::string reason;                  // why used_bytes is absent
};

struct NvmlMemoryInfo {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t used_bytes = 0;
};

class NvmlMeter : public EnergyMeter {
 public:
  // Never throws for a missing library, a failed nvmlInit, an unknown device or a GPU without an energy
  // counter: the meter is then unavailable with the reason (including nvmlErrorString's text).
  explicit NvmlMeter(NvmlDeviceSelector selector, std::string library_path = kNvmlLibraryName);
  ~NvmlMeter() override;
  NvmlMeter(const NvmlMeter&) = delete;
  NvmlMeter& operator=(const NvmlMeter&) = delete;

  std::string source() const override { return "nvml"; }
  bool available() const override;
  std::string unavailable_reason() const override;
  bool has_power_sample_buffer() const override;
  nlohmann::json describe() const override;

  // Memory NVML attributes to process `pid` on this GPU (nvmlDeviceGetComputeRunningProcesses).
  NvmlProcessMemory process_memory(unsigned int pid) const;
  NvmlMemoryInfo memory_info() const;

 protected:
  double read_energy_j_locked() override;
  std::optional<double> read_power_w_locked() override;
  std::vector<TimedPowerSample> drain_power_samples_locked(uint64_t since_epoch_us) override;
  DeviceState read_device_state_locked() override;

 private:
  struct Library;  // the dlopen'ed function table and device handle (nvml_meter.cc)
  std::unique_ptr<Library> library_;
  std::string reason_;
  bool has_sample_buffer_ = false;
  uint64_t last_sample_epoch_us_ = 0;
  // Counter folding: raw millijoules at the previous read, and millijoules accumulated so far.
  std::optional<unsigned long long> last_raw_mj_;
  unsigned long long accumulated_mj_ = 0;
};

}  // namespace nlpf
