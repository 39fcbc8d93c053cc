"""NVML for the peer scripts: the GPU torch uses, its total-energy counter and the facts DESIGN.md section 6 asks
to record. Shared by peer_gpu_inference.py, peer_finetune_trainer.py and peer_training_step.py.

The handle is the device torch calls cuda:0, matched by UUID, else NVML index 0. pynvml when importable, else
the driver's libnvidia-ml.so.1 through ctypes (no Python package needed on the GPU machine). energy_j reads
nvmlDeviceGetTotalEnergyConsumption: millijoules since the driver loaded (Volta and newer), ~100 ms updates,
so only differences over windows of seconds mean anything. A query the GPU or binding lacks gives None.
"""

import ctypes

NVML_CLOCK_SM = 1  # nvml.h nvmlClockType_t
NVML_TEMPERATURE_GPU = 0  # nvml.h nvmlTemperatureSensors_t


class Nvml:
    """The NVML handle of the GPU torch uses (matched by UUID, else index 0); energy_j reads the total-energy
    counter (mJ since driver load, Volta+); device_info the header fields; state the clocks after a window."""

    def __init__(self, torch):
        self.backend = None
        uuid = getattr(torch.cuda.get_device_properties(0), "uuid", None)
        uuid = None if uuid is None else "GPU-" + str(uuid)
        try:
            import pynvml

            self._init_pynvml(pynvml, uuid)
        except ImportError:
            self._init_ctypes(uuid)

    def _init_pynvml(self, pynvml, uuid):
        self.nvml, self.backend = pynvml, "pynvml"
        pynvml.nvmlInit()
        self.handle = None
        if uuid is not None:
            try:
                self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
            except Exception:  # noqa: BLE001 - no such UUID (or an older torch's uuid format): use index 0
                self.handle = None
        if self.handle is None:
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)

    def _init_ctypes(self, uuid):
        lib = ctypes.CDLL("libnvidia-ml.so.1")
        self.lib, self.backend = lib, "ctypes libnvidia-ml.so.1"
        self._check(lib.nvmlInit_v2(), "nvmlInit_v2")
        self.handle = ctypes.c_void_p()
        if uuid is None or lib.nvmlDeviceGetHandleByUUID(uuid.encode(), ctypes.byref(self.handle)) != 0:
            self._check(lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(0), ctypes.byref(self.handle)),
                        "nvmlDeviceGetHandleByIndex_v2")

    @staticmethod
    def _check(rc, what):
        if rc != 0:
            raise RuntimeError(f"NVML {what} failed with status {rc}")

    # ctypes readers: None where the call fails (an older driver, an unsupported query).
    def _ctypes_string(self, name, with_handle=True):
        buf = ctypes.create_string_buffer(256)
        args = (self.handle, buf, ctypes.c_uint(256)) if with_handle else (buf, ctypes.c_uint(256))
        return buf.value.decode() if getattr(self.lib, name)(*args) == 0 else None

    def _ctypes_number(self, name, *extra, ctype=ctypes.c_uint):
        value = ctype()
        try:
            rc = getattr(self.lib, name)(self.handle, *extra, ctypes.byref(value))
        except AttributeError:  # the driver's library lacks the symbol
            return None
        return value.value if rc == 0 else None

    def _query(self, name, *extra):
        try:
            value = getattr(self.nvml, name)(self.handle, *extra)
        except (self.nvml.NVMLError, AttributeError):
            return None
        return value.decode() if isinstance(value, bytes) else value

    def energy_j(self):
        if self.backend == "pynvml":
            return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0
        mj = ctypes.c_ulonglong()
        self._check(self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(mj)),
                    "nvmlDeviceGetTotalEnergyConsumption")
        return mj.value / 1000.0

    def device_info(self):
        if self.backend == "pynvml":
            driver = self.nvml.nvmlSystemGetDriverVersion()
            info = {"gpu": self._query("nvmlDeviceGetName"), "gpu_uuid": self._query("nvmlDeviceGetUUID"),
                    "driver": driver.decode() if isinstance(driver, bytes) else driver,
                    "power_limit_mw": self._query("nvmlDeviceGetEnforcedPowerLimit"),
                    "persistence_mode": self._query("nvmlDeviceGetPersistenceMode"),
                    "max_sm_clock_mhz": self._query("nvmlDeviceGetMaxClockInfo", self.nvml.NVML_CLOCK_SM)}
        else:
            info = {"gpu": self._ctypes_string("nvmlDeviceGetName"),
                    "gpu_uuid": self._ctypes_string("nvmlDeviceGetUUID"),
                    "driver": self._ctypes_string("nvmlSystemGetDriverVersion", with_handle=False),
                    "power_limit_mw": self._ctypes_number("nvmlDeviceGetEnforcedPowerLimit"),
                    "persistence_mode": self._ctypes_number("nvmlDeviceGetPersistenceMode"),
                    "max_sm_clock_mhz": self._ctypes_number("nvmlDeviceGetMaxClockInfo",
                                                            ctypes.c_uint(NVML_CLOCK_SM))}
        limit_mw = info.pop("power_limit_mw")
        info["power_limit_w"] = None if limit_mw is None else limit_mw / 1000.0
        info["nvml"] = self.backend
        return info

    def state(self):
        """SM clock, temperature and clock-event (throttle) reasons bitmask, read after a measured window."""
        if self.backend == "pynvml":
            reasons = self._query("nvmlDeviceGetCurrentClocksEventReasons")
            if reasons is None:
                reasons = self._query("nvmlDeviceGetCurrentClocksThrottleReasons")
            return {"sm_clock_mhz": self._query("nvmlDeviceGetClockInfo", self.nvml.NVML_CLOCK_SM),
                    "temperature_c": self._query("nvmlDeviceGetTemperature", self.nvml.NVML_TEMPERATURE_GPU),
                    "clocks_event_reasons": reasons}
        reasons = self._ctypes_number("nvmlDeviceGetCurrentClocksEventReasons", ctype=ctypes.c_ulonglong)
        if reasons is None:
            reasons = self._ctypes_number("nvmlDeviceGetCurrentClocksThrottleReasons", ctype=ctypes.c_ulonglong)
        return {"sm_clock_mhz": self._ctypes_number("nvmlDeviceGetClockInfo", ctypes.c_uint(NVML_CLOCK_SM)),
                "temperature_c": self._ctypes_number("nvmlDeviceGetTemperature",
                                                     ctypes.c_uint(NVML_TEMPERATURE_GPU)),
                "clocks_event_reasons": reasons}
