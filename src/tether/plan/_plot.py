"""A PNG of serving memory against context length, one line per weight precision.

matplotlib is imported here, when a plot is asked for, so the CLI answers without paying for it;
the Agg canvas draws without a display.
"""

from __future__ import annotations

from pathlib import Path

from tether.plan._arch import Architecture
from tether.plan._devices import Device
from tether.plan._errors import PlanError
from tether.plan._kv import kv_cache_bytes
from tether.plan._memory import inference_memory
from tether.plan._params import count_parameters
from tether.plan._precision import Precision
from tether.plan._units import GIB
from tether.plan._workload import Workload


def context_grid(workload: Workload, arch: Architecture, points: int = 48) -> list[int]:
    """Contexts from 256 tokens to past both the workload's and the model's, evenly on a log scale."""
    low = max(workload.generated_tokens + 1, 256)
    high = max(4 * workload.context, arch.max_positions or 0, 2 * low)
    grid = {round(low * (high / low) ** (i / (points - 1))) for i in range(points)}
    return sorted(grid | {workload.context})


def plot_memory(
    arch: Architecture, workload: Workload, device: Device, precisions: list[Precision], path: str | Path
) -> Path:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is in the plan extra
        raise PlanError("plotting needs matplotlib: pip install 'tether[plan]'") from exc
    params = count_parameters(arch)
    contexts = context_grid(workload, arch)
    figure = Figure(figsize=(8, 5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for precision in precisions:
        totals = [
            inference_memory(
                arch, params, workload.with_context(c).model_copy(update={"weights": precision}), device
            ).total
            / GIB
            for c in contexts
        ]
        axes.plot(contexts, totals, label=f"weights {precision.name}, KV {workload.kv_cache.name}")
    cache = [kv_cache_bytes(arch, workload.kv_cache, workload.batch, c) / GIB for c in contexts]
    axes.plot(contexts, cache, linestyle=":", color="gray", label=f"KV cache alone ({workload.kv_cache.name})")
    axes.axhline(device.memory_bytes / GIB, color="red", linestyle="--", label=f"{device.name} memory")
    axes.axvline(workload.context, color="black", linewidth=0.8, alpha=0.5, label=f"context {workload.context:,}")
    if arch.max_positions:
        axes.axvline(
            arch.max_positions, color="purple", linewidth=0.8, alpha=0.5, linestyle="-.", label="model maximum"
        )
    axes.set_xscale("log", base=2)
    axes.set_xlabel("context length (tokens per sequence)")
    axes.set_ylabel("GiB")
    axes.set_title(f"{arch.name}: serving memory at batch {workload.batch}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    path = Path(path)
    figure.savefig(path, format="png")
    return path
