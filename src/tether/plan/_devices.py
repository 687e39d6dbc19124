"""Accelerators: memory, memory bandwidth, and peak dense tensor throughput per number format.

Figures are the vendors' datasheet numbers without structured sparsity. Memory is the marketed
size read in binary units; the driver reports a little less, and ``--overhead`` keeps a reserve.
"""

from __future__ import annotations

from pydantic import Field

from tether.plan._errors import PlanError
from tether.plan._precision import ComputeKind
from tether.plan._record import Record
from tether.plan._units import GIB

_T = 1e12
_TB = 1e12


class Device(Record):
    name: str
    memory_bytes: float = Field(gt=0)
    bandwidth: float = Field(gt=0)  # bytes per second
    peak_flops: dict[ComputeKind, float]  # dense FLOP/s per compute format

    def flops_for(self, kind: ComputeKind) -> float:
        """Peak FLOP/s in ``kind``; a device without FP8 or int8 units runs those at its 16-bit rate."""
        return self.peak_flops.get(kind) or self.peak_flops["16bit"]


def _device(
    name: str, memory_gib: float, bandwidth_tb: float, fp32: float, bf16: float, fp8: float | None, int8: float
) -> Device:
    peak: dict[ComputeKind, float] = {"fp32": fp32 * _T, "16bit": bf16 * _T, "int8": int8 * _T}
    if fp8:
        peak["fp8"] = fp8 * _T
    return Device(name=name, memory_bytes=memory_gib * GIB, bandwidth=bandwidth_tb * _TB, peak_flops=peak)


DEVICE_PRESETS: dict[str, Device] = {
    d.name: d
    for d in (
        _device("a100-40g", 40, 1.555, 19.5, 312, None, 624),
        _device("a100-80g", 80, 2.039, 19.5, 312, None, 624),
        _device("h100", 80, 3.35, 67, 989.4, 1978.9, 1978.9),  # SXM
        _device("h100-pcie", 80, 2.0, 51, 756.5, 1513, 1513),
        _device("h200", 141, 4.8, 67, 989.4, 1978.9, 1978.9),
        _device("l4", 24, 0.3, 30.3, 121, 242.5, 242.5),
        _device("rtx-4090", 24, 1.008, 82.6, 165.2, 330.3, 660.6),  # tensor rates with FP32 accumulate
        _device("mi300x", 192, 5.3, 163.4, 1307.4, 2614.9, 2614.9),
    )
}
_ALIASES = {"a100": "a100-80g", "h100-sxm": "h100", "4090": "rtx-4090", "rtx4090": "rtx-4090"}


def device_preset(name: str) -> Device:
    """A device by name (``h100``, ``a100-40g``…); unknown names list the known ones."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key not in DEVICE_PRESETS:
        raise PlanError(f"unknown device {name!r}; known: {', '.join(DEVICE_PRESETS)}")
    return DEVICE_PRESETS[key]


def custom_device(
    base: Device, memory_gib: float | None = None, tflops: float | None = None, bandwidth_gbs: float | None = None
) -> Device:
    """``base`` with its memory, 16-bit peak (other formats scaled alike) or bandwidth replaced."""
    changes: dict[str, object] = {}
    if memory_gib is not None:
        changes["memory_bytes"] = memory_gib * GIB
    if bandwidth_gbs is not None:
        changes["bandwidth"] = bandwidth_gbs * 1e9
    if tflops is not None:
        scale = tflops * _T / base.peak_flops["16bit"]
        changes["peak_flops"] = {kind: rate * scale for kind, rate in base.peak_flops.items()}
    if not changes:
        return base
    if any(isinstance(v, float) and v <= 0 for v in changes.values()):
        raise PlanError("device memory, FLOP/s and bandwidth must be positive")
    return base.model_copy(update={**changes, "name": f"{base.name} (custom)"})
