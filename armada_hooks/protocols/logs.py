"""``LogProtocol``: fetching a job's container log lines (Armada's Binoculars shape)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class LogLineLike(Protocol):
    """One log line: RFC3339Nano ``timestamp`` and the ``line`` text."""

    @property
    def timestamp(self) -> str:
        """When the line was written (RFC3339Nano)."""
        ...

    @property
    def line(self) -> str:
        """The text, without its newline."""
        ...


@runtime_checkable
class LogProtocol(Protocol):
    """Reads the log of a job's pod on one cluster.

    ``since_time`` (RFC3339) follows Kubernetes: lines stamped at or after it, truncated
    to whole seconds, so successive calls overlap and the caller de-duplicates.
    """

    def logs(
        self, job_id: str, since_time: str = "", pod_namespace: str = "default"
    ) -> Sequence[LogLineLike]:
        """The job's log lines from ``since_time`` on (all of them when empty)."""
        ...
