"""Forward FLOPs per token: 2 per multiply-add of every matrix a token runs through, plus attention.

For a plain decoder layer with a 4x MLP and no biases this gives, per token,

    QKV projections   3 · 2d² =  6d²   (25%)
    output projection     2d² =  2d²   (~8%)
    MLP            2 · 2·4d²  = 16d²   (~67%)
                               24d²

plus attention itself, which grows with the context: 2·heads·qk_dim FLOPs per cached position for
the scores (QKᵀ) and 2·heads·v_dim for the weighted sum of values.
"""

from __future__ import annotations

from tether.plan._arch import Architecture
from tether.plan._layers import Linear, layer_groups
from tether.plan._record import Record

_PROJECTION = {"q": "qkv", "k": "qkv", "v": "qkv", "kv_latent": "qkv", "o": "output", "mlp": "mlp", "experts": "mlp"}


class FlopCount(Record):
    """Forward FLOPs for one token, summed over the layers."""

    derived = ("total",)

    qkv_projection: float
    attention_scores: float  # QKᵀ and softmax·V over the cached positions
    output_projection: float
    mlp: float  # dense MLP, active experts, router
    lm_head: float

    @property
    def total(self) -> float:
        return self.qkv_projection + self.attention_scores + self.output_projection + self.mlp + self.lm_head

    def parts(self) -> dict[str, float]:
        labelled = {
            "QKV projections": self.qkv_projection,
            "attention (QKᵀ, ·V)": self.attention_scores,
            "output projection": self.output_projection,
            "MLP": self.mlp,
            "LM head": self.lm_head,
        }
        return {label: value for label, value in labelled.items() if value}


def _matrix_flops(matrix: Linear) -> dict[str, float]:
    """2 FLOPs per weight a token multiplies by, split the way the breakdown groups them."""
    out: dict[str, float] = {}
    for part, width in matrix.parts:
        group = _PROJECTION.get(part, "mlp")  # the router's scores count with the MLP
        out[group] = out.get(group, 0.0) + 2.0 * matrix.active_copies * matrix.in_features * width
    return out


def projection_flops(arch: Architecture) -> dict[str, float]:
    """Per-token FLOPs of the layers' matrices by group (qkv, output, mlp), all layers together."""
    totals = {"qkv": 0.0, "output": 0.0, "mlp": 0.0}
    for layers, matrices in layer_groups(arch):
        for matrix in matrices:
            for group, flops in _matrix_flops(matrix).items():
                totals[group] += layers * flops
    return totals


def attended_positions(start: int, count: int, window: int | None = None) -> int:
    """Σ min(i, window) for i = start+1 … start+count: the cached positions tokens start+1… attend to.

    A causal token at position i (1-based) attends to i positions, itself included; a sliding
    window caps that at ``window``. Closed form, so a million-token context costs nothing.
    """
    if count <= 0:
        return 0
    first, last = start + 1, start + count
    if window is None or last <= window:
        return (first + last) * count // 2
    if first > window:
        return window * count
    below = (first + window) * (window - first + 1) // 2
    return below + window * (last - window)


def attention_flops_per_position(arch: Architecture) -> float:
    """FLOPs one token spends per cached position in one layer: QKᵀ plus softmax·V."""
    return 2.0 * arch.num_heads * (arch.query_key_dim + arch.value_dim)


def attention_flops(arch: Architecture, start: int, count: int) -> float:
    """Attention FLOPs of tokens start+1 … start+count, all layers, honouring sliding windows."""
    full_layers = arch.num_layers - arch.sliding_layers
    positions = full_layers * attended_positions(start, count)
    if arch.sliding_layers:
        positions += arch.sliding_layers * attended_positions(start, count, arch.sliding_window)
    return attention_flops_per_position(arch) * positions


def flops_per_token(arch: Architecture, start: int, count: int, logits_per_token: float = 1.0) -> FlopCount:
    """Average forward FLOPs of the ``count`` tokens after position ``start``.

    ``logits_per_token`` is the share of those tokens whose logits are computed: 1 when decoding,
    1/prompt for a prefill that only needs the last position's.
    """
    projections = projection_flops(arch)
    return FlopCount(
        qkv_projection=projections["qkv"],
        attention_scores=attention_flops(arch, start, count) / max(count, 1),
        output_projection=projections["output"],
        mlp=projections["mlp"],
        lm_head=2.0 * arch.hidden_size * arch.vocab_size * logits_per_token,
    )


def prefill_flops(arch: Architecture, prompt: int) -> FlopCount:
    """Per prompt token, averaged over a causal prefill; logits only for the last position."""
    return flops_per_token(arch, 0, prompt, logits_per_token=1.0 / max(prompt, 1))


def decode_flops(arch: Architecture, prompt: int, generated: int) -> FlopCount:
    """Per generated token, averaged over the generation (the context grows by one each step)."""
    return flops_per_token(arch, prompt, max(generated, 1))
