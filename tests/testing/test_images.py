"""A job whose image Kubernetes cannot use fails as Armada's executor fails it.

Followed: internal/executor/podchecks/container_state_checks.go and
config/executor/config.yaml (InvalidImageName: grace 0s, action Fail),
internal/executor/service/pod_issue_handler.go (the "unrecoverable problem" message),
internal/executor/service/cluster_allocation.go (a pod the API server refuses), and
Kubernetes' kubelet (image_manager.go) and ValidatePod, with distribution/reference's
grammar for image references.
"""

from __future__ import annotations

import pytest
from armada_client.armada import event_pb2, job_pb2
from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1

from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item
from armada_hooks.testing.images import reference_error, start_failure

pytestmark = pytest.mark.local_armada(time_scale=50)

QUEUE = "default"
SET = "images"


def invalid_image_reason(image: str, error: str, container: str = "main") -> str:
    return (
        "Unable to start pod - encountered an unrecoverable problem.\n"
        f"Container {container} has been in state Waiting for reason InvalidImageName "
        f'(Failed to apply default image tag "{image}": couldn\'t parse image reference '
        f'"{image}": {error} - check "check-0") for more than timeout 0s'
    )


@pytest.fixture
def run(local_armada, job_events):
    """Submit an item, wait for it to end; the client, its snapshot and its events."""

    def submit_and_wait(item):
        client = local_armada.client()
        job_id = client.submit_jobs(QUEUE, SET, [item]).job_response_items[0].job_id
        return client, local_armada.wait_for_state(job_id), job_events(job_id, SET)

    return submit_and_wait


@pytest.mark.parametrize(
    ("image", "error"),
    [
        ("busybox:latest", ""),
        ("python:3.11-slim", ""),
        ("ghcr.io/armadaproject/armada:v0.3", ""),
        ("localhost:5000/team/app@sha256:" + "a" * 64, ""),
        ("[::1]:5000/app:1", ""),
        (
            "BUSYBOX",
            "invalid reference format: repository name (library/BUSYBOX) must be lowercase",
        ),
        ("team/App:1", "invalid reference format: repository name (team/App) must be lowercase"),
        ("busybox:la test", "invalid reference format"),
        ("https://registry.example/app", "invalid reference format"),
        ("busy$box", "invalid reference format"),
        ("app:" + "t" * 129, "invalid reference format"),
        ("app@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("app@sha256:" + "a" * 40, "invalid checksum digest length"),
        ("app@sha256:" + "A" * 64, "invalid checksum digest format"),
        (
            "a" * 64,
            f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings",
        ),
        ("x/" + "a" * 254, "repository name must not be more than 255 characters"),
    ],
)
def test_image_references_follow_distribution_references_grammar(image, error) -> None:
    assert reference_error(image) == error


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (
            "BusyBox:1.36",
            "invalid reference format: repository name (library/BusyBox) must be lowercase",
        ),
        ("busybox::1", "invalid reference format"),
    ],
)
def test_an_invalid_image_fails_the_job_after_pending_with_reason_invalid_image_name(
    run, image, error
) -> None:
    client, done, events = run(job_request_item(image=image))

    reason = invalid_image_reason(image, error)
    assert (done.state, done.reason) == (JobState.FAILED, reason)
    assert [kind for kind, _ in events] == ["submitted", "queued", "leased", "pending", "failed"]
    failed = events[-1][1]
    assert (failed.reason, failed.cause) == (reason, event_pb2.Error)
    assert dict(failed.exit_codes) == {}
    assert client.get_job_errors([done.job_id]).job_errors[done.job_id] == reason
    [run_] = client.get_job_details([done.job_id]).job_details[done.job_id].job_runs
    assert run_.state == job_pb2.RUN_STATE_FAILED
    assert run_.HasField("pending_ts")
    assert not run_.HasField("started_ts")


@pytest.mark.parametrize(
    ("image", "detail"),
    [
        ("", "spec.containers[0].image: Required value"),
        (
            " busybox",
            'spec.containers[0].image: Invalid value: " busybox": '
            "must not have leading or trailing whitespace",
        ),
    ],
)
def test_an_image_the_api_server_refuses_fails_the_job_without_a_pod(run, image, detail) -> None:
    _, done, events = run(job_request_item(image=image))

    assert done.state is JobState.FAILED
    assert done.reason == f'Pod "armada-{done.job_id}-0" is invalid: {detail}'
    assert [kind for kind, _ in events] == ["submitted", "queued", "leased", "failed"]


def test_an_outcome_annotation_wins_over_the_image_check(run) -> None:
    item = job_request_item(image="BUSYBOX", annotations={"armada-hooks/outcome": "succeeded"})
    _, done, _ = run(item)
    assert done.state is JobState.SUCCEEDED


def test_a_bad_init_container_image_is_the_only_waiting_one() -> None:
    good, bad = "busybox:1", "Bad"
    pod = core_v1.PodSpec(
        containers=[core_v1.Container(name="main", image=good)],
        initContainers=[
            core_v1.Container(name="first", image=good),
            core_v1.Container(name="setup", image=bad),
            core_v1.Container(name="later", image=bad),
        ],
    )
    failure = start_failure(pod, "armada-x-0")
    assert failure is not None
    assert failure.pod_created
    error = "invalid reference format: repository name (library/Bad) must be lowercase"
    # One message per container status, app containers first, '' for those not failing.
    waiting = invalid_image_reason(bad, error, "setup").split("\n", 1)[1]
    assert failure.message.split("\n")[1:] == ["", "", waiting, ""]


def test_every_empty_image_is_named_by_the_api_server() -> None:
    pod = core_v1.PodSpec(
        containers=[core_v1.Container(name="a"), core_v1.Container(name="b", image=" x")],
        initContainers=[core_v1.Container(name="c")],
    )
    failure = start_failure(pod, "armada-x-0")
    assert failure is not None
    assert not failure.pod_created
    assert failure.message == (
        'Pod "armada-x-0" is invalid: [spec.containers[0].image: Required value, '
        "spec.initContainers[0].image: Required value, "
        'spec.containers[1].image: Invalid value: " x": must not have leading or trailing '
        "whitespace]"
    )
