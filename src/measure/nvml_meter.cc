// NvmlMeter through dlopen: the few NVML types and functions we call are declared here by hand (no nvml.h),
// with the values documented in NVML's API reference / nvml.h (checked against the CUDA 12.9 nvml.h).
// Struct layouts are pinned by static_asserts; C enums are int-sized on every ABI we build for.
#include "measure/nvml_meter.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "core/error.h"

namespace nlpf {

namespace {

using nvmlReturn_t = int;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;

constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlErrorNotSupported = 3;
constexpr nvmlReturn_t kNvmlErrorNotFound = 6;
constexpr nvmlReturn_t kNvmlErrorInsufficientSize = 7;

// nvml.h: NVML_FI_DEV_POWER_AVERAGE 185 ("averaged over 1 sec interval, Ampere (except GA100) or newer"),
// NVML_FI_DEV_POWER_INSTANT 186 ("current GPU power, all architectures"); values in milliwatts.
constexpr unsigned int kNvmlFieldPowerAverage = 185;
constexpr unsigned int kNvmlFieldPowerInstant = 186;
constexpr int kNvmlTotalPowerSamples = 0;  // nvmlSamplingType_t NVML_TOTAL_POWER_SAMPLES (milliwatts)
constexpr int kNvmlClockSm = 1;            // nvmlClockType_t NVML_CLOCK_SM
constexpr int kNvmlTemperatureGpu = 0;     // nvmlTemperatureSensors_t NVML_TEMPERATURE_GPU
constexpr int kNvmlFeatureEnabled = 1;     // nvmlEnableState_t NVML_FEATURE_ENABLED
constexpr unsigned long long kNvmlValueNotAvailable = ~0ULL;  // NVML_VALUE_NOT_AVAILABLE
constexpr unsigned int kNvmlNameBufferSize = 96;              // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned int kNvmlDriverVersionBufferSize = 80;     // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE

// nvmlValueType_t
enum NvmlValueType : int {
  NVML_VALUE_DOUBLE = 0,
  NVML_VALUE_UNSIGNED_INT = 1,
  NVML_VALUE_UNSIGNED_LONG = 2,
  NVML_VALUE_UNSIGNED_LONG_LONG = 3,
  NVML_VALUE_SIGNED_LONG_LONG = 4,
  NVML_VALUE_SIGNED_INT = 5,
  NVML_VALUE_UNSIGNED_SHORT = 6,
};

union NvmlValue {  // nvmlValue_t
  double d_val;
  int si_val;
  unsigned int ui_val;
  unsigned long ul_val;
  unsigned long long ull_val;
  long long sll_val;
  unsigned short us_val;
};

struct NvmlFieldValue {  // nvmlFieldValue_t
  unsigned int field_id;
  unsigned int scope_id;  // 0: the GPU alone (not the module)
  long long timestamp_us;
  long long latency_us;
  int value_type;
  nvmlReturn_t nvml_return;
  NvmlValue value;
};

struct NvmlSample {  // nvmlSample_t
  unsigned long long time_stamp_us;
  NvmlValue sample_value;
};

struct NvmlMemory {  // nvmlMemory_t (v1)
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct NvmlProcessInfoV1 {  // nvmlProcessInfo_v1_t, the unversioned nvmlDeviceGetComputeRunningProcesses
  unsigned int pid;
  unsigned long long used_gpu_memory;
};

struct NvmlProcessInfoV2 {  // nvmlProcessInfo_v2_t, nvmlDeviceGetComputeRunningProcesses_v2
  unsigned int pid;
  unsigned long long used_gpu_memory;
  unsigned int gpu_instance_id;
  unsigned int compute_instance_id;
};

static_assert(sizeof(NvmlValue) == 8);
static_assert(sizeof(NvmlFieldValue) == 40);
static_assert(sizeof(NvmlSample) == 16);
static_assert(sizeof(NvmlMemory) == 24);
static_assert(sizeof(NvmlProcessInfoV1) == 16);
static_assert(sizeof(NvmlProcessInfoV2) == 24);

double value_as_double(int type, const NvmlValue& v) {
  switch (type) {
    case NVML_VALUE_DOUBLE:
      return v.d_val;
    case NVML_VALUE_UNSIGNED_INT:
      return static_cast<double>(v.ui_val);
    case NVML_VALUE_UNSIGNED_LONG:
      return static_cast<double>(v.ul_val);
    case NVML_VALUE_UNSIGNED_LONG_LONG:
      return static_cast<double>(v.ull_val);
    case NVML_VALUE_SIGNED_LONG_LONG:
      return static_cast<double>(v.sll_val);
    case NVML_VALUE_SIGNED_INT:
      return static_cast<double>(v.si_val);
    case NVML_VALUE_UNSIGNED_SHORT:
      return static_cast<double>(v.us_val);
    default:
      NLPF_THROW(ErrorCode::NVML, "NVML returned an unknown value type ", type);
  }
}

}  // namespace

struct NvmlMeter::Library {
  void* handle = nullptr;
  bool initialized = false;
  nvmlDevice_t device = nullptr;
  std::string device_label;  // "GPU 0000:65:00.0" for messages

  nvmlReturn_t (*init_v2)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*get_count_v2)(unsigned int*) = nullptr;
  nvmlReturn_t (*get_handle_by_pci_bus_id_v2)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_handle_by_uuid)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_handle_by_index_v2)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*get_driver_version)(char*, unsigned int) = nullptr;
  nvmlReturn_t (*get_total_energy)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*get_power_usage)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*get_field_values)(nvmlDevice_t, int, NvmlFieldValue*) = nullptr;
  nvmlReturn_t (*get_samples)(nvmlDevice_t, int, unsigned long long, int*, unsigned int*,
                              NvmlSample*) = nullptr;
  nvmlReturn_t (*get_clock_info)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*get_temperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*get_clocks_event_reasons)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*get_enforced_power_limit)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*get_persistence_mode)(nvmlDevice_t, int*) = nullptr;
  nvmlReturn_t (*get_processes_v2)(nvmlDevice_t, unsigned int*, NvmlProcessInfoV2*) = nullptr;
  nvmlReturn_t (*get_processes_v1)(nvmlDevice_t, unsigned int*, NvmlProcessInfoV1*) = nullptr;
  nvmlReturn_t (*get_memory_info)(nvmlDevice_t, NvmlMemory*) = nullptr;

  template <typename Fn>
  void bind(Fn& fn, const char* name) {
    fn = reinterpret_cast<Fn>(::dlsym(handle, name));
  }

  std::string error(nvmlReturn_t r) const {
    const char* text = error_string != nullptr ? error_string(r) : nullptr;
    return text != nullptr ? std::string(text) : "NVML error " + std::to_string(r);
  }

  ~Library() {
    if (initialized) shutdown();
    if (handle != nullptr) ::dlclose(handle);
  }
};

NvmlMeter::NvmlMeter(NvmlDeviceSelector selector, std::string library_path)
    : library_(std::make_unique<Library>()) {
  Library& lib = *library_;
  lib.handle = ::dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib.handle == nullptr) {
    const char* detail = ::dlerror();
    reason_ = library_path + " not found (no NVIDIA driver)" +
              (detail != nullptr ? std::string(": ") + detail : "");
    return;
  }
  lib.bind(lib.init_v2, "nvmlInit_v2");
  lib.bind(lib.shutdown, "nvmlShutdown");
  lib.bind(lib.error_string, "nvmlErrorString");
  lib.bind(lib.get_count_v2, "nvmlDeviceGetCount_v2");
  lib.bind(lib.get_handle_by_pci_bus_id_v2, "nvmlDeviceGetHandleByPciBusId_v2");
  lib.bind(lib.get_handle_by_uuid, "nvmlDeviceGetHandleByUUID");
  lib.bind(lib.get_handle_by_index_v2, "nvmlDeviceGetHandleByIndex_v2");
  lib.bind(lib.get_name, "nvmlDeviceGetName");
  lib.bind(lib.get_driver_version, "nvmlSystemGetDriverVersion");
  lib.bind(lib.get_total_energy, "nvmlDeviceGetTotalEnergyConsumption");
  lib.bind(lib.get_power_usage, "nvmlDeviceGetPowerUsage");
  lib.bind(lib.get_field_values, "nvmlDeviceGetFieldValues");
  lib.bind(lib.get_samples, "nvmlDeviceGetSamples");
  lib.bind(lib.get_clock_info, "nvmlDeviceGetClockInfo");
  lib.bind(lib.get_temperature, "nvmlDeviceGetTemperature");
  // Renamed in driver 535 (ThrottleReasons -> ClocksEventReasons); same signature and bits.
  lib.bind(lib.get_clocks_event_reasons, "nvmlDeviceGetCurrentClocksEventReasons");
  if (lib.get_clocks_event_reasons == nullptr)
    lib.bind(lib.get_clocks_event_reasons, "nvmlDeviceGetCurrentClocksThrottleReasons");
  lib.bind(lib.get_enforced_power_limit, "nvmlDeviceGetEnforcedPowerLimit");
  lib.bind(lib.get_persistence_mode, "nvmlDeviceGetPersistenceMode");
  // _v2 rather than _v3: both return nvmlProcessInfo_v2_t-shaped entries in current headers, but some
  // releases' headers appended a field to the _v3 entry, and the entry stride cannot be asked for at run
  // time; _v2's layout never changed. The unversioned call (v1 entries) is the fallback for old drivers.
  lib.bind(lib.get_processes_v2, "nvmlDeviceGetComputeRunningProcesses_v2");
  lib.bind(lib.get_processes_v1, "nvmlDeviceGetComputeRunningProcesses");
  lib.bind(lib.get_memory_info, "nvmlDeviceGetMemoryInfo");

  const std::pair<const void*, const char*> required[] = {
      {reinterpret_cast<const void*>(lib.init_v2), "nvmlInit_v2"},
      {reinterpret_cast<const void*>(lib.shutdown), "nvmlShutdown"},
      {reinterpret_cast<const void*>(lib.error_string), "nvmlErrorString"},
      {reinterpret_cast<const void*>(lib.get_handle_by_pci_bus_id_v2), "nvmlDeviceGetHandleByPciBusId_v2"},
      {reinterpret_cast<const void*>(lib.get_handle_by_uuid), "nvmlDeviceGetHandleByUUID"},
      {reinterpret_cast<const void*>(lib.get_total_energy), "nvmlDeviceGetTotalEnergyConsumption"},
  };
  for (const auto& [fn, name] : required) {
    if (fn == nullptr) {
      reason_ = library_path + " lacks " + name + " (driver too old for energy measurement)";
      return;
    }
  }
  nvmlReturn_t r = lib.init_v2();
  if (r != kNvmlSuccess) {
    reason_ = "nvmlInit_v2 failed: " + lib.error(r);
    return;
  }
  lib.initialized = true;

  if (!selector.pci_bus_id.empty()) {
    lib.device_label = "GPU " + selector.pci_bus_id;
    r = lib.get_handle_by_pci_bus_id_v2(selector.pci_bus_id.c_str(), &lib.device);
  } else if (!selector.uuid.empty()) {
    lib.device_label = "GPU " + selector.uuid;
    r = lib.get_handle_by_uuid(selector.uuid.c_str(), &lib.device);
  } else {
    // CUDA and NVML enumerate GPUs in different orders (CUDA_VISIBLE_DEVICES, FASTEST_FIRST), so an index
    // could silently measure another GPU.
    reason_ = "no PCI bus id or UUID for the CUDA device: NVML cannot be matched to it";
    return;
  }
  if (r != kNvmlSuccess) {
    unsigned int count = 0;
    const bool counted = lib.get_count_v2 != nullptr && lib.get_count_v2(&count) == kNvmlSuccess;
    reason_ = "NVML has no " + lib.device_label + ": " + lib.error(r) +
              (counted ? " (NVML sees " + std::to_string(count) + " GPU(s))" : "");
    return;
  }
  unsigned long long probe_mj = 0;
  r = lib.get_total_energy(lib.device, &probe_mj);
  if (r != kNvmlSuccess) {
    reason_ = "nvmlDeviceGetTotalEnergyConsumption on " + lib.device_label + ": " + lib.error(r) +
              (r == kNvmlErrorNotSupported ? " (the energy counter needs a Volta or newer GPU)" : "");
    return;
  }
  if (lib.get_samples != nullptr) {
    int type = 0;
    unsigned int count = 0;
    r = lib.get_samples(lib.device, kNvmlTotalPowerSamples, 0, &type, &count, nullptr);
    has_sample_buffer_ = (r == kNvmlSuccess || r == kNvmlErrorNotFound);
  }
}

NvmlMeter::~NvmlMeter() = default;

bool NvmlMeter::available() const {
  return reason_.empty();
}
std::string NvmlMeter::unavailable_reason() const {
  return reason_;
}
bool NvmlMeter::has_power_sample_buffer() const {
  return available() && has_sample_buffer_;
}

double NvmlMeter::read_energy_j_locked() {
  NLPF_CHECK(available(), ErrorCode::INTERNAL, "NVML energy read on an unavailable meter: ", reason_);
  const Library& lib = *library_;
  unsigned long long raw_mj = 0;
  const nvmlReturn_t r = lib.get_total_energy(lib.device, &raw_mj);
  NLPF_CHECK(r == kNvmlSuccess, ErrorCode::NVML, "nvmlDeviceGetTotalEnergyConsumption on ", lib.device_label,
             ": ", lib.error(r));
  // The counter counts millijoules since the driver was loaded; a 64-bit counter cannot wrap in practice, so
  // a decrease means the driver reloaded and counting restarted from 0.
  if (last_raw_mj_) accumulated_mj_ += raw_mj >= *last_raw_mj_ ? raw_mj - *last_raw_mj_ : raw_mj;
  last_raw_mj_ = raw_mj;
  return static_cast<double>(accumulated_mj_) * 1e-3;
}

std::optional<double> NvmlMeter::read_power_w_locked() {
  if (!available() || library_->get_field_values == nullptr) return std::nullopt;
  const Library& lib = *library_;
  NvmlFieldValue field{};
  field.field_id = kNvmlFieldPowerInstant;
  const nvmlReturn_t r = lib.get_field_values(lib.device, 1, &field);
  if (r != kNvmlSuccess || field.nvml_return != kNvmlSuccess) return std::nullopt;
  return value_as_double(field.value_type, field.value) * 1e-3;
}

std::vector<TimedPowerSample> NvmlMeter::drain_power_samples_locked(uint64_t since_epoch_us) {
  std::vector<TimedPowerSample> out;
  if (!has_power_sample_buffer()) return out;
  const Library& lib = *library_;
  const unsigned long long last_seen = std::max<uint64_t>(since_epoch_us, last_sample_epoch_us_);
  int type = 0;
  unsigned int count = 0;
  nvmlReturn_t r = lib.get_samples(lib.device, kNvmlTotalPowerSamples, last_seen, &type, &count, nullptr);
  if (r == kNvmlErrorNotFound || (r == kNvmlSuccess && count == 0)) return out;  // nothing new
  NLPF_CHECK(r == kNvmlSuccess, ErrorCode::NVML, "nvmlDeviceGetSamples(TOTAL_POWER_SAMPLES) on ",
             lib.device_label, ": ", lib.error(r));
  std::vector<NvmlSample> samples(count);
  r = lib.get_samples(lib.device, kNvmlTotalPowerSamples, last_seen, &type, &count, samples.data());
  if (r == kNvmlErrorNotFound) return out;
  NLPF_CHECK(r == kNvmlSuccess, ErrorCode::NVML, "nvmlDeviceGetSamples(TOTAL_POWER_SAMPLES) on ",
             lib.device_label, ": ", lib.error(r));
  samples.resize(std::min<size_t>(count, samples.size()));
  for (const NvmlSample& s : samples) {
    if (s.time_stamp_us <= last_seen) continue;
    out.push_back({s.time_stamp_us, value_as_double(type, s.sample_value) * 1e-3});
    last_sample_epoch_us_ = std::max<uint64_t>(last_sample_epoch_us_, s.time_stamp_us);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.epoch_us < b.epoch_us; });
  return out;
}

DeviceState NvmlMeter::read_device_state_locked() {
  DeviceState state;
  if (!available()) return state;
  const Library& lib = *library_;
  // State readings explain numbers but are not numbers we report: a failed read leaves the cell empty.
  unsigned int value = 0;
  if (lib.get_clock_info != nullptr && lib.get_clock_info(lib.device, kNvmlClockSm, &value) == kNvmlSuccess)
    state.sm_clock_mhz = value;
  if (lib.get_temperature != nullptr &&
      lib.get_temperature(lib.device, kNvmlTemperatureGpu, &value) == kNvmlSuccess)
    state.temperature_c = value;
  unsigned long long reasons = 0;
  if (lib.get_clocks_event_reasons != nullptr &&
      lib.get_clocks_event_reasons(lib.device, &reasons) == kNvmlSuccess)
    state.throttle_reasons = reasons;
  return state;
}

nlohmann::json NvmlMeter::describe() const {
  nlohmann::json out = {{"source", "nvml"}, {"available", available()}};
  if (!available()) {
    out["reason"] = reason_;
    return out;
  }
  const Library& lib = *library_;
  out["device"] = lib.device_label;
  char text[kNvmlNameBufferSize] = {};
  if (lib.get_name != nullptr && lib.get_name(lib.device, text, sizeof text) == kNvmlSuccess)
    out["gpu_name"] = text;
  char driver[kNvmlDriverVersionBufferSize] = {};
  if (lib.get_driver_version != nullptr && lib.get_driver_version(driver, sizeof driver) == kNvmlSuccess)
    out["driver_version"] = driver;
  unsigned int milliwatts = 0;
  if (lib.get_enforced_power_limit != nullptr &&
      lib.get_enforced_power_limit(lib.device, &milliwatts) == kNvmlSuccess)
    out["enforced_power_limit_w"] = milliwatts * 1e-3;
  int mode = 0;
  if (lib.get_persistence_mode != nullptr && lib.get_persistence_mode(lib.device, &mode) == kNvmlSuccess)
    out["persistence_mode"] = mode == kNvmlFeatureEnabled ? "enabled" : "disabled";
  unsigned int clock = 0;
  if (lib.get_clock_info != nullptr && lib.get_clock_info(lib.device, kNvmlClockSm, &clock) == kNvmlSuccess)
    out["sm_clock_mhz"] = clock;
  // Recorded for comparison with tools that use it; on Ampere (not A100), Ada and Hopper it is a 1-second
  // average and must never be integrated into energy.
  if (lib.get_power_usage != nullptr && lib.get_power_usage(lib.device, &milliwatts) == kNvmlSuccess)
    out["power_usage_1s_average_w"] = milliwatts * 1e-3;
  if (lib.get_field_values != nullptr) {
    NvmlFieldValue fields[2] = {};
    fields[0].field_id = kNvmlFieldPowerInstant;
    fields[1].field_id = kNvmlFieldPowerAverage;
    if (lib.get_field_values(lib.device, 2, fields) == kNvmlSuccess) {
      if (fields[0].nvml_return == kNvmlSuccess)
        out["power_instant_w"] = value_as_double(fields[0].value_type, fields[0].value) * 1e-3;
      if (fields[1].nvml_return == kNvmlSuccess)
        out["power_average_w"] = value_as_double(fields[1].value_type, fields[1].value) * 1e-3;
    }
  }
  out["power_sample_buffer"] = has_sample_buffer_;
  if (lib.get_memory_info != nullptr) {
    NvmlMemory memory{};
    if (lib.get_memory_info(lib.device, &memory) == kNvmlSuccess)
      out["memory_total_mb"] = static_cast<double>(memory.total) / (1024.0 * 1024.0);
  }
  return out;
}

namespace {

template <typename Info, typename Fn>
NvmlProcessMemory find_process_memory(Fn fn, nvmlDevice_t device, unsigned int pid, const std::string& label,
                                      const std::function<std::string(nvmlReturn_t)>& error) {
  NvmlProcessMemory out;
  unsigned int count = 0;
  nvmlReturn_t r = fn(device, &count, nullptr);
  if (r == kNvmlSuccess && count == 0) {
    out.reason = "no compute process on " + label;
    return out;
  }
  if (r != kNvmlSuccess && r != kNvmlErrorInsufficientSize)
    NLPF_THROW(ErrorCode::NVML, "nvmlDeviceGetComputeRunningProcesses on ", label, ": ", error(r));
  // Processes may start between the two calls: leave room for a few more.
  std::vector<Info> infos(count + 8);
  count = static_cast<unsigned int>(infos.size());
  r = fn(device, &count, infos.data());
  NLPF_CHECK(r == kNvmlSuccess, ErrorCode::NVML, "nvmlDeviceGetComputeRunningProcesses on ", label, ": ",
             error(r));
  for (unsigned int i = 0; i < count && i < infos.size(); ++i) {
    if (infos[i].pid != pid) continue;
    if (infos[i].used_gpu_memory == kNvmlValueNotAvailable) {
      out.reason = "NVML reports the process memory as not available";
    } else {
      out.used_bytes = infos[i].used_gpu_memory;
    }
    return out;
  }
  // In a container NVML lists host pids, which differ from ours.
  out.reason = "process " + std::to_string(pid) + " not listed by NVML on " + label +
               " (a container's pid namespace?)";
  return out;
}

}  // namespace

NvmlProcessMemory NvmlMeter::process_memory(unsigned int pid) const {
  if (!available()) return {std::nullopt, reason_};
  const Library& lib = *library_;
  const auto error = [&lib](nvmlReturn_t r) { return lib.error(r); };
  if (lib.get_processes_v2 != nullptr)
    return find_process_memory<NvmlProcessInfoV2>(lib.get_processes_v2, lib.device, pid, lib.device_label,
                                                  error);
  if (lib.get_processes_v1 != nullptr)
    return find_process_memory<NvmlProcessInfoV1>(lib.get_processes_v1, lib.device, pid, lib.device_label,
                                                  error);
  return {std::nullopt, "this NVML has no nvmlDeviceGetComputeRunningProcesses"};
}

NvmlMemoryInfo NvmlMeter::memory_info() const {
  NLPF_CHECK(available(), ErrorCode::INTERNAL, "NVML memory query on an unavailable meter: ", reason_);
  const Library& lib = *library_;
  NLPF_CHECK(lib.get_memory_info != nullptr, ErrorCode::NVML, "this NVML has no nvmlDeviceGetMemoryInfo");
  NvmlMemory memory{};
  const nvmlReturn_t r = lib.get_memory_info(lib.device, &memory);
  NLPF_CHECK(r == kNvmlSuccess, ErrorCode::NVML, "nvmlDeviceGetMemoryInfo on ", lib.device_label, ": ",
             lib.error(r));
  return {memory.total, memory.free, memory.used};
}

}  // namespace nlpf
