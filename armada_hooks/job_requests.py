"""Job requests as users give them, turned into Armada's ``JobSubmitRequestItem``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from armada_hooks.errors import ArmadaJobSpecError, ArmadaRpcError

if TYPE_CHECKING:
    from armada_client.armada import submit_pb2


def build_job_request_item(
    item: submit_pb2.JobSubmitRequestItem | Mapping[str, Any],
) -> submit_pb2.JobSubmitRequestItem:
    """A copy of ``item``; a dict in Armada's JSON form is parsed, naming any bad field."""
    from armada_client.armada import submit_pb2
    from google.protobuf import json_format

    if isinstance(item, submit_pb2.JobSubmitRequestItem):
        copy = submit_pb2.JobSubmitRequestItem()
        copy.CopyFrom(item)
        return copy
    if isinstance(item, Mapping):
        try:
            return json_format.ParseDict(dict(item), submit_pb2.JobSubmitRequestItem())
        except json_format.ParseError as exc:
            raise ArmadaJobSpecError(
                f"job request is not a valid JobSubmitRequestItem: {exc}"
            ) from None
    raise ArmadaJobSpecError(
        f"job request must be a JobSubmitRequestItem or a dict in its JSON form, "
        f"not {type(item).__name__}"
    )


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
