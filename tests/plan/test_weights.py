from __future__ import annotations

import pytest

from tether.plan import count_parameters, parse_precision, preset_architecture, weight_bytes
from tether.plan._units import GIB
from tether.plan._weights import weight_bytes_by_precision


def test_16_bit_weights_are_two_bytes_a_parameter() -> None:
    params = count_parameters(preset_architecture("llama-2-7b"))
    assert weight_bytes(params, parse_precision("bf16")) == 2 * params.total
    assert weight_bytes(params, parse_precision("fp32")) == 4 * params.total


def test_quantization_keeps_embeddings_and_norms_in_16_bits() -> None:
    params = count_parameters(preset_architecture("llama-2-7b"))
    kept = params.total - params.quantizable
    assert kept == params.embeddings + params.lm_head + params.norms
    nf4 = weight_bytes(params, parse_precision("nf4"))
    assert nf4 == pytest.approx(params.quantizable * 4.5 / 8 + kept * 2)
    dq = weight_bytes(params, parse_precision("nf4-dq"))
    assert nf4 - dq == pytest.approx(params.quantizable * (0.5 - 0.127) / 8, rel=0.01)


def test_llama_70b_in_4_bits_is_about_35_gib() -> None:
    params = count_parameters(preset_architecture("llama-2-70b"))
    table = weight_bytes_by_precision(params)
    assert table["bf16"] / GIB == pytest.approx(128.5, abs=0.1)
    assert 32 < table["nf4-dq"] / GIB < 35
    assert table["fp32"] > table["bf16"] > table["int8"] > table["nf4"] > table["int4"] > table["nf4-dq"]
