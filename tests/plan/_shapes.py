"""Tiny architectures whose counts the tests work out by hand."""

from __future__ import annotations

from tether.plan import Architecture, LatentAttention


def tiny_llama(**changes: object) -> Architecture:
    """vocab 100, d 16, 2 layers, 4 heads of 4 sharing 2 KV heads, SwiGLU 40, untied: 8,656 parameters."""
    base = Architecture(
        name="tiny-llama",
        family="llama",
        vocab_size=100,
        hidden_size=16,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=4,
        intermediate_size=40,
    )
    return base.model_copy(update=changes)


def tiny_gpt2() -> Architecture:
    """vocab 100, d 16, 2 layers, 4 heads, MLP 64, 32 learned positions, tied, biases and LayerNorm: 8,704."""
    return Architecture(
        name="tiny-gpt2",
        family="gpt2",
        vocab_size=100,
        hidden_size=16,
        num_layers=2,
        num_heads=4,
        num_kv_heads=4,
        head_dim=4,
        intermediate_size=64,
        gated_mlp=False,
        qkv_bias=True,
        output_bias=True,
        mlp_bias=True,
        norm_bias=True,
        fused_qkv=True,
        tied_embeddings=True,
        learned_positions=32,
    )


def tiny_mla() -> Architecture:
    """One DeepSeek-style layer: d 16, 2 heads, q rank 8, kv rank 6, nope 4, rope 2, v 4, SwiGLU 32: 5,374."""
    return Architecture(
        name="tiny-mla",
        family="deepseek_v3",
        vocab_size=100,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        num_kv_heads=2,
        head_dim=6,
        intermediate_size=32,
        mla=LatentAttention(q_lora_rank=8, kv_lora_rank=6, qk_nope_head_dim=4, qk_rope_head_dim=2, v_head_dim=4),
    )


def plain_decoder(d: int = 64, layers: int = 1) -> Architecture:
    """A GPT-style layer without biases and a 4x MLP: the textbook 24d² per token per layer."""
    return Architecture(
        name="plain",
        family="gpt2",
        vocab_size=1000,
        hidden_size=d,
        num_layers=layers,
        num_heads=d // 16,
        num_kv_heads=d // 16,
        head_dim=16,
        intermediate_size=4 * d,
        gated_mlp=False,
    )
