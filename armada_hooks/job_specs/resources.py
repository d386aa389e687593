"""Armada's rule that a container's resource requests equal its limits, applied for the user.

Armada's submit validation (``internal/server/submit/validation/submit_request.go``,
``validateResources``) checks every container and init container: the same resources in
requests and limits, and for each, ``limit.MilliValue()`` neither below nor above
``request.MilliValue()`` (an oversubscription factor of 1, the default). So a resource
given on one side only is copied to the other, as a user who wrote ``limits`` alone
expects, and said so at INFO; amounts that differ are refused here, before any RPC.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from armada_hooks.job_specs.fields import Path, show, spec_error
from armada_hooks.job_specs.quantities import milli_value, quantity_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from armada_client.armada import submit_pb2
    from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1

log = logging.getLogger(__name__)


def equalize_requests_and_limits(
    item: submit_pb2.JobSubmitRequestItem, pod_paths: Sequence[Path]
) -> None:
    """Copy one-sided resources across in ``item``; raise where requests and limits differ.

    ``pod_paths`` says where each pod spec (``pod_spec``, then ``pod_specs``) was in the
    user's request, for the error messages.
    """
    pods = [item.pod_spec] if item.HasField("pod_spec") else []
    pods += list(item.pod_specs)
    for pod, pod_path in zip(pods, pod_paths, strict=True):
        for kind, containers in (
            ("containers", pod.containers),
            ("initContainers", pod.initContainers),
        ):
            for index, container in enumerate(containers):
                _equalize(container, (*pod_path, kind, index))


def _equalize(container: core_v1.Container, path: Path) -> None:
    requests, limits = container.resources.requests, container.resources.limits
    resources_path = (*path, "resources")
    for name in sorted({*requests, *limits}):
        for side, quantities in (("requests", requests), ("limits", limits)):
            if name in quantities and quantity_text(quantities[name].string) is None:
                problem = f"{show(quantities[name].string)} is not a Kubernetes quantity"
                raise spec_error((*resources_path, side, name), problem)
        if name not in limits:
            limits[name].CopyFrom(requests[name])
            _said(container.name, name, "limit", "request", requests[name].string)
        elif name not in requests:
            requests[name].CopyFrom(limits[name])
            _said(container.name, name, "request", "limit", limits[name].string)
        elif milli_value(requests[name].string) != milli_value(limits[name].string):
            raise spec_error(
                resources_path,
                f"container {container.name!r} requests {name} {requests[name].string} but "
                f"limits it to {limits[name].string}: Armada runs a container only when its "
                "requests equal its limits; make them equal, or give only one of the two",
            )


def _said(container: str, resource: str, missing: str, given: str, amount: str) -> None:
    log.info(
        "Container %r: no %s %s given, so it is set to the %s (%s), since Armada needs "
        "requests equal to limits",
        container,
        resource,
        missing,
        given,
        amount,
    )
