"""How fast: a roofline estimate, the faster of compute and memory traffic bounding each phase.

    time = max(FLOPs / peak FLOP/s, bytes moved / bandwidth)

Prefill pushes many tokens through each weight it reads, so it is compute-bound; decoding reads every
weight and the whole KV cache to make one token per sequence, so it is bandwidth-bound until the batch
is large. These are upper bounds on speed: real kernels reach some fraction of peak (the efficiency
factors scale for that).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tether.plan._arch import Architecture
from tether.plan._devices import Device
from tether.plan._flops import decode_flops, prefill_flops
from tether.plan._kv import average_kv_cache_bytes, kv_cache_bytes
from tether.plan._params import ParameterCount
from tether.plan._record import Record
from tether.plan._weights import kept_precision
from tether.plan._workload import Workload


class Efficiency(Record):
    """Fractions of the datasheet peaks a real stack reaches (1.0: the ideal roofline)."""

    compute: float = Field(default=1.0, gt=0, le=1)
    bandwidth: float = Field(default=1.0, gt=0, le=1)


class PhaseTime(Record):
    derived = ("seconds", "bound", "tokens_per_second", "arithmetic_intensity")

    flops: float
    bytes_moved: float
    compute_seconds: float
    memory_seconds: float
    tokens: int  # tokens the phase produces (prefill: prompt tokens; decode step: one per sequence)

    @property
    def seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def bound(self) -> Literal["compute", "memory bandwidth"]:
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory bandwidth"

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else float("inf")

    @property
    def arithmetic_intensity(self) -> float:
        """FLOPs per byte moved; above the device's peak/bandwidth ratio the phase is compute-bound."""
        return self.flops / self.bytes_moved if self.bytes_moved else float("inf")


class SpeedEstimate(Record):
    derived = ("time_to_first_token", "decode_tokens_per_second_per_sequence", "total_seconds")

    prefill: PhaseTime  # the whole batch of prompts
    decode_step: PhaseTime  # one token for every sequence, at the average context of the generation
    generated_tokens: int
    ridge_intensity: float  # the device's peak FLOP/s per byte/s

    @property
    def time_to_first_token(self) -> float:
        return self.prefill.seconds

    @property
    def decode_tokens_per_second_per_sequence(self) -> float:
        return 1.0 / self.decode_step.seconds if self.decode_step.seconds else float("inf")

    @property
    def total_seconds(self) -> float:
        return self.prefill.seconds + self.generated_tokens * self.decode_step.seconds


def expert_fraction_touched(arch: Architecture, tokens: int) -> float:
    """Share of a layer's routed experts that ``tokens`` tokens use, routing uniformly at random:
    1 − (1 − k/E)^tokens. One decoding sequence reads only its k experts' weights."""
    if arch.moe is None:
        return 1.0
    return 1.0 - (1.0 - arch.moe.experts_per_token / arch.moe.num_experts) ** tokens


def weight_bytes_read(arch: Architecture, params: ParameterCount, workload: Workload, tokens: int) -> float:
    """Weight bytes a forward pass over ``tokens`` tokens reads: every matrix, only the used experts,
    and of the token table only the looked-up rows (unless the LM head shares it)."""
    quantized = workload.weights.bytes_per_value
    kept = kept_precision(workload.weights).bytes_per_value
    quantized_params = params.quantizable - params.experts * (1.0 - expert_fraction_touched(arch, tokens))
    kept_params = float(params.total - params.quantizable)
    if not arch.tied_embeddings:
        kept_params -= arch.vocab_size * arch.hidden_size * (1.0 - min(1.0, tokens / arch.vocab_size))
    return quantized_params * quantized + kept_params * kept


def estimate_speed(
    arch: Architecture,
    params: ParameterCount,
    workload: Workload,
    device: Device,
    efficiency: Efficiency | None = None,
) -> SpeedEstimate:
    efficiency = efficiency or Efficiency()
    peak = device.flops_for(workload.activations.compute or "16bit") * efficiency.compute
    bandwidth = device.bandwidth * efficiency.bandwidth
    batch, prompt, generated = workload.batch, workload.prompt_tokens, workload.generated_tokens

    prefill_total = batch * prompt * prefill_flops(arch, prompt).total
    prefill_bytes = weight_bytes_read(arch, params, workload, batch * prompt) + kv_cache_bytes(
        arch, workload.kv_cache, batch, prompt
    )  # the cache is written once
    prefill = PhaseTime(
        flops=prefill_total,
        bytes_moved=prefill_bytes,
        compute_seconds=prefill_total / peak,
        memory_seconds=prefill_bytes / bandwidth,
        tokens=batch * prompt,
    )

    # decoding: every step reads the weights and the whole cache, which grows by a token a step
    steps = max(generated, 1)
    average_cache = average_kv_cache_bytes(arch, workload.kv_cache, batch, prompt, steps)
    step_flops = batch * decode_flops(arch, prompt, steps).total
    step_bytes = weight_bytes_read(arch, params, workload, batch) + average_cache
    decode_step = PhaseTime(
        flops=step_flops,
        bytes_moved=step_bytes,
        compute_seconds=step_flops / peak,
        memory_seconds=step_bytes / bandwidth,
        tokens=batch,
    )
    return SpeedEstimate(
        prefill=prefill,
        decode_step=decode_step,
        generated_tokens=generated,
        ridge_intensity=peak / bandwidth,
    )
