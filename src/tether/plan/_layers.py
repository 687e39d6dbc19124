"""The weight matrices and norms of one transformer layer: the single source the counts are derived from.

Parameters, FLOPs, quantized bytes and LoRA adapters are all sums over this list, so they cannot
disagree about what a layer holds.
"""

from __future__ import annotations

from typing import Literal

from tether.plan._arch import Architecture
from tether.plan._record import Record

# what a matrix's output feeds, for the parameter and FLOP breakdowns
Part = Literal["q", "k", "v", "kv_latent", "o", "mlp", "experts", "router"]
PARTS: tuple[Part, ...] = ("q", "k", "v", "kv_latent", "o", "mlp", "experts", "router")


class Linear(Record):
    """A weight matrix (``in_features`` → sum of the part widths), held ``copies`` times (experts)."""

    module: str  # the name LoRA targets use: q, k, v, o, qkv, q_a, q_b, kv_a, kv_b, gate, up, down, router
    in_features: int
    parts: tuple[tuple[Part, int], ...]  # a fused matrix (GPT-2's c_attn) feeds several parts
    bias: bool = False
    copies: int = 1
    active_copies: int = 1  # how many of the copies one token runs through
    quantizable: bool = True  # routers stay in high precision under bitsandbytes and GPTQ

    @property
    def out_features(self) -> int:
        return sum(width for _, width in self.parts)

    def params_of(self, part: Part) -> int:
        width = sum(w for p, w in self.parts if p == part)
        return self.copies * (self.in_features * width + (width if self.bias else 0))

    @property
    def params(self) -> int:
        return self.copies * (self.in_features * self.out_features + (self.out_features if self.bias else 0))

    @property
    def weight_params(self) -> int:
        """Parameters in the matrix itself, biases excluded (quantizers keep biases in 16 bits)."""
        return self.copies * self.in_features * self.out_features

    @property
    def active_params(self) -> int:
        return self.active_copies * (self.in_features * self.out_features + (self.out_features if self.bias else 0))


def attention_linears(arch: Architecture) -> list[Linear]:
    d, heads = arch.hidden_size, arch.num_heads
    if arch.mla:
        mla = arch.mla
        qk_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        if mla.q_lora_rank:
            queries = [
                Linear(module="q_a", in_features=d, parts=(("q", mla.q_lora_rank),), bias=arch.qkv_bias),
                Linear(module="q_b", in_features=mla.q_lora_rank, parts=(("q", heads * qk_dim),)),
            ]
        else:
            queries = [Linear(module="q", in_features=d, parts=(("q", heads * qk_dim),))]
        return [
            *queries,
            # the down-projection makes the cached latent, plus a rotary key part shared by all heads
            Linear(
                module="kv_a",
                in_features=d,
                parts=(("kv_latent", mla.kv_lora_rank), ("k", mla.qk_rope_head_dim)),
                bias=arch.qkv_bias,
            ),
            Linear(
                module="kv_b",
                in_features=mla.kv_lora_rank,
                parts=(("k", heads * mla.qk_nope_head_dim), ("v", heads * mla.v_head_dim)),
            ),
            Linear(module="o", in_features=heads * mla.v_head_dim, parts=(("o", d),), bias=arch.output_bias),
        ]
    q_width, kv_width = heads * arch.head_dim, arch.num_kv_heads * arch.head_dim
    if arch.fused_qkv:
        parts: tuple[tuple[Part, int], ...] = (("q", q_width), ("k", kv_width), ("v", kv_width))
        qkv = [Linear(module="qkv", in_features=d, parts=parts, bias=arch.qkv_bias)]
    else:
        qkv = [
            Linear(module="q", in_features=d, parts=(("q", q_width),), bias=arch.qkv_bias),
            Linear(module="k", in_features=d, parts=(("k", kv_width),), bias=arch.qkv_bias),
            Linear(module="v", in_features=d, parts=(("v", kv_width),), bias=arch.qkv_bias),
        ]
    return [*qkv, Linear(module="o", in_features=q_width, parts=(("o", d),), bias=arch.output_bias)]


def mlp_linears(
    arch: Architecture, width: int, part: Part = "mlp", copies: int = 1, active_copies: int = 1
) -> list[Linear]:
    """An MLP of hidden ``width``: gate, up and down when gated (SwiGLU), else up and down."""
    d = arch.hidden_size
    names = ("gate", "up", "down") if arch.gated_mlp else ("up", "down")
    return [
        Linear(
            module=name,
            in_features=width if name == "down" else d,
            parts=((part, d if name == "down" else width),),
            bias=arch.mlp_bias,
            copies=copies,
            active_copies=active_copies,
        )
        for name in names
    ]


def layer_linears(arch: Architecture, routed: bool) -> list[Linear]:
    """Every matrix of one layer; ``routed`` picks the mixture-of-experts MLP over the dense one."""
    if not routed or arch.moe is None:
        return attention_linears(arch) + mlp_linears(arch, arch.intermediate_size)
    moe = arch.moe
    matrices = attention_linears(arch)
    matrices.append(
        Linear(module="router", in_features=arch.hidden_size, parts=(("router", moe.num_experts),), quantizable=False)
    )
    matrices += mlp_linears(
        arch, moe.expert_intermediate_size, "experts", copies=moe.num_experts, active_copies=moe.experts_per_token
    )
    if moe.shared_intermediate_size:
        matrices += mlp_linears(arch, moe.shared_intermediate_size)
    return matrices


def layer_groups(arch: Architecture) -> list[tuple[int, list[Linear]]]:
    """``(how many layers, their matrices)`` for the dense and the routed layers."""
    routed = arch.moe_layers
    groups = [(arch.num_layers - routed, layer_linears(arch, routed=False)), (routed, layer_linears(arch, routed=True))]
    return [(count, matrices) for count, matrices in groups if count]


def layer_norm_params(arch: Architecture) -> int:
    """Norm parameters in one layer: two around attention and MLP, plus MLA's latent norms."""
    widths = [arch.hidden_size, arch.hidden_size]
    if arch.mla:
        widths.append(arch.mla.kv_lora_rank)
        if arch.mla.q_lora_rank:
            widths.append(arch.mla.q_lora_rank)
    return sum(widths) * (2 if arch.norm_bias else 1)


def final_norm_params(arch: Architecture) -> int:
    return arch.hidden_size * (2 if arch.norm_bias else 1)
