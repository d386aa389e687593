"""RFC3339 times as Armada and Kubernetes write them (log lines, ``since_time``)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$")


def rfc3339_nano(seconds: float) -> str:
    """``2026-11-21T05:02:32.123456789Z`` for epoch ``seconds``."""
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    stamp = datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def parse_rfc3339_ns(text: str) -> int:
    """Epoch nanoseconds of an RFC3339 time (exact: no float rounding)."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an RFC3339 time")
    head, digits, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    whole = int(datetime.fromisoformat(head.replace("t", "T").replace(" ", "T") + zone).timestamp())
    nanos = int((digits or "0")[:9].ljust(9, "0"))
    return whole * 1_000_000_000 + nanos


def parse_rfc3339(text: str) -> float:
    """Epoch seconds of an RFC3339 time with up to nanosecond precision."""
    return parse_rfc3339_ns(text) / 1e9


def whole_seconds(text: str) -> int:
    """An RFC3339 time truncated to whole epoch seconds, as Kubernetes' ``sinceTime``."""
    return parse_rfc3339_ns(text) // 1_000_000_000
