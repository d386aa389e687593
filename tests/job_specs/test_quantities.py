"""Kubernetes quantities, read as apimachinery's ParseQuantity reads them.

The accepted and refused strings follow k8s.io/apimachinery pkg/api/resource
(quantity.go's grammar and parser, suffix.go's suffixes, quantity_test.go's cases).
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from armada_hooks.job_specs.quantities import milli_value, quantity_text, quantity_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("100m", Fraction(1, 10)),
        ("64Mi", 64 * 2**20),
        ("1.5Gi", 1536 * 2**20),
        ("1", 1),
        ("+2Ki", 2048),
        ("-1", -1),
        ("1.", 1),  # <digits>. is a number
        (".5", Fraction(1, 2)),  # so is .<digits>
        ("1.G", 10**9),  # Kubernetes' own test accepts a bare dot before a suffix
        ("250n", Fraction(250, 10**9)),
        ("3u", Fraction(3, 10**6)),
        ("2k", 2000),
        ("1E", 10**18),  # E alone is exa, not an exponent
        ("1e3", 1000),
        ("1E3", 1000),
        ("1e+3", 1000),
        ("5e-1", Fraction(1, 2)),
        ("0.2", Fraction(1, 5)),
    ],
)
def test_kubernetes_quantities_are_read_to_their_exact_value(text: str, value: Fraction) -> None:
    assert quantity_text(text) == text
    assert quantity_value(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ten",
        "aoeu",
        "1.1.M",
        "1+1.0M",
        "0.1mi",  # suffixes are case-sensitive
        "0.1am",
        "1K",  # kilo is k; K only starts Ki
        "1ki",
        ".5i",
        "1i",
        "-3.01i",
        "-3.01e-",  # an exponent needs digits
        "1e",
        " 1",  # the protobuf decoder does not trim
        "1 ",
        "1e101",  # beyond MAX_EXPONENT: refused here, though Kubernetes would take it
    ],
)
def test_strings_outside_the_grammar_are_not_quantities(text: str) -> None:
    assert quantity_text(text) is None
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity_value(text)


@pytest.mark.parametrize(
    ("number", "text"),
    [(1, "1"), (0, "0"), (0.5, "0.5"), (0.2, "0.2"), (2.0, "2.0"), (1e-7, "0.0000001")],
)
def test_numbers_are_their_own_text_as_kubectl_sends_them(number: float, text: str) -> None:
    assert quantity_text(number) == text
    assert quantity_value(text) == Fraction(str(number))


@pytest.mark.parametrize("value", [True, False, None, float("inf"), float("nan"), [1], {"a": 1}])
def test_booleans_non_finite_numbers_and_containers_are_not_quantities(value: object) -> None:
    assert quantity_text(value) is None


@pytest.mark.parametrize(
    ("text", "milli"),
    [("1", 1000), ("1000m", 1000), ("0.5", 500), ("1n", 1), ("1.5Gi", 1536 * 2**20 * 1000)],
)
def test_milli_value_is_the_ceiling_of_a_thousand_times_the_amount(text: str, milli: int) -> None:
    assert milli_value(text) == milli
