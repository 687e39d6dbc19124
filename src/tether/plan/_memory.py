"""Memory for serving: weights, KV cache, the prefill's transient activations and a runtime reserve;
whether that fits the device, and the largest batch and context that would."""

from __future__ import annotations

from collections.abc import Callable

from tether.plan._arch import Architecture
from tether.plan._devices import Device
from tether.plan._kv import kv_cache_bytes
from tether.plan._layers import layer_groups
from tether.plan._params import ParameterCount, count_parameters
from tether.plan._record import Record
from tether.plan._weights import weight_bytes
from tether.plan._workload import Workload

_LOGIT_BYTES = 4  # logits are upcast to FP32 before sampling


class InferenceMemory(Record):
    derived = ("total", "fits", "headroom")

    weights: float
    kv_cache: float
    activations: float  # the largest transient: one layer of the prefill, plus the last position's logits
    overhead: float
    device_memory: float
    draft_model: float = 0.0  # speculative decoding: the draft's weights and KV cache

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.activations + self.overhead + self.draft_model

    @property
    def fits(self) -> bool:
        return self.total <= self.device_memory

    @property
    def headroom(self) -> float:
        return self.device_memory - self.total


class FitLimits(Record):
    max_batch: int  # at the workload's context; 0: not even one sequence fits
    max_context: int | None  # at the workload's batch; None: memory never runs out (up to 2^34 tokens)
    model_max_context: int | None  # what the model was trained for (max_position_embeddings)


def activation_values_per_token(arch: Architecture) -> int:
    """Values alive per token while one layer runs: the residual stream and its normed copy, plus the widest
    intermediate (the q/k/v outputs, or the MLP's gate and up outputs). Attention is assumed to be
    fused (FlashAttention, SDPA), so no context × context score matrix is stored."""
    widest = 0
    for _, matrices in layer_groups(arch):
        attention = sum(m.out_features for m in matrices if m.module in {"q", "k", "v", "qkv", "q_b", "kv_b"})
        mlp = sum(m.active_copies * m.out_features for m in matrices if m.module in {"gate", "up"})
        widest = max(widest, attention, mlp)
    return 2 * arch.hidden_size + widest


def activation_bytes(arch: Architecture, workload: Workload) -> float:
    tokens = workload.batch * workload.prompt_tokens
    if workload.prefill_chunk:
        tokens = min(tokens, workload.prefill_chunk)
    layer = tokens * activation_values_per_token(arch) * workload.activations.bytes_per_value
    return layer + workload.batch * arch.vocab_size * _LOGIT_BYTES


def inference_memory(
    arch: Architecture, params: ParameterCount, workload: Workload, device: Device, draft: Architecture | None = None
) -> InferenceMemory:
    draft_bytes = 0.0
    if draft is not None:
        draft_bytes = weight_bytes(count_parameters(draft), workload.weights) + kv_cache_bytes(
            draft, workload.kv_cache, workload.batch, workload.context
        )
    return InferenceMemory(
        draft_model=draft_bytes,
        weights=weight_bytes(params, workload.weights),
        kv_cache=kv_cache_bytes(arch, workload.kv_cache, workload.batch, workload.context),
        activations=activation_bytes(arch, workload),
        overhead=workload.overhead_bytes,
        device_memory=device.memory_bytes,
    )


def largest(fits: Callable[[int], bool], low: int = 1, high: int = 2**34) -> int | None:
    """The largest n in [low, high] with fits(n), for fits true up to some point and false after;
    ``low - 1`` when none fits, None when even ``high`` fits."""
    if not fits(low):
        return low - 1
    if fits(high):
        return None
    while high - low > 1:  # fits(low) and not fits(high)
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def fit_limits(
    arch: Architecture, params: ParameterCount, workload: Workload, device: Device, draft: Architecture | None = None
) -> FitLimits:
    def batch_fits(batch: int) -> bool:
        return inference_memory(arch, params, workload.model_copy(update={"batch": batch}), device, draft).fits

    def context_fits(context: int) -> bool:
        return inference_memory(arch, params, workload.with_context(context), device, draft).fits

    max_batch = largest(batch_fits, high=2**24)
    shortest = workload.generated_tokens + 1  # a context holds the generated tokens and a prompt
    max_context = largest(context_fits, low=shortest)
    return FitLimits(
        max_batch=2**24 if max_batch is None else max_batch,
        max_context=0 if max_context == shortest - 1 else max_context,
        model_max_context=arch.max_positions,
    )
