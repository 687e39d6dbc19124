"""LoRA adapters: a rank-r pair A (in × r) and B (r × out) beside each targeted matrix, so r·(in + out)
trainable parameters per matrix (per expert, for routed experts)."""

from __future__ import annotations

from pydantic import Field

from tether.plan._arch import Architecture
from tether.plan._errors import PlanError
from tether.plan._layers import layer_groups
from tether.plan._record import Record

_ATTENTION = frozenset({"q", "k", "v", "qkv", "o", "q_a", "q_b", "kv_a", "kv_b"})
_MLP = frozenset({"gate", "up", "down"})
_GROUPS = {"all-linear": _ATTENTION | _MLP, "attention": _ATTENTION, "mlp": _MLP}


class LoraAdapters(Record):
    derived = ("trainable_params",)

    rank: int = Field(ge=1)
    targets: tuple[str, ...]  # module names, after expanding groups
    params_by_module: dict[str, int]
    activation_values_per_token: int  # the r-wide x·A each adapter keeps for its backward pass

    @property
    def trainable_params(self) -> int:
        return sum(self.params_by_module.values())


def available_modules(arch: Architecture) -> list[str]:
    seen: dict[str, None] = {}
    for _, matrices in layer_groups(arch):
        for matrix in matrices:
            if matrix.module != "router":
                seen[matrix.module] = None
    return list(seen)


def resolve_targets(arch: Architecture, spec: str) -> tuple[str, ...]:
    """``"q,v"``, ``"attention"``, ``"mlp"`` or ``"all-linear"`` → the model's module names."""
    available = available_modules(arch)
    chosen: list[str] = []
    for item in (part.strip().lower() for part in spec.split(",")):
        if not item:
            continue
        if item in _GROUPS:
            chosen += [m for m in available if m in _GROUPS[item]]
        elif item in available:
            chosen.append(item)
        else:
            raise PlanError(
                f"{arch.name} has no module {item!r} to adapt; choose from {', '.join(available)}"
                f" or the groups {', '.join(_GROUPS)}"
            )
    if not chosen:
        raise PlanError("no LoRA target modules given")
    return tuple(dict.fromkeys(chosen))


def lora_adapters(arch: Architecture, rank: int, targets: str = "all-linear") -> LoraAdapters:
    if rank < 1:
        raise PlanError(f"the LoRA rank must be at least 1, got {rank}")
    modules = resolve_targets(arch, targets)
    params: dict[str, int] = dict.fromkeys(modules, 0)
    values = 0
    for layers, matrices in layer_groups(arch):
        for matrix in matrices:
            if matrix.module in params:
                params[matrix.module] += layers * matrix.copies * rank * (matrix.in_features + matrix.out_features)
                values += layers * matrix.active_copies * rank
    return LoraAdapters(rank=rank, targets=modules, params_by_module=params, activation_values_per_token=values)
