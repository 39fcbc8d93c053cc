// UnavailableMeter and choose_meter: which energy source measures a device.
#include "measure/energy_meter.h"

#include "core/error.h"
#include "measure/nvml_meter.h"
#include "measure/rapl_meter.h"

namespace nlpf {

double UnavailableMeter::read_energy_j_locked() {
  NLPF_THROW(ErrorCode::INTERNAL, "energy read on an unavailable meter: ", reason_);
}

std::unique_ptr<EnergyMeter> choose_meter(const DeviceDescription& device) {
  switch (device.device.type) {
    case DeviceType::CUDA:
      return std::make_unique<NvmlMeter>(NvmlDeviceSelector{device.pci_bus_id, device.uuid});
    case DeviceType::CPU:
      return std::make_unique<RaplMeter>();
  }
  return std::make_unique<UnavailableMeter>("no energy source for device type " +
                                            std::to_string(static_cast<int>(device.device.type)));
}

}  // namespace nlpf
