from __future__ import annotations

import pytest

from tether.plan import kv_cache, kv_cache_bytes, kv_values_per_token_per_layer, parse_precision, preset_architecture
from tether.plan._units import GB, KIB

from ._shapes import plain_decoder, tiny_llama, tiny_mla

BF16 = parse_precision("bf16")


def test_mha_cache_is_2_layers_d_model_bytes_per_token() -> None:
    arch = plain_decoder(d=1024, layers=8)
    assert kv_cache_bytes(arch, BF16, batch=1, context=1) == 2 * 8 * 1024 * 2 == 32 * KIB
    assert kv_cache_bytes(arch, BF16, batch=1, context=20) == 640 * KIB
    report = kv_cache(arch, BF16, batch=1, context=20)
    assert report.bytes_per_token == 32 * KIB
    assert report.total_bytes == 640 * KIB


def test_gpt3_cache() -> None:
    arch = preset_architecture("gpt-3-175b")
    values_per_token = arch.num_layers * kv_values_per_token_per_layer(arch)
    assert values_per_token == 2 * 96 * 96 * 128 == 2_359_296  # about 2.4 M
    two_k = kv_cache_bytes(arch, BF16, batch=1, context=2048)
    assert two_k == pytest.approx(9.66 * GB, rel=0.001)  # about 10 GB


def test_grouped_query_attention_divides_the_cache() -> None:
    mha, gqa = tiny_llama(num_kv_heads=4), tiny_llama(num_kv_heads=1)
    assert kv_cache_bytes(mha, BF16, 1, 100) == 4 * kv_cache_bytes(gqa, BF16, 1, 100)
    llama70 = preset_architecture("llama-2-70b")
    assert kv_cache(llama70, BF16, 1, 1).bytes_per_token == 2 * 80 * 8 * 128 * 2  # 320 KiB


def test_sliding_window_caps_the_cache() -> None:
    arch = tiny_llama(sliding_window=64, sliding_layers=2)
    assert kv_cache_bytes(arch, BF16, 1, 10_000) == kv_cache_bytes(arch, BF16, 1, 64)
    assert kv_cache_bytes(arch, BF16, 1, 32) == 32 * kv_cache_bytes(arch, BF16, 1, 1)
    half = tiny_llama(sliding_window=64, sliding_layers=1)  # one layer windowed, one full
    per_layer_token = kv_values_per_token_per_layer(half) * 2
    assert kv_cache_bytes(half, BF16, 1, 1000) == per_layer_token * (1000 + 64)
    mistral = kv_cache(preset_architecture("mistral-7b"), BF16, batch=2, context=32_768)
    assert mistral.cached_tokens_per_layer == {"sliding": 4096}


def test_latent_attention_caches_the_latent() -> None:
    assert kv_values_per_token_per_layer(tiny_mla()) == 6 + 2
    deepseek = preset_architecture("deepseek-v3")
    report = kv_cache(deepseek, BF16, batch=1, context=1)
    assert report.values_per_token_per_layer == 512 + 64
    assert report.bytes_per_token == 61 * 576 * 2
    assert "MLA" in report.layout


def test_cache_precision_and_batch_scale_linearly() -> None:
    arch = tiny_llama()
    fp8, nf4 = parse_precision("fp8"), parse_precision("nf4")
    assert kv_cache_bytes(arch, fp8, 3, 50) * 2 == kv_cache_bytes(arch, BF16, 3, 50)
    assert kv_cache_bytes(arch, BF16, 4, 50) == 4 * kv_cache_bytes(arch, BF16, 1, 50)
    assert kv_cache_bytes(arch, nf4, 1, 50) == pytest.approx(kv_cache_bytes(arch, BF16, 1, 50) * 4.5 / 16)
