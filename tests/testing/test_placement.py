"""Where a job lands on the simulated nodes, and the jobs Armada's submission check rejects.

Followed: internal/scheduler/submitcheck.go (the rejection and its reason),
internal/scheduler/scheduling/context/pod.go (the reason's table), nodedb/nodedb.go
(nodes skipped for lack of resources), internal/common/resource/resource.go
(TotalPodResourceRequest), internal/server/event/conversion/conversions.go (JobRejected
becomes a failed event with cause Rejected).
"""

from __future__ import annotations

import pytest
from armada_client.armada import event_pb2, submit_pb2
from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1
from armada_client.k8s.io.apimachinery.pkg.api.resource import generated_pb2 as resource

from armada_hooks.states import JobState
from armada_hooks.testing import LocalArmada, job_request_item
from armada_hooks.testing.cluster import (
    DEFAULT_NODES,
    Node,
    NodeConfigError,
    parse_node,
    pod_requests,
)

pytestmark = pytest.mark.local_armada(time_scale=50)

QUEUE = "default"
SET = "placement"


def one_node_rejection(nodes: int = 1) -> str:
    return (
        "pool default:\n"
        "Node:                       none\n"
        f"Number of nodes in cluster: {nodes}\n"
        "Excluded nodes:\n"
        f" {nodes}: insufficient resources available\n"
        "\n---\n"
    )


def submit(armada: LocalArmada, item: submit_pb2.JobSubmitRequestItem) -> str:
    response = armada.client().submit_jobs(QUEUE, SET, [item])
    return response.job_response_items[0].job_id


def with_resource(item: submit_pb2.JobSubmitRequestItem, name: str, quantity: str):
    """``item`` also requesting (and limited to) ``quantity`` of ``name``."""
    resources = item.pod_spec.containers[0].resources
    for requirements in (resources.requests, resources.limits):
        requirements[name].CopyFrom(resource.Quantity(string=quantity))
    return item


def test_a_job_larger_than_every_node_is_rejected_with_armadas_reason(
    local_armada, job_events
) -> None:
    job_id = submit(local_armada, job_request_item(cpu="64", memory="1Gi"))

    done = local_armada.wait_for_state(job_id)

    assert done.state is JobState.REJECTED
    assert done.reason == one_node_rejection()
    events = job_events(job_id, SET)
    assert [kind for kind, _ in events] == ["submitted", "queued", "failed"]
    failed = events[-1][1]
    assert failed.cause == event_pb2.Rejected
    assert failed.reason == one_node_rejection()
    client = local_armada.client()
    assert client.get_job_errors([job_id]).job_errors[job_id] == one_node_rejection()


@pytest.mark.parametrize(
    ("cpu", "memory", "state"),
    [
        ("8", "32Gi", JobState.SUCCEEDED),
        ("100m", "64Mi", JobState.SUCCEEDED),
        ("8", "33Gi", JobState.REJECTED),
        ("9", "1Gi", JobState.REJECTED),
    ],
)
def test_a_job_fits_when_every_request_is_within_one_node(local_armada, cpu, memory, state) -> None:
    # The default node: 8 CPUs, 32Gi memory, 100Gi ephemeral storage, no GPUs.
    job_id = submit(local_armada, job_request_item(cpu=cpu, memory=memory))
    assert local_armada.wait_for_state(job_id).state is state


def test_a_gpu_job_is_rejected_by_the_default_gpu_less_node(local_armada) -> None:
    item = with_resource(job_request_item(), "nvidia.com/gpu", "1")
    done = local_armada.wait_for_state(submit(local_armada, item))
    assert (done.state, done.reason) == (JobState.REJECTED, one_node_rejection())


def test_a_job_requesting_an_unsupported_resource_is_rejected_naming_it(local_armada) -> None:
    # internaltypes/resource_list_factory.go, FromJobResourceListFailOnUnknown
    item = with_resource(job_request_item(), "example.com/fpga", "1")
    done = local_armada.wait_for_state(submit(local_armada, item))
    assert done.state is JobState.REJECTED
    assert done.reason == (
        'invalid resource request: resource type "example.com/fpga" is not supported (if you '
        "want to use it, add to supported resource types or floating resources in the "
        "scheduler config)"
    )


@pytest.mark.local_armada(
    time_scale=50,
    nodes=[
        Node("small", {"cpu": "2", "memory": "4Gi"}),
        Node("big", {"cpu": "32", "memory": "128Gi"}),
    ],
)
def test_nodes_are_configurable_and_a_job_runs_on_one_it_fits(local_armada) -> None:
    small = local_armada.wait_for_state(submit(local_armada, job_request_item(cpu="1")))
    big = local_armada.wait_for_state(submit(local_armada, job_request_item(cpu="16")))
    too_big = local_armada.wait_for_state(submit(local_armada, job_request_item(cpu="64")))

    details = local_armada.client().get_job_details([small.job_id, big.job_id])
    nodes = {i: d.job_runs[-1].node for i, d in details.job_details.items()}
    assert nodes == {small.job_id: "small", big.job_id: "big"}
    assert (small.state, big.state) == (JobState.SUCCEEDED, JobState.SUCCEEDED)
    assert (too_big.state, too_big.reason) == (JobState.REJECTED, one_node_rejection(2))


@pytest.mark.local_armada(
    time_scale=50,
    nodes=[Node("gpu-node", {"cpu": "16", "memory": "64Gi", "example.com/fpga": "2"})],
)
def test_a_resource_a_configured_node_has_is_supported(local_armada) -> None:
    item = with_resource(job_request_item(), "example.com/fpga", "2")
    assert local_armada.wait_for_state(submit(local_armada, item)).state is JobState.SUCCEEDED


def test_an_outcome_annotation_wins_over_the_submission_check(local_armada) -> None:
    item = job_request_item(cpu="64", annotations={"armada-hooks/outcome": "succeeded"})
    assert local_armada.wait_for_state(submit(local_armada, item)).state is JobState.SUCCEEDED


def test_init_containers_count_at_their_peak_and_app_containers_add_up() -> None:
    quantities = {"cpu": resource.Quantity(string="3")}
    needs = core_v1.ResourceRequirements(requests=quantities, limits=quantities)
    pod = core_v1.PodSpec(
        containers=[core_v1.Container(name=n, resources=needs) for n in ("a", "b")],
        initContainers=[
            core_v1.Container(name="setup", resources=needs),
            core_v1.Container(name="sidecar", resources=needs, restartPolicy="Always"),
        ],
    )
    assert pod_requests(pod) == {"cpu": 9.0}


def test_node_specs_parse_from_text() -> None:
    assert parse_node("big:cpu=64,memory=256Gi") == Node("big", {"cpu": "64", "memory": "256Gi"})
    assert parse_node("cpu=4", default_name="n2") == Node("n2", {"cpu": "4"})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: parse_node("cpu"), "'cpu' is not RESOURCE=QUANTITY"),
        (lambda: Node("n", {"cpu": "lots"}), "node n: cpu: 'lots' is not a Kubernetes quantity"),
        (lambda: Node("n", {"cpu": "-1"}), "node n: cpu must be >= 0"),
        (lambda: LocalArmada(nodes=[]), "needs at least one node"),
        (lambda: LocalArmada(nodes=[*DEFAULT_NODES, *DEFAULT_NODES]), "must be distinct"),
    ],
)
def test_bad_node_configuration_says_what_to_fix(make, message) -> None:
    with pytest.raises(NodeConfigError, match=message):
        make()
