"""Bytes of the weights under a number format.

Weight-only quantization (fp8, int8, int4, NF4) compresses the attention and MLP matrices; embeddings,
LM head, norms, biases and routers stay in 16 bits, as bitsandbytes, GPTQ and FP8 checkpoints keep them.
"""

from __future__ import annotations

from tether.plan._params import ParameterCount
from tether.plan._precision import PRECISION_NAMES, Precision, parse_precision

_KEPT = parse_precision("bf16")


def kept_precision(precision: Precision) -> Precision:
    """The format of the parameters a quantizer leaves alone."""
    return precision if precision.value_bits >= 16 else _KEPT


def weight_bytes(params: ParameterCount, precision: Precision) -> float:
    kept = params.total - params.quantizable
    return params.quantizable * precision.bytes_per_value + kept * kept_precision(precision).bytes_per_value


def weight_bytes_by_precision(
    params: ParameterCount, block_size: int | None = None, second_block_size: int | None = None
) -> dict[str, float]:
    """Every known format → bytes, for the comparison table."""
    return {
        name: weight_bytes(params, parse_precision(name, block_size=block_size, second_block_size=second_block_size))
        for name in PRECISION_NAMES
    }
