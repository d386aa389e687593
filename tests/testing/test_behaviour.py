from __future__ import annotations

import pytest

from armada_hooks.testing.behaviour import (
    KNOWN_ANNOTATIONS,
    BehaviourError,
    JobBehaviour,
    behaviour_from_annotations,
    parse_duration,
)

DEFAULTS = JobBehaviour()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("250ms", 0.25), ("2h", 7200.0), (" 3 s ", 3.0)],
)
def test_durations_accept_plain_seconds_and_units(text: str, seconds: float) -> None:
    assert parse_duration(text, key="k") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "1d", "soon", "1.2.3s"])
def test_bad_durations_name_the_annotation(text: str) -> None:
    with pytest.raises(BehaviourError, match=r"annotation k=.* is not a duration"):
        parse_duration(text, key="k")


def test_no_armada_hooks_annotations_means_the_defaults() -> None:
    assert (
        behaviour_from_annotations({"team": "a", "armadaproject.io/x": "y"}, DEFAULTS) is DEFAULTS
    )


def test_every_annotation_changes_its_field() -> None:
    behaviour = behaviour_from_annotations(
        {
            "armada-hooks/runtime": "2m",
            "armada-hooks/queue-time": "5s",
            "armada-hooks/outcome": "Failed",
            "armada-hooks/exit-code": "7",
            "armada-hooks/failure-reason": "boom",
            "armada-hooks/log-lines": "9",
            "armada-hooks/lease-returns": "2",
            "armada-hooks/lost": "true",
            "armada-hooks/execution": "subprocess",
            "armada-hooks/cluster": "gpu-cluster",
        },
        DEFAULTS,
    )
    assert behaviour == JobBehaviour(
        runtime=120.0,
        queue_time=5.0,
        outcome="failed",
        exit_code=7,
        failure_reason="boom",
        log_lines=9,
        lease_returns=2,
        lost=True,
        execution="subprocess",
        cluster="gpu-cluster",
    )


def test_literal_logs_are_split_into_lines() -> None:
    behaviour = behaviour_from_annotations({"armada-hooks/logs": "one\ntwo\n"}, DEFAULTS)
    assert behaviour.log_text("job") == ("one", "two")


def test_generated_logs_name_the_job_and_count() -> None:
    assert JobBehaviour(log_lines=2).log_text("j1") == ("[j1] line 1 of 2", "[j1] line 2 of 2")


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("succeeded", ""),
        ("failed", "Container main exited with code 1"),
        ("preempted", "Preempted by the local Armada"),
        ("rejected", "Rejected by the local Armada"),
    ],
)
def test_default_reasons_per_outcome(outcome: str, reason: str) -> None:
    text = JobBehaviour(outcome=outcome).reason()  # type: ignore[arg-type]
    if reason:
        assert text.startswith(reason)
    else:
        assert text == ""


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"armada-hooks/lost": "maybe"}, "is not a boolean"),
        ({"armada-hooks/lease-returns": "-1"}, "must be >= 0"),
        ({"armada-hooks/execution": "docker"}, "must be one of simulate, subprocess"),
        ({"armada-hooks/cluster": " "}, "must not be empty"),
        ({"armada-hooks/colour": "red"}, "unknown annotation 'armada-hooks/colour'"),
    ],
)
def test_bad_annotations_raise_a_message_that_says_what_to_fix(
    annotations: dict[str, str], message: str
) -> None:
    with pytest.raises(BehaviourError, match=message):
        behaviour_from_annotations(annotations, DEFAULTS)


def test_unknown_annotation_error_lists_the_known_ones() -> None:
    with pytest.raises(BehaviourError) as excinfo:
        behaviour_from_annotations({"armada-hooks/nope": "1"}, DEFAULTS)
    assert all(key in str(excinfo.value) for key in KNOWN_ANNOTATIONS)


def test_negative_defaults_are_refused() -> None:
    with pytest.raises(BehaviourError, match="runtime must be >= 0"):
        JobBehaviour(runtime=-1)
