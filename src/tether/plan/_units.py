"""Byte and count units, and the short human forms the tables print."""

from __future__ import annotations

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4

GB = 10**9  # decimal: bandwidths and FLOP rates are quoted in powers of ten


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.50 KiB'``; binary units, as memory is sold and as the driver reports it."""
    for unit, size in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def format_count(n: float) -> str:
    """``6_738_415_616`` -> ``'6.74 B'``; decimal, as parameter counts are published."""
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def format_flops(n: float) -> str:
    """``2.5e12`` -> ``'2.50 TFLOP'``."""
    for unit, size in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}FLOP"
    return f"{n:.0f} FLOP"


def format_seconds(s: float) -> str:
    """Seconds in the unit that keeps the number readable."""
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    if s < 120:
        return f"{s:.2f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
