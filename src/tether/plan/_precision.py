"""Number formats and what one stored value costs, quantization constants included.

Block-wise quantization (NF4, GPTQ-style int4) stores one scale per block of values; double
quantization (QLoRA) quantizes those scales again, in 8 bits, with one FP32 scale per block of scales:

    bits per value = value bits + constant bits / block + second constant bits / (block × second block)

so NF4 with blocks of 64 and FP32 constants costs 4 + 32/64 = 4.5 bits, and with double quantization
4 + 8/64 + 32/(64·256) ≈ 4.127 bits.
"""

from __future__ import annotations

from typing import Literal

from tether.plan._errors import PlanError
from tether.plan._record import Record

ComputeKind = Literal["fp32", "16bit", "fp8", "int8"]


class Precision(Record):
    """How one value is stored: its bits, and the quantization constants it shares with its block."""

    derived = ("bits_per_value",)

    name: str
    value_bits: int
    # values that share one first-level constant; None: one scale per tensor or row, too few to count
    block_size: int | None = None
    constant_bits: int = 0
    # double quantization: first-level constants that share one second-level constant
    second_block_size: int | None = None
    second_constant_bits: int = 0
    # the tensor-core rate a matmul in this format runs at; None: not a format to compute in
    compute: ComputeKind | None = None

    @property
    def bits_per_value(self) -> float:
        bits = float(self.value_bits)
        if self.block_size:
            bits += self.constant_bits / self.block_size
            if self.second_block_size:
                bits += self.second_constant_bits / (self.block_size * self.second_block_size)
        return bits

    @property
    def bytes_per_value(self) -> float:
        return self.bits_per_value / 8

    def describe(self) -> str:
        """``'nf4-dq (4.127 bits: blocks of 64, 8-bit constants, FP32 per 256)'``."""
        if not self.block_size:
            return f"{self.name} ({self.bits_per_value:g} bits)"
        detail = f"blocks of {self.block_size}, {self.constant_bits}-bit constants"
        if self.second_block_size:
            detail += f", FP32 per {self.second_block_size}"
        return f"{self.name} ({self.bits_per_value:.3f} bits: {detail})"


_PRECISIONS: dict[str, Precision] = {
    "fp32": Precision(name="fp32", value_bits=32, compute="fp32"),
    "bf16": Precision(name="bf16", value_bits=16, compute="16bit"),
    "fp16": Precision(name="fp16", value_bits=16, compute="16bit"),
    # FP8 (E4M3) with one scale per tensor, as in Transformer Engine and vLLM
    "fp8": Precision(name="fp8", value_bits=8, compute="fp8"),
    # LLM.int8()-style: one scale per row, which is too few to count against d_model values
    "int8": Precision(name="int8", value_bits=8, compute="int8"),
    # GPTQ/AWQ: groups of 128 with an FP16 scale and a 4-bit zero point each
    "int4": Precision(name="int4", value_bits=4, block_size=128, constant_bits=20),
    # bitsandbytes NF4: blocks of 64 with an FP32 absmax each
    "nf4": Precision(name="nf4", value_bits=4, block_size=64, constant_bits=32),
    # QLoRA double quantization: the absmax values in 8 bits, one FP32 constant per 256 of them
    "nf4-dq": Precision(
        name="nf4-dq", value_bits=4, block_size=64, constant_bits=8, second_block_size=256, second_constant_bits=32
    ),
}

_ALIASES = {
    "float32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "e4m3": "fp8",
    "float8": "fp8",
    "nf4dq": "nf4-dq",
    "nf4+dq": "nf4-dq",
    "qlora": "nf4-dq",
}

PRECISION_NAMES: tuple[str, ...] = tuple(_PRECISIONS)


def parse_precision(spec: str, *, block_size: int | None = None, second_block_size: int | None = None) -> Precision:
    """A precision by name (``bf16``, ``nf4-dq``…); block sizes override those of block-quantized formats."""
    key = _ALIASES.get(spec.strip().lower(), spec.strip().lower())
    if key not in _PRECISIONS:
        raise PlanError(f"unknown precision {spec!r}; known: {', '.join(PRECISION_NAMES)}")
    precision = _PRECISIONS[key]
    if (block_size is not None and block_size < 1) or (second_block_size is not None and second_block_size < 1):
        raise PlanError("quantization block sizes must be positive")
    changes: dict[str, int] = {}
    if precision.block_size and block_size is not None:
        changes["block_size"] = block_size
    if precision.second_block_size and second_block_size is not None:
        changes["second_block_size"] = second_block_size
    return precision.model_copy(update=changes) if changes else precision


def activation_precision(spec: str) -> Precision:
    """A precision activations can be computed in: a float format, or int8 (W8A8)."""
    precision = parse_precision(spec)
    if precision.compute is None:
        computable = ", ".join(name for name, p in _PRECISIONS.items() if p.compute is not None)
        raise PlanError(f"activations cannot be computed in {precision.name}; use one of {computable}")
    return precision
