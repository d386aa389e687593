"""Kubernetes resource quantities (``"100m"``, ``"64Mi"``, ``1``, ``0.5``), read as Kubernetes does.

The grammar is apimachinery's (``pkg/api/resource/quantity.go`` and ``suffix.go``): a
signed decimal number (``1``, ``1.5``, ``1.``, ``.5``) followed by nothing, a binary-SI
suffix (``Ki`` … ``Ei``), a decimal-SI suffix (``n u m k M G T P E``) or a decimal exponent
(``e3``, ``E-2``). No spaces: the protobuf decoder parses the string as it is. A YAML or
JSON number is its own text, as ``kubectl`` sends it.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}  # powers of two
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]?|[eE](?P<exponent>[+-]?[0-9]+))"
)
# Kubernetes takes any int32 exponent; we refuse those past 10^±100, far beyond any resource
# amount (Armada compares milli-values in an int64), so that exact values stay cheap.
MAX_EXPONENT = 100


def quantity_text(value: object) -> str | None:
    """``value`` as a quantity string, or None when it is not a Kubernetes quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f") if math.isfinite(value) else None
    if isinstance(value, str) and _parse(value) is not None:
        return value
    return None


def quantity_value(text: str) -> Fraction:
    """The exact amount ``text`` stands for (``"1.5Gi"`` → 1610612736)."""
    parsed = _parse(text)
    if parsed is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    return parsed


def milli_value(text: str) -> int:
    """``ceil(quantity * 1000)``: the figure Armada compares requests and limits by."""
    return math.ceil(quantity_value(text) * 1000)


def _parse(text: str) -> Fraction | None:
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    number = Fraction(Decimal(match["number"]))
    suffix = match["suffix"]
    if suffix in _BINARY:
        return number * 2 ** _BINARY[suffix]  # type: ignore[no-any-return]  # (Fraction ** int)
    exponent = int(match["exponent"]) if match["exponent"] is not None else _DECIMAL[suffix]
    if abs(exponent) > MAX_EXPONENT:
        return None
    return number * Fraction(10) ** exponent
