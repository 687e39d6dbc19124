from __future__ import annotations

import pytest

from tether.plan import PRECISION_NAMES, PlanError, parse_precision
from tether.plan._precision import activation_precision


def test_plain_formats() -> None:
    assert parse_precision("fp32").bytes_per_value == 4
    assert parse_precision("bf16").bytes_per_value == 2
    assert parse_precision("float16").name == "fp16"
    assert parse_precision("fp8").bits_per_value == 8
    assert parse_precision("int8").bits_per_value == 8


def test_nf4_with_fp32_constants_costs_half_a_bit_more() -> None:
    nf4 = parse_precision("nf4")
    assert nf4.block_size == 64
    assert nf4.bits_per_value - 4 == pytest.approx(0.5)  # 32 bits / 64 values


def test_double_quantization_costs_about_0_127_bits() -> None:
    dq = parse_precision("nf4-dq")
    extra = dq.bits_per_value - 4
    assert extra == pytest.approx(8 / 64 + 32 / (64 * 256))
    assert extra == pytest.approx(0.127, abs=5e-4)


def test_block_sizes_can_change() -> None:
    assert parse_precision("nf4", block_size=128).bits_per_value == pytest.approx(4 + 32 / 128)
    dq = parse_precision("nf4-dq", block_size=32, second_block_size=128)
    assert dq.bits_per_value == pytest.approx(4 + 8 / 32 + 32 / (32 * 128))
    assert parse_precision("bf16", block_size=32).bits_per_value == 16  # unblocked formats ignore it
    assert parse_precision("int4").bits_per_value == pytest.approx(4 + 20 / 128)


def test_unknown_precision_lists_the_known_ones() -> None:
    with pytest.raises(PlanError, match="unknown precision 'fp5'") as info:
        parse_precision("fp5")
    for name in PRECISION_NAMES:
        assert name in str(info.value)


def test_activations_need_a_format_to_compute_in() -> None:
    assert activation_precision("bf16").compute == "16bit"
    with pytest.raises(PlanError, match="cannot be computed in nf4"):
        activation_precision("nf4")
    with pytest.raises(PlanError, match="positive"):
        parse_precision("nf4", block_size=0)
