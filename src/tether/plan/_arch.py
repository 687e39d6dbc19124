"""The shape of a decoder-only transformer: everything the planner's formulas read, nothing else."""

from __future__ import annotations

from pydantic import Field

from tether.plan._record import Record


class MixtureOfExperts(Record):
    """Routed MLPs: each token runs through ``experts_per_token`` of ``num_experts`` (plus any shared ones)."""

    num_experts: int = Field(gt=0)
    experts_per_token: int = Field(gt=0)
    expert_intermediate_size: int = Field(gt=0)
    # DeepSeek: experts every token runs through, fused into one MLP of this width
    shared_intermediate_size: int = 0
    # DeepSeek: the first layers keep a dense MLP; after them, layers whose index is a multiple of this are routed
    dense_layers: int = 0
    layer_frequency: int = 1


class LatentAttention(Record):
    """Multi-head latent attention (DeepSeek-V2/V3): keys and values come from a small cached latent."""

    q_lora_rank: int | None  # None: queries are projected straight from the hidden state
    kv_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(ge=0)
    qk_rope_head_dim: int = Field(ge=0)
    v_head_dim: int = Field(gt=0)


class Architecture(Record):
    """A decoder-only model's shape, as read from a Hugging Face ``config.json`` or a preset."""

    derived = ("attention_kind", "moe_layers")

    name: str
    family: str  # llama, mistral, mixtral, qwen2, gpt2, gpt_neox, deepseek_v3
    vocab_size: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    gated_mlp: bool = True  # SwiGLU: gate, up and down matrices; otherwise up and down (GELU)
    qkv_bias: bool = False
    output_bias: bool = False
    mlp_bias: bool = False
    norm_bias: bool = False  # LayerNorm has a bias, RMSNorm does not
    fused_qkv: bool = False  # one matrix makes q, k and v (GPT-2 c_attn, GPT-NeoX query_key_value)
    tied_embeddings: bool = False
    learned_positions: int = 0  # rows of a learned position table (GPT-2, GPT-3); 0 for rotary
    max_positions: int | None = None
    sliding_window: int | None = None
    sliding_layers: int = 0  # how many layers attend within the window (the rest see everything)
    moe: MixtureOfExperts | None = None
    mla: LatentAttention | None = None
    notes: tuple[str, ...] = ()

    @property
    def query_key_dim(self) -> int:
        """Width of one head's query·key dot product."""
        return self.mla.qk_nope_head_dim + self.mla.qk_rope_head_dim if self.mla else self.head_dim

    @property
    def value_dim(self) -> int:
        """Width of one head's value vector."""
        return self.mla.v_head_dim if self.mla else self.head_dim

    @property
    def moe_layers(self) -> int:
        """Layers whose MLP is routed."""
        if self.moe is None:
            return 0
        return sum(
            1 for i in range(self.num_layers) if i >= self.moe.dense_layers and i % self.moe.layer_frequency == 0
        )

    @property
    def attention_kind(self) -> str:
        """MHA, GQA, MQA or MLA, as the KV cache sees it."""
        if self.mla:
            return "MLA"
        if self.num_kv_heads == self.num_heads:
            return "MHA"
        return "MQA" if self.num_kv_heads == 1 else "GQA"
