"""Building valid Armada job requests quickly, for tests, demos and benchmarks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from armada_client.armada import submit_pb2
from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1
from armada_client.k8s.io.apimachinery.pkg.api.resource import generated_pb2 as resource

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def job_request_item(
    command: Sequence[str] = ("sleep", "1"),
    *,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    namespace: str = "default",
    client_id: str = "",
    external_job_uri: str = "",
    priority: float = 1.0,
    cpu: str = "100m",
    memory: str = "64Mi",
    image: str = "busybox:latest",
    env: Mapping[str, str] | None = None,
    priority_class: str = "",
) -> submit_pb2.JobSubmitRequestItem:
    """A one-container ``JobSubmitRequestItem`` that Armada accepts (requests == limits).

    ``priority_class`` names the pod's priority class (Armada's ``armada-default`` when
    empty); only an ``armada-preemptible`` job is preempted when a user asks.
    """
    quantities = {"cpu": resource.Quantity(string=cpu), "memory": resource.Quantity(string=memory)}
    container = core_v1.Container(
        name="main",
        image=image,
        command=list(command),
        env=[core_v1.EnvVar(name=k, value=v) for k, v in (env or {}).items()],
        resources=core_v1.ResourceRequirements(requests=quantities, limits=quantities),
    )
    pod_spec = core_v1.PodSpec(containers=[container], restartPolicy="Never")
    if priority_class:  # unset otherwise, as a spec that names none
        pod_spec.priorityClassName = priority_class
    return submit_pb2.JobSubmitRequestItem(
        priority=priority,
        namespace=namespace,
        client_id=client_id,
        external_job_uri=external_job_uri,
        annotations=dict(annotations or {}),
        labels=dict(labels or {}),
        pod_spec=pod_spec,
    )
