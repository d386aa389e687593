"""Armada's requests == limits rule, applied before submitting.

The rule is Armada's submit validation (internal/server/submit/validation/submit_request.go,
``validateResources``): containers and init containers, compared by milli-value.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from armada_hooks.errors import ArmadaJobSpecError
from armada_hooks.job_requests import build_job_request_item
from armada_hooks.testing.specs import job_request_item
from armada_hooks.testing.validation import validate_item


def pod(*, init: dict[str, Any] | None = None, **resources: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox", "resources": resources}],
    }
    if init is not None:
        spec["initContainers"] = [{"name": "setup", "image": "busybox", "resources": init}]
    return spec


def amounts(quantities: Any) -> dict[str, str]:
    return {name: q.string for name, q in quantities.items()}


@pytest.mark.parametrize("given", ["requests", "limits"])
def test_a_one_sided_resource_is_copied_to_the_other_side_and_said_at_info(
    given: str, caplog: pytest.LogCaptureFixture
) -> None:
    missing = "limits" if given == "requests" else "requests"
    caplog.set_level(logging.INFO, logger="armada_hooks.job_specs.resources")
    built = build_job_request_item(pod(**{given: {"cpu": "250m", "nvidia.com/gpu": 1}}))

    resources = built.pod_spec.containers[0].resources
    assert amounts(resources.requests) == amounts(resources.limits)
    assert amounts(resources.limits) == {"cpu": "250m", "nvidia.com/gpu": "1"}
    validate_item(built)  # the local Armada, holding Armada's rules, accepts it
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    side = missing[:-1]
    assert any(f"'main': no cpu {side} given" in line and "(250m)" in line for line in lines)
    assert any(f"no nvidia.com/gpu {side} given" in line for line in lines)


def test_resources_each_given_on_one_side_are_each_completed() -> None:
    built = build_job_request_item(pod(requests={"cpu": "1"}, limits={"memory": "1Gi"}))
    resources = built.pod_spec.containers[0].resources
    assert amounts(resources.requests) == {"cpu": "1", "memory": "1Gi"}
    assert amounts(resources.limits) == {"cpu": "1", "memory": "1Gi"}


def test_equal_amounts_in_other_units_are_left_as_written() -> None:
    built = build_job_request_item(
        pod(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1000m", "memory": "1024Mi"})
    )
    resources = built.pod_spec.containers[0].resources
    assert amounts(resources.requests) == {"cpu": "1", "memory": "1Gi"}
    assert amounts(resources.limits) == {"cpu": "1000m", "memory": "1024Mi"}
    validate_item(built)


def test_differing_amounts_fail_naming_the_container_the_resource_and_why() -> None:
    with pytest.raises(ArmadaJobSpecError) as raised:
        build_job_request_item({"podSpec": pod(requests={"cpu": "1"}, limits={"cpu": "2"})})
    message = str(raised.value)
    assert message.startswith("podSpec.containers[0].resources: container 'main' ")
    assert "requests cpu 1 but limits it to 2" in message
    assert "requests equal its limits" in message
    assert "make them equal, or give only one" in message


def test_init_containers_follow_the_same_rule() -> None:
    spec = pod(requests={"cpu": "1"}, init={"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}})
    with pytest.raises(
        ArmadaJobSpecError,
        match=re.escape("initContainers[0].resources: container 'setup' requests cpu 500m"),
    ):
        build_job_request_item(spec)
    fixed = pod(requests={"cpu": "1"}, init={"limits": {"cpu": "500m"}})
    init = build_job_request_item(fixed).pod_spec.initContainers[0].resources
    assert amounts(init.requests) == {"cpu": "500m"}


def test_a_proto_gets_the_same_rule_without_being_changed() -> None:
    item = job_request_item()
    del item.pod_spec.containers[0].resources.limits["memory"]
    built = build_job_request_item(item)
    assert amounts(built.pod_spec.containers[0].resources.limits)["memory"] == "64Mi"
    assert "memory" not in item.pod_spec.containers[0].resources.limits


def test_a_container_without_resources_is_left_for_armada_to_refuse() -> None:
    built = build_job_request_item(pod())
    assert not built.pod_spec.containers[0].resources.requests
    with pytest.raises(ValueError, match="container main has no resources specified"):
        validate_item(built)
