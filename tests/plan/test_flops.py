from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.plan import attended_positions, decode_flops, prefill_flops, preset_architecture, projection_flops

from ._shapes import plain_decoder, tiny_llama


def test_plain_decoder_layer_is_24_d_squared() -> None:
    d = 64
    flops = projection_flops(plain_decoder(d))
    assert flops["qkv"] == 6 * d * d
    assert flops["output"] == 2 * d * d
    assert flops["mlp"] == 16 * d * d
    total = sum(flops.values())
    assert total == 24 * d * d
    assert flops["qkv"] / total == pytest.approx(0.25)
    assert flops["output"] / total == pytest.approx(1 / 12)  # ~8%
    assert flops["mlp"] / total == pytest.approx(2 / 3)  # ~66%


def test_layers_add_up() -> None:
    assert sum(projection_flops(plain_decoder(64, layers=5)).values()) == 5 * 24 * 64 * 64


def test_attention_grows_with_the_context() -> None:
    arch = plain_decoder(64)
    # a token at position 100 attends to 100 positions: 2·d for the scores and 2·d for the values each
    at_100 = decode_flops(arch, prompt=99, generated=1)
    assert at_100.attention_scores == 100 * 4 * 64
    assert at_100.lm_head == 2 * 64 * 1000
    # averaged over a 10-token prefill: positions 1..10, mean 5.5; logits only for the last token
    prefill = prefill_flops(arch, 10)
    assert prefill.attention_scores == pytest.approx(5.5 * 4 * 64)
    assert prefill.lm_head == pytest.approx(2 * 64 * 1000 / 10)


def test_grouped_query_attention_keeps_the_score_flops() -> None:
    """GQA shrinks K and V projections, not the per-query-head dot products."""
    mha, gqa = tiny_llama(num_kv_heads=4), tiny_llama(num_kv_heads=1)
    assert decode_flops(mha, 50, 1).attention_scores == decode_flops(gqa, 50, 1).attention_scores
    assert decode_flops(mha, 50, 1).qkv_projection > decode_flops(gqa, 50, 1).qkv_projection


def test_sliding_window_caps_attention() -> None:
    windowed = tiny_llama(sliding_window=8, sliding_layers=2)
    assert decode_flops(windowed, 1000, 1).attention_scores == decode_flops(windowed, 7, 1).attention_scores


def test_mixture_of_experts_counts_only_the_active_experts() -> None:
    arch = preset_architecture("mixtral-8x7b")
    mlp = projection_flops(arch)["mlp"]
    experts = 32 * 2 * 2 * 3 * 4096 * 14336  # 2 active experts of 3 matrices in 32 layers
    router = 32 * 2 * 4096 * 8
    assert mlp == experts + router


def test_per_token_flops_are_about_twice_the_active_parameters() -> None:
    from tether.plan import count_parameters

    arch = preset_architecture("llama-2-7b")
    flops = decode_flops(arch, 0, 1)  # no context to attend to yet
    params = count_parameters(arch)
    assert flops.total - flops.attention_scores == pytest.approx(2 * (params.total - params.embeddings), rel=0.001)


@given(st.integers(0, 300), st.integers(0, 300), st.one_of(st.none(), st.integers(1, 200)))
def test_attended_positions_closed_form(start: int, count: int, window: int | None) -> None:
    expected = sum(min(i, window) if window else i for i in range(start + 1, start + count + 1))
    assert attended_positions(start, count, window) == expected
