"""Job requests as users give them, turned into Armada's ``JobSubmitRequestItem``.

The forms (a proto, a protobuf-JSON or Kubernetes-style dict, a pod spec, a Pod
manifest, a YAML/JSON or ``armadactl`` job file) are read by :mod:`armada_hooks.job_specs`;
this module puts the steps together, and holds the client-id and response rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from armada_hooks.errors import ArmadaJobSpecError, ArmadaRpcError
from armada_hooks.job_specs.files import parse_job_file
from armada_hooks.job_specs.forms import item_json
from armada_hooks.job_specs.resources import equalize_requests_and_limits

if TYPE_CHECKING:
    from armada_client.armada import submit_pb2

    from armada_hooks.job_specs.fields import Path


def build_job_request_item(
    item: submit_pb2.JobSubmitRequestItem | Mapping[str, Any], *, path: Path = ()
) -> submit_pb2.JobSubmitRequestItem:
    """A new ``JobSubmitRequestItem`` from a proto (copied) or a dict in any accepted form.

    A dict is a job item in protobuf-JSON or Kubernetes style, a bare pod spec, or a Pod
    manifest (:mod:`armada_hooks.job_specs.forms`). Resources given only as requests or
    only as limits are copied to the other side; a bad field raises
    :class:`ArmadaJobSpecError` naming its path (``path`` is where ``item`` starts).
    """
    from armada_client.armada import submit_pb2
    from google.protobuf import json_format

    if isinstance(item, submit_pb2.JobSubmitRequestItem):
        built = submit_pb2.JobSubmitRequestItem()
        built.CopyFrom(item)
        pod_paths: Sequence[Path] = [(*path, "podSpec")] if item.HasField("pod_spec") else []
        pod_paths = [*pod_paths, *((*path, "podSpecs", i) for i in range(len(item.pod_specs)))]
    elif isinstance(item, Mapping):
        read = item_json(item, path)
        try:
            built = json_format.ParseDict(read.json, submit_pb2.JobSubmitRequestItem())
        except json_format.ParseError as exc:  # a rule fields.py does not know
            raise ArmadaJobSpecError(
                f"job request is not a valid JobSubmitRequestItem: {exc}"
            ) from None
        pod_paths = read.pod_paths
    else:
        raise ArmadaJobSpecError(
            "job request must be a JobSubmitRequestItem or a dict (a job item, pod spec or "
            f"Pod manifest), not {type(item).__name__}"
        )
    equalize_requests_and_limits(built, pod_paths)
    return built


@dataclass(frozen=True)
class FileJobRequest:
    """The job a job file holds, and the queue and job set it names (None: not named)."""

    item: submit_pb2.JobSubmitRequestItem
    queue: str | None
    job_set_id: str | None


def build_from_job_file(text: str, name: str) -> FileJobRequest:
    """The job in ``text``, the (rendered) content of job file ``name``; errors name the file."""
    job_file = parse_job_file(text, name)
    try:
        item = build_job_request_item(job_file.request, path=job_file.path)
    except ArmadaJobSpecError as exc:
        raise ArmadaJobSpecError(f"{name}: {exc.message}") from None
    return FileJobRequest(item, job_file.queue, job_file.job_set_id)


def check_name(field: str, value: object) -> None:
    """Raise :class:`ArmadaJobSpecError` unless ``value`` is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ArmadaJobSpecError(f"{field} must be a non-empty string, got {value!r}")


def apply_client_ids(
    requests: Sequence[submit_pb2.JobSubmitRequestItem], client_ids: Sequence[str | None] | None
) -> bool:
    """Set each request's ``client_id`` from ``client_ids`` (None entries keep the item's).

    Returns whether every request now has one: then the submission is idempotent (Armada
    answers a repeat with the original job ids) and may be retried on any retryable code.
    """
    if not requests:
        raise ArmadaJobSpecError("a submission needs at least one job request item")
    if client_ids is not None:
        if len(client_ids) != len(requests):
            raise ValueError("client_ids must have one entry per item")
        for request, client_id in zip(requests, client_ids, strict=True):
            if client_id:
                request.client_id = client_id
    return all(r.client_id for r in requests)


def submitted_job_ids(
    response: submit_pb2.JobSubmitResponse, queue: str, expected: int
) -> list[str]:
    """The job ids of a SubmitJobs answer, in order; per-item errors and short answers raise."""
    items = list(response.job_response_items)
    errors = [f"item {i}: {item.error}" for i, item in enumerate(items) if item.error]
    if errors:
        raise ArmadaJobSpecError(
            f"Armada refused job request items in queue {queue!r}: {'; '.join(errors)}",
            method="SubmitJobs",
            code="INVALID_ARGUMENT",
        )
    if len(items) != expected or not all(item.job_id for item in items):
        raise ArmadaRpcError(
            f"Armada answered SubmitJobs with {len(items)} job ids for {expected} items",
            method="SubmitJobs",
        )
    return [item.job_id for item in items]
