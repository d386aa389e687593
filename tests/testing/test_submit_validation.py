"""SubmitJobs validation of the local Armada, driven through the real ``ArmadaClient``.

Each rule of ``armada_hooks/testing/validation.py`` and the queue checks of
``submit_service.py``: a bad request is refused as a whole with the rule's status code
and a message naming what is wrong; the boundary case just inside each rule is accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
from armada_client.armada import event_pb2, submit_pb2
from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1
from armada_client.k8s.io.apimachinery.pkg.api.resource import generated_pb2 as resource

from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from armada_client.client import ArmadaClient

    from armada_hooks.testing import LocalArmada

pytestmark = pytest.mark.local_armada(time_scale=50)

QUEUE = "default"
JOB_SET = "validation-set"


# -- request builders ----------------------------------------------------------


def _quantities(values: Mapping[str, str]) -> dict[str, resource.Quantity]:
    return {name: resource.Quantity(string=value) for name, value in values.items()}


def _container(
    name: str = "main",
    *,
    requests: Mapping[str, str] | None = None,
    limits: Mapping[str, str] | None = None,
) -> core_v1.Container:
    return core_v1.Container(
        name=name,
        image="busybox:latest",
        command=["sleep", "1"],
        resources=core_v1.ResourceRequirements(
            requests=_quantities(requests or {}), limits=_quantities(limits or {})
        ),
    )


def _pod(
    containers: Sequence[core_v1.Container] | None = None,
    *,
    init_containers: Sequence[core_v1.Container] = (),
) -> core_v1.PodSpec:
    if containers is None:
        containers = [_container(requests={"cpu": "1"}, limits={"cpu": "1"})]
    return core_v1.PodSpec(
        containers=list(containers), initContainers=list(init_containers), restartPolicy="Never"
    )


def _item_with_pod(pod: core_v1.PodSpec) -> submit_pb2.JobSubmitRequestItem:
    return submit_pb2.JobSubmitRequestItem(namespace="default", priority=1.0, pod_spec=pod)


def _item_with_resources(
    requests: Mapping[str, str], limits: Mapping[str, str]
) -> submit_pb2.JobSubmitRequestItem:
    return _item_with_pod(_pod([_container(requests=requests, limits=limits)]))


def _item_with_priority_class(name: str) -> submit_pb2.JobSubmitRequestItem:
    item = job_request_item(["true"])
    item.pod_spec.priorityClassName = name
    return item


# -- assertions -----------------------------------------------------------------


def _reject(
    client: ArmadaClient,
    items: Sequence[submit_pb2.JobSubmitRequestItem],
    *,
    queue: str = QUEUE,
    job_set_id: str = JOB_SET,
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as excinfo:
        client.submit_jobs(queue, job_set_id, list(items))
    return excinfo.value


def _assert_invalid(
    armada: LocalArmada,
    client: ArmadaClient,
    items: Sequence[submit_pb2.JobSubmitRequestItem],
    *fragments: str,
    job_set_id: str = JOB_SET,
) -> None:
    exc = _reject(client, items, job_set_id=job_set_id)
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, exc.details()
    for fragment in fragments:
        assert fragment in exc.details()
    assert armada.jobs() == []


def _assert_accepted(
    armada: LocalArmada,
    client: ArmadaClient,
    items: Sequence[submit_pb2.JobSubmitRequestItem],
    *,
    queue: str = QUEUE,
    job_set_id: str = JOB_SET,
) -> list[str]:
    response = client.submit_jobs(queue, job_set_id, list(items))
    job_ids = [r.job_id for r in response.job_response_items]
    assert len(job_ids) == len(items)
    assert all(job_ids)
    assert all(not r.error for r in response.job_response_items)
    for job_id in job_ids:
        job = armada.job(job_id)
        assert (job.queue, job.job_set_id) == (queue, job_set_id)
    return job_ids


def _job_set_events(
    client: ArmadaClient, queue: str, job_set_id: str
) -> list[event_pb2.EventStreamMessage]:
    request = event_pb2.JobSetRequest(queue=queue, id=job_set_id, watch=False)
    return list(client.event_stub.GetJobSetEvents(request))


# -- job set -------------------------------------------------------------------


def test_a_missing_job_set_id_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [job_request_item()],
        "job set id is a required field",
        job_set_id="",
    )


def test_a_job_set_id_of_1024_characters_is_too_long(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [job_request_item()],
        "job set id of length 1024",
        "1024",
        job_set_id="s" * 1024,
    )


def test_a_job_set_id_of_1023_characters_is_accepted(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_accepted(local_armada, local_armada_client, [job_request_item()], job_set_id="s" * 1023)


# -- namespace and pod specs ------------------------------------------------------


def test_a_missing_namespace_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [job_request_item(namespace="")],
        "namespace is a required field",
    )


def test_an_item_without_a_pod_spec_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    item = submit_pb2.JobSubmitRequestItem(namespace="default", priority=1.0)
    _assert_invalid(
        local_armada, local_armada_client, [item], "Job must contain at least one PodSpec"
    )


def test_pod_spec_and_pod_specs_together_are_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    item = submit_pb2.JobSubmitRequestItem(
        namespace="default", priority=1.0, pod_spec=_pod(), pod_specs=[_pod()]
    )
    _assert_invalid(
        local_armada,
        local_armada_client,
        [item],
        "PodSpec must be nil if PodSpecs is provided",
    )


def test_more_than_one_pod_spec_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    item = submit_pb2.JobSubmitRequestItem(
        namespace="default", priority=1.0, pod_specs=[_pod(), _pod()]
    )
    _assert_invalid(
        local_armada, local_armada_client, [item], "Jobs with multiple pods are not supported"
    )


def test_a_single_entry_in_pod_specs_is_accepted(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    item = submit_pb2.JobSubmitRequestItem(namespace="default", priority=1.0, pod_specs=[_pod()])
    _assert_accepted(local_armada, local_armada_client, [item])


def test_a_pod_spec_without_containers_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_pod(core_v1.PodSpec(restartPolicy="Never"))],
        "Pod spec must contain at least one container",
    )


def test_a_pod_spec_larger_than_65535_bytes_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    item = job_request_item(["echo", "x" * 70_000])
    _assert_invalid(
        local_armada,
        local_armada_client,
        [item],
        f"Pod spec has a size of {item.pod_spec.ByteSize()} bytes",
        "maximum allowed size of 65535",
    )


# -- resources --------------------------------------------------------------------


def test_a_container_without_resources_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_pod(_pod([_container("worker")]))],
        "container worker has no resources specified",
    )


@pytest.mark.parametrize(
    ("requests", "limits", "message"),
    [
        pytest.param(
            {"cpu": "1", "memory": "1Gi"},
            {"cpu": "2", "memory": "1Gi"},
            "container main defines cpu with limits great than 1.00*requests",
            id="limit-greater-than-request",
        ),
        pytest.param(
            {"cpu": "1", "memory": "1Gi"},
            {"cpu": "1", "memory": "512Mi"},
            "container main defines memory with limits smaller than requests",
            id="limit-smaller-than-request",
        ),
        pytest.param(
            {"cpu": "1", "memory": "1Gi"},
            {"cpu": "1"},
            "container main defines memory for requests but not limits",
            id="resource-only-in-requests",
        ),
        pytest.param(
            {"cpu": "1"},
            {"cpu": "1", "memory": "1Gi"},
            "container main defines different resources for requests and limits",
            id="different-resource-sets",
        ),
    ],
)
def test_requests_must_equal_limits(
    local_armada: LocalArmada,
    local_armada_client: ArmadaClient,
    requests: dict[str, str],
    limits: dict[str, str],
    message: str,
) -> None:
    _assert_invalid(
        local_armada, local_armada_client, [_item_with_resources(requests, limits)], message
    )


def test_requests_equal_to_limits_in_other_units_are_accepted(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    item = _item_with_resources({"cpu": "1", "memory": "1Gi"}, {"cpu": "1000m", "memory": "1024Mi"})
    _assert_accepted(local_armada, local_armada_client, [item])


def test_a_negative_request_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_resources({"cpu": "-1"}, {"cpu": "-1"})],
        "container main defines negative resource request (-1) for resource cpu",
    )


def test_a_negative_limit_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_resources({"memory": "64Mi"}, {"memory": "-64Mi"})],
        "container main defines negative resource limit (-64Mi) for resource memory",
    )


def test_an_unparseable_quantity_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_resources({"cpu": "lots"}, {"cpu": "lots"})],
        "container main defines cpu with invalid quantity 'lots'",
    )


def test_init_container_resources_are_validated_too(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    pod = _pod(init_containers=[_container("setup", requests={"cpu": "1"}, limits={"cpu": "2"})])
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_pod(pod)],
        "container setup defines cpu with limits great than 1.00*requests",
    )


def test_an_init_container_without_resources_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    pod = _pod(init_containers=[_container("setup")])
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_pod(pod)],
        "container setup has no resources specified",
    )


# -- client id and priority class -------------------------------------------------


def test_a_client_id_of_101_characters_is_too_long(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [job_request_item(client_id="c" * 101)],
        "client id of length 101",
        "100",
    )


def test_a_client_id_of_100_characters_is_accepted(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    (job_id,) = _assert_accepted(
        local_armada, local_armada_client, [job_request_item(client_id="c" * 100)]
    )
    assert local_armada.job(job_id).client_id == "c" * 100


def test_an_unknown_priority_class_is_invalid(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    _assert_invalid(
        local_armada,
        local_armada_client,
        [_item_with_priority_class("armada-urgent")],
        "priority class armada-urgent is not supported",
    )


@pytest.mark.parametrize(
    "priority_class", ["armada-default", "armada-preemptible", "armada-resilient"]
)
def test_armadas_priority_classes_are_accepted(
    local_armada: LocalArmada, local_armada_client: ArmadaClient, priority_class: str
) -> None:
    _assert_accepted(local_armada, local_armada_client, [_item_with_priority_class(priority_class)])


# -- queues -------------------------------------------------------------------------


def test_an_unknown_queue_is_permission_denied(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    exc = _reject(local_armada_client, [job_request_item()], queue="nobody-made-this")
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    assert exc.details().startswith('could not find queue "nobody-made-this"')  # Armada's text
    # then how to create it, for the local Armada
    assert "local_armada.create_queue('nobody-made-this')" in exc.details()
    assert "--queue nobody-made-this" in exc.details()
    assert local_armada.jobs() == []


def test_an_empty_queue_name_is_permission_denied(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    exc = _reject(local_armada_client, [job_request_item()], queue="")
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    assert 'could not find queue ""' in exc.details()
    assert local_armada.jobs() == []


def test_the_queue_is_checked_before_the_request_is_validated(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    exc = _reject(
        local_armada_client, [job_request_item(namespace="")], queue="missing", job_set_id=""
    )
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    assert 'could not find queue "missing"' in exc.details()


@pytest.mark.local_armada(auto_create_queues=True, time_scale=50)
def test_auto_create_queues_creates_an_unknown_queue_and_accepts_the_job(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    (job_id,) = _assert_accepted(
        local_armada,
        local_armada_client,
        [job_request_item(["true"], annotations={"armada-hooks/runtime": "1s"})],
        queue="fresh-team",
    )
    queue = local_armada_client.get_queue("fresh-team")
    assert queue.name == "fresh-team"
    assert queue.priority_factor > 0
    done = local_armada.wait_for_state(job_id, timeout=10)
    assert done.state is JobState.SUCCEEDED
    assert done.queue == "fresh-team"


@pytest.mark.local_armada(auto_create_queues=True, time_scale=50)
def test_auto_create_queues_still_refuses_an_empty_queue_name(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    exc = _reject(local_armada_client, [job_request_item()], queue="")
    assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
    assert 'could not find queue ""' in exc.details()
    assert local_armada.jobs() == []


# -- whole-request semantics ------------------------------------------------------


def test_one_bad_item_rejects_the_whole_request(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    good = job_request_item(["true"], client_id="good-one")
    bad = job_request_item(["true"], namespace="")
    exc = _reject(local_armada_client, [good, bad], job_set_id="all-or-nothing")
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "namespace is a required field" in exc.details()
    assert local_armada.jobs() == []
    with pytest.raises(grpc.RpcError) as missing:
        list(
            local_armada_client.event_stub.GetJobSetEvents(
                event_pb2.JobSetRequest(
                    queue=QUEUE, id="all-or-nothing", watch=False, errorIfMissing=True
                )
            )
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert "all-or-nothing" in missing.value.details()
    assert _job_set_events(local_armada_client, QUEUE, "all-or-nothing") == []
    # The good item's client id was not recorded: submitting it alone makes a new job.
    (job_id,) = _assert_accepted(
        local_armada, local_armada_client, [good], job_set_id="all-or-nothing"
    )
    assert [j.job_id for j in local_armada.jobs()] == [job_id]


def test_reading_a_missing_job_set_does_not_make_it_exist(
    local_armada_client: ArmadaClient,
) -> None:
    assert _job_set_events(local_armada_client, QUEUE, "never-used") == []
    with pytest.raises(grpc.RpcError) as missing:
        list(
            local_armada_client.event_stub.GetJobSetEvents(
                event_pb2.JobSetRequest(queue=QUEUE, id="never-used", errorIfMissing=True)
            )
        )
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.local_armada(auto_create_queues=True)
def test_an_invalid_request_to_an_unknown_queue_creates_no_queue(
    local_armada_client: ArmadaClient,
) -> None:
    exc = _reject(local_armada_client, [job_request_item(namespace="")], queue="brand-new")
    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as missing:
        local_armada_client.get_queue("brand-new")
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


def test_an_empty_list_of_items_is_accepted_and_creates_no_jobs(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    response = local_armada_client.submit_jobs(QUEUE, "empty-set", [])
    assert list(response.job_response_items) == []
    assert local_armada.jobs() == []
    assert _job_set_events(local_armada_client, QUEUE, "empty-set") == []


# -- armada-hooks/* annotations ------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param("armada-hooks/runtime", "soon", "is not a duration", id="bad-duration"),
        pytest.param("armada-hooks/outcome", "exploded", "must be one of", id="unknown-outcome"),
        pytest.param("armada-hooks/colour", "blue", "unknown annotation", id="unknown-key"),
        pytest.param(
            "armada-hooks/exit-code", "one", "is not an integer", id="non-integer-exit-code"
        ),
    ],
)
def test_a_malformed_armada_hooks_annotation_is_invalid(
    local_armada: LocalArmada,
    local_armada_client: ArmadaClient,
    key: str,
    value: str,
    message: str,
) -> None:
    item = job_request_item(annotations={key: value})
    _assert_invalid(local_armada, local_armada_client, [item], key, message)


def test_annotations_outside_the_armada_hooks_prefix_are_left_alone(
    local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    item = job_request_item(annotations={"example.com/colour": "blue", "runtime": "soon"})
    _assert_accepted(local_armada, local_armada_client, [item])
