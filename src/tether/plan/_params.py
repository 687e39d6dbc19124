"""Parameter counts, split by where they live; for mixture-of-experts, also those one token uses."""

from __future__ import annotations

from tether.plan._arch import Architecture
from tether.plan._layers import PARTS, Part, final_norm_params, layer_groups, layer_norm_params
from tether.plan._record import Record


class ParameterCount(Record):
    derived = ("total", "active", "attention", "non_embedding")

    embeddings: int  # token table, plus a learned position table where the model has one
    attention_q: int
    attention_k: int
    attention_v: int
    attention_kv_latent: int  # MLA's compressed key-value projection (0 without MLA)
    attention_o: int
    mlp: int  # dense MLPs and shared experts: every token runs through them
    experts: int  # routed experts, all of them
    router: int
    norms: int
    lm_head: int  # 0 when tied to the token embeddings
    active_experts: int  # the routed experts' parameters one token runs through
    quantizable: int  # weights of the attention and MLP matrices: what weight-only quantization compresses

    @property
    def attention(self) -> int:
        return self.attention_q + self.attention_k + self.attention_v + self.attention_kv_latent + self.attention_o

    @property
    def total(self) -> int:
        return self.embeddings + self.attention + self.mlp + self.experts + self.router + self.norms + self.lm_head

    @property
    def active(self) -> int:
        """Parameters one token touches (all of them for a dense model)."""
        return self.total - self.experts + self.active_experts

    @property
    def non_embedding(self) -> int:
        return self.total - self.embeddings - self.lm_head

    def parts(self) -> dict[str, int]:
        """Label → count, for tables; zero parts are left out."""
        labelled = {
            "embeddings": self.embeddings,
            "attention q": self.attention_q,
            "attention k": self.attention_k,
            "attention v": self.attention_v,
            "attention kv latent (MLA)": self.attention_kv_latent,
            "attention o": self.attention_o,
            ("MLP (dense, shared experts)" if self.experts else "MLP"): self.mlp,
            "MLP routed experts": self.experts,
            "router": self.router,
            "norms": self.norms,
            "LM head": self.lm_head,
        }
        return {label: count for label, count in labelled.items() if count}


def count_parameters(arch: Architecture) -> ParameterCount:
    sums: dict[Part, int] = dict.fromkeys(PARTS, 0)
    active_experts = quantizable = 0
    for layers, matrices in layer_groups(arch):
        for matrix in matrices:
            for part in sums:
                sums[part] += layers * matrix.params_of(part)
            if matrix.quantizable:
                quantizable += layers * matrix.weight_params
            if any(part == "experts" for part, _ in matrix.parts):
                active_experts += layers * matrix.active_params
    table = arch.vocab_size * arch.hidden_size
    return ParameterCount(
        embeddings=table + arch.learned_positions * arch.hidden_size,
        attention_q=sums["q"],
        attention_k=sums["k"],
        attention_v=sums["v"],
        attention_kv_latent=sums["kv_latent"],
        attention_o=sums["o"],
        mlp=sums["mlp"],
        experts=sums["experts"],
        router=sums["router"],
        norms=arch.num_layers * layer_norm_params(arch) + final_norm_params(arch),
        lm_head=0 if arch.tied_embeddings else table,
        active_experts=active_experts,
        quantizable=quantizable,
    )
