"""SubmitJobs validation, with the rules, order and messages of Armada's submit server.

Armada answers a bad request as a whole with INVALID_ARGUMENT and the first failing
rule's message (it never fills ``JobSubmitResponseItem.error``). An unknown or empty
queue is PERMISSION_DENIED, checked before anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from armada_client.armada import submit_pb2
    from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1

MAX_JOB_SET_ID_LENGTH = 1024  # Armada rejects ids of this length or longer
MAX_CLIENT_ID_LENGTH = 100
MAX_POD_SPEC_BYTES = 65535
PRIORITY_CLASSES = frozenset({"armada-default", "armada-preemptible", "armada-resilient"})

_UNITS = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


class SubmitValidationError(ValueError):
    """The request breaks one of Armada's submit rules; the message is Armada's."""


def parse_quantity(quantity: str) -> float:
    """The number a Kubernetes quantity (``"500m"``, ``"1Gi"``, ``"2e3"``) stands for.

    :raises ValueError: ``quantity`` is not a Kubernetes quantity.
    """
    text = quantity.strip()
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, scale = text[: -len(suffix)], _UNITS[suffix]
            break
    else:
        number, scale = text, 1
    try:
        return float(number) * scale
    except ValueError:
        raise ValueError(
            f"{quantity!r} is not a Kubernetes quantity (e.g. '500m', '2', '1Gi')"
        ) from None


def quantity_value(quantity: str, *, container: str, resource: str) -> float:
    """:func:`parse_quantity`, failing with the message Armada's submit check gives."""
    try:
        return parse_quantity(quantity)
    except ValueError:
        raise SubmitValidationError(
            f"container {container} defines {resource} with invalid quantity {quantity!r}"
        ) from None


def validate_request(request: submit_pb2.JobSubmitRequest) -> None:
    """Raise :class:`SubmitValidationError` for the first rule ``request`` breaks."""
    if not request.job_set_id:
        raise SubmitValidationError("job set id is a required field")
    if len(request.job_set_id) >= MAX_JOB_SET_ID_LENGTH:
        raise SubmitValidationError(
            f"job set id of length {len(request.job_set_id)} must be less than max "
            f"character length {MAX_JOB_SET_ID_LENGTH}"
        )
    for item in request.job_request_items:
        validate_item(item)


def validate_item(item: submit_pb2.JobSubmitRequestItem) -> None:
    """Raise :class:`SubmitValidationError` for the first rule ``item`` breaks."""
    if not item.namespace:
        raise SubmitValidationError("namespace is a required field")
    pod = single_pod_spec(item)
    size = pod.ByteSize()
    if size > MAX_POD_SPEC_BYTES:
        raise SubmitValidationError(
            f"Pod spec has a size of {size} bytes which is greater than the maximum allowed "
            f"size of {MAX_POD_SPEC_BYTES}"
        )
    if not pod.containers:
        raise SubmitValidationError("Pod spec must contain at least one container")
    for container in [*pod.initContainers, *pod.containers]:
        _validate_resources(container)
    if pod.priorityClassName and pod.priorityClassName not in PRIORITY_CLASSES:
        raise SubmitValidationError(f"priority class {pod.priorityClassName} is not supported")
    if len(item.client_id) > MAX_CLIENT_ID_LENGTH:
        raise SubmitValidationError(
            f"client id of length {len(item.client_id)} is greater than max allowed length of "
            f" {MAX_CLIENT_ID_LENGTH}"
        )


def single_pod_spec(item: submit_pb2.JobSubmitRequestItem) -> core_v1.PodSpec:
    """The item's one pod spec (``pod_spec``, or the only entry of ``pod_specs``)."""
    has_pod_spec = item.HasField("pod_spec")
    if has_pod_spec and len(item.pod_specs) > 0:
        raise SubmitValidationError(
            "PodSpec must be nil if PodSpecs is provided (i.e., these are exclusive)"
        )
    pod: core_v1.PodSpec
    if has_pod_spec:
        pod = item.pod_spec
        return pod
    if len(item.pod_specs) > 1:
        raise SubmitValidationError("Jobs with multiple pods are not supported")
    if len(item.pod_specs) == 1:
        pod = item.pod_specs[0]
        return pod
    raise SubmitValidationError("Job must contain at least one PodSpec")


def _quantities(entries: Iterable[tuple[str, Any]]) -> dict[str, str]:
    return {name: q.string for name, q in entries}


def _validate_resources(container: core_v1.Container) -> None:
    name = container.name
    requests = _quantities(container.resources.requests.items())
    limits = _quantities(container.resources.limits.items())
    if not requests and not limits:
        raise SubmitValidationError(f"container {name} has no resources specified")
    for resource, quantity in sorted(requests.items()):
        if quantity_value(quantity, container=name, resource=resource) < 0:
            raise SubmitValidationError(
                f"container {name} defines negative resource request ({quantity}) for "
                f"resource {resource}"
            )
    for resource, quantity in sorted(limits.items()):
        if quantity_value(quantity, container=name, resource=resource) < 0:
            raise SubmitValidationError(
                f"container {name} defines negative resource limit ({quantity}) for "
                f"resource {resource}"
            )
    if set(requests) != set(limits):
        missing = sorted(set(requests) - set(limits))
        if missing:
            raise SubmitValidationError(
                f"container {name} defines {missing[0]} for requests but not limits"
            )
        raise SubmitValidationError(
            f"container {name} defines different resources for requests and limits"
        )
    for resource in sorted(requests):
        request = quantity_value(requests[resource], container=name, resource=resource)
        limit = quantity_value(limits[resource], container=name, resource=resource)
        if limit < request:
            raise SubmitValidationError(
                f"container {name} defines {resource} with limits smaller than requests"
            )
        if limit > request:
            raise SubmitValidationError(
                f"container {name} defines {resource} with limits great than 1.00*requests"
            )
