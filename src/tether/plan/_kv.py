"""The key-value cache: what each token leaves behind in every layer, and what a workload holds.

    standard / GQA:  2 (K and V) × KV heads × head_dim values per token per layer
    MLA (DeepSeek):  kv_lora_rank + qk_rope_head_dim values (the compressed latent and the rotary key)
    sliding window:  a layer keeps at most ``window`` tokens, however long the context

so a 16-bit cache of an MHA model costs 2 × layers × d_model × 2 bytes per token.
"""

from __future__ import annotations

from tether.plan._arch import Architecture
from tether.plan._flops import attended_positions
from tether.plan._precision import Precision
from tether.plan._record import Record


class KvCache(Record):
    layout: str  # "GQA: 8 KV heads × 128", "MLA latent 512 + rope 64"
    precision: str
    values_per_token_per_layer: int
    bytes_per_token: float  # all layers, before any window cap
    batch: int
    context: int
    cached_tokens_per_layer: dict[str, int]  # "full" and "sliding" layers → tokens one sequence keeps
    total_bytes: float


def kv_values_per_token_per_layer(arch: Architecture) -> int:
    if arch.mla:
        return arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim
    return 2 * arch.num_kv_heads * arch.head_dim


def cached_token_layers(arch: Architecture, context: int) -> int:
    """Σ over layers of the tokens each keeps for one sequence of ``context`` tokens."""
    full_layers = arch.num_layers - arch.sliding_layers
    cached = full_layers * context
    if arch.sliding_layers and arch.sliding_window:
        cached += arch.sliding_layers * min(context, arch.sliding_window)
    return cached


def kv_cache_bytes(arch: Architecture, precision: Precision, batch: int, context: int) -> float:
    return batch * cached_token_layers(arch, context) * kv_values_per_token_per_layer(arch) * precision.bytes_per_value


def average_kv_cache_bytes(arch: Architecture, precision: Precision, batch: int, prompt: int, steps: int) -> float:
    """The cache a decode step reads, averaged over ``steps`` steps after a ``prompt``-token prefill;
    step j holds prompt + j tokens (the new token's keys and values included)."""
    full_layers = arch.num_layers - arch.sliding_layers
    token_layers = full_layers * attended_positions(prompt, steps)
    if arch.sliding_layers:
        token_layers += arch.sliding_layers * attended_positions(prompt, steps, arch.sliding_window)
    return batch * token_layers / steps * kv_values_per_token_per_layer(arch) * precision.bytes_per_value


def _layout(arch: Architecture) -> str:
    if arch.mla:
        return f"MLA: latent {arch.mla.kv_lora_rank} + rotary key {arch.mla.qk_rope_head_dim}"
    layout = f"{arch.attention_kind}: {arch.num_kv_heads} KV heads × {arch.head_dim}"
    if arch.sliding_layers:
        layout += f", window {arch.sliding_window} in {arch.sliding_layers}/{arch.num_layers} layers"
    return layout


def kv_cache(arch: Architecture, precision: Precision, batch: int, context: int) -> KvCache:
    per_layer = kv_values_per_token_per_layer(arch)
    cached = {}
    if arch.num_layers > arch.sliding_layers:
        cached["full"] = context
    if arch.sliding_layers and arch.sliding_window:
        cached["sliding"] = min(context, arch.sliding_window)
    return KvCache(
        layout=_layout(arch),
        precision=precision.name,
        values_per_token_per_layer=per_layer,
        bytes_per_token=arch.num_layers * per_layer * precision.bytes_per_value,
        batch=batch,
        context=context,
        cached_tokens_per_layer=cached,
        total_bytes=kv_cache_bytes(arch, precision, batch, context),
    )
