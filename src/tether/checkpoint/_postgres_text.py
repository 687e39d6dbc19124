"""JSON text in and out of ``jsonb``: the two things jsonb cannot hold, written in a form it can.

``jsonb`` keeps values, not text: object keys come back in jsonb's order (values compare equal),
and floats in exponent notation (jsonb would give ``1e+16`` back as the integer
``10000000000000000``) are written in positional notation with a fraction; the NUL character
(``\\u0000``, which jsonb refuses) is written as ``U+FFFE 0`` (with ``U+FFFE`` itself doubled).
``-0.0`` comes back as ``0.0``. Shared by the PostgreSQL saver and the workers' job store;
needs no psycopg.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["from_db", "to_db"]

_ESC = "\ufffe"  # a noncharacter: stands in for NUL, which jsonb cannot store
_NUL_TOKENS = re.compile(r"\\\\|\\u0000|\\u[fF]{3}[eE]|\ufffe")
_ESC_TOKENS = re.compile("\ufffe(.)", re.S)
_HAS_EXPONENT = re.compile(r"\d[eE][-+]?\d")
_STRING_OR_EXP_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?[eE][-+]?\d+)', re.S)


def _escape_nul(m: re.Match[str]) -> str:
    token = m.group(0)
    return token if token == "\\\\" else _ESC + "0" if token == "\\u0000" else _ESC + _ESC  # U+FFFE, raw or escaped


def _positional(m: re.Match[str]) -> str:
    number = m.group(1)
    if number is None:  # a string: left as it is
        return m.group(0)
    text = format(Decimal(number), "f")
    return text if "." in text else text + ".0"  # a fraction keeps it a float when jsonb gives it back


def to_db(text: str) -> str:
    """JSON text as jsonb can store it (see the module's docstring)."""
    if "\\u0000" in text or _ESC in text or "\\uf" in text or "\\uF" in text:
        text = _NUL_TOKENS.sub(_escape_nul, text)
    if _HAS_EXPONENT.search(text):
        text = _STRING_OR_EXP_NUMBER.sub(_positional, text)
    return text


def from_db(text: str) -> str:
    """The JSON text ``to_db`` was given, from what jsonb gives back."""
    if _ESC in text:
        return _ESC_TOKENS.sub(lambda m: "\\u0000" if m.group(1) == "0" else m.group(1), text)
    return text
