"""Property-based checks of the local Armada's small parsers and formatters."""

from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from armada_hooks.testing.records import new_job_id
from armada_hooks.testing.store import message_id, message_seq
from armada_hooks.testing.validation import quantity_value
from armada_hooks.timestamps import parse_rfc3339, rfc3339_nano

EPOCH_SECONDS = st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False)
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


@given(EPOCH_SECONDS)
def test_log_timestamps_are_rfc3339_nano_and_parse_back(seconds: float) -> None:
    text = rfc3339_nano(seconds)
    assert RFC3339_NANO.match(text)
    assert math.isclose(parse_rfc3339(text), seconds, abs_tol=2e-6)


@given(EPOCH_SECONDS, EPOCH_SECONDS)
def test_log_timestamps_sort_like_the_times_they_stand_for(a: float, b: float) -> None:
    if rfc3339_nano(a) < rfc3339_nano(b):
        assert a < b


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=0, max_value=2**42))
def test_message_ids_carry_their_sequence(seq: int, created_ms: int) -> None:
    assert message_seq(message_id(seq, created_ms)) == seq


@given(st.text(max_size=20))
def test_foreign_message_ids_are_refused_or_understood(text: str) -> None:
    try:
        seq = message_seq(text)
    except ValueError:
        return
    assert text.split(":")[1] == str(seq) or int(text.split(":")[1]) == seq


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi"]),
)
def test_quantities_scale_by_their_suffix(number: int, suffix: str) -> None:
    scale = {
        "": 1,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "Ki": 1024,
        "Mi": 1024**2,
        "Gi": 1024**3,
    }
    value = quantity_value(f"{number}{suffix}", container="c", resource="r")
    assert math.isclose(value, number * scale[suffix])


def test_job_ids_look_like_armadas_and_are_unique() -> None:
    ids = [new_job_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)
