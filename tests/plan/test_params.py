from __future__ import annotations

import pytest

from tether.plan import MODEL_PRESETS, count_parameters, preset_architecture

from ._shapes import tiny_gpt2, tiny_llama, tiny_mla


@pytest.mark.parametrize("name", list(MODEL_PRESETS))
def test_presets_match_published_totals_within_1_percent(name: str) -> None:
    preset = MODEL_PRESETS[name]
    total = count_parameters(preset_architecture(name)).total
    assert total == pytest.approx(preset.published_params, rel=0.01)


@pytest.mark.parametrize(
    ("name", "exact"),
    [
        ("llama-2-7b", 6_738_415_616),
        ("llama-2-13b", 13_015_864_320),
        ("llama-2-70b", 68_976_648_192),
        ("llama-3-8b", 8_030_261_248),
        ("llama-3-70b", 70_553_706_496),
        ("mistral-7b", 7_241_732_096),
        ("mixtral-8x7b", 46_702_792_704),
    ],
)
def test_published_checkpoints_are_matched_exactly(name: str, exact: int) -> None:
    assert count_parameters(preset_architecture(name)).total == exact


def test_mixture_of_experts_active_parameters() -> None:
    mixtral = count_parameters(preset_architecture("mixtral-8x7b"))
    assert mixtral.active == pytest.approx(12.9e9, rel=0.01)
    # 8 experts of 3 × 4096 × 14336 in 32 layers; a token uses 2 of them
    assert mixtral.experts == 32 * 8 * 3 * 4096 * 14336
    assert mixtral.active_experts == mixtral.experts // 4
    deepseek = count_parameters(preset_architecture("deepseek-v3"))
    assert deepseek.total == pytest.approx(671e9, rel=0.01)
    assert deepseek.active == pytest.approx(37e9, rel=0.02)  # "37B" is rounded to the billion


def test_tiny_llama_by_hand() -> None:
    params = count_parameters(tiny_llama())
    assert params.embeddings == 100 * 16
    assert params.lm_head == 100 * 16
    assert (params.attention_q, params.attention_k, params.attention_v, params.attention_o) == (
        2 * 16 * 16,
        2 * 16 * 8,
        2 * 16 * 8,
        2 * 16 * 16,
    )
    assert params.mlp == 2 * 3 * 16 * 40
    assert params.norms == 2 * 2 * 16 + 16
    assert params.total == 8656
    assert params.active == params.total
    assert params.quantizable == params.attention + params.mlp  # no biases: every matrix weight
    assert sum(params.parts().values()) == params.total


def test_tiny_gpt2_by_hand() -> None:
    params = count_parameters(tiny_gpt2())
    assert params.embeddings == 100 * 16 + 32 * 16  # tokens and learned positions
    assert params.lm_head == 0  # tied
    assert params.attention == 2 * ((16 * 48 + 48) + (16 * 16 + 16))
    assert params.mlp == 2 * ((16 * 64 + 64) + (64 * 16 + 16))
    assert params.norms == 2 * 2 * 32 + 32  # LayerNorm: weight and bias
    assert params.total == 8704


def test_tiny_latent_attention_by_hand() -> None:
    params = count_parameters(tiny_mla())
    assert params.attention_q == 16 * 8 + 8 * 2 * 6  # q_a, q_b
    assert params.attention_kv_latent == 16 * 6  # the part of kv_a that makes the latent
    assert params.attention_k == 16 * 2 + 6 * 2 * 4  # kv_a's rotary key and kv_b's key heads
    assert params.attention_v == 6 * 2 * 4
    assert params.attention_o == 2 * 4 * 16
    assert params.norms == 16 + 16 + 8 + 6 + 16
    assert params.total == 5374


def test_biases_are_not_quantizable() -> None:
    params = count_parameters(tiny_gpt2())
    biases = 2 * (48 + 16 + 64 + 16)
    assert params.quantizable == params.attention + params.mlp - biases
