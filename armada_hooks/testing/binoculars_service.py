"""Armada's Binoculars (``binoculars.Binoculars``): a job's container log, as Kubernetes gives it.

Like Binoculars over ``kubectl logs --timestamps --since-time``: ``since_time`` is
RFC3339Nano and Kubernetes keeps lines stamped at or after it *truncated to whole
seconds*, so consecutive calls overlap and a client must drop lines it has seen.
An unparsable ``since_time`` is ignored (Binoculars logs a warning and returns all).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import grpc
from armada_client.armada import binoculars_pb2, binoculars_pb2_grpc

from armada_hooks.testing.events import pod_name
from armada_hooks.timestamps import rfc3339_nano, whole_seconds

if TYPE_CHECKING:
    from armada_hooks.testing.core import Core


class BinocularsService(binoculars_pb2_grpc.BinocularsServicer):
    """``binoculars.Binoculars``: Logs."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def Logs(
        self, request: binoculars_pb2.LogRequest, context: grpc.ServicerContext
    ) -> binoculars_pb2.LogResponse:
        """The job's log lines so far, from ``since_time`` (whole seconds, inclusive) on."""
        namespace = request.pod_namespace or "default"
        pod = pod_name(request.job_id, request.pod_number)
        since = -math.inf
        if request.since_time:
            try:
                since = whole_seconds(request.since_time)
            except ValueError:
                since = -math.inf
        with self.core.store.lock:
            job = self.core.store.jobs.get(request.job_id)
            started = job is not None and any(r.pending_ts is not None for r in job.runs)
            if job is None or not started or job.namespace != namespace or request.pod_number != 0:
                context.abort(grpc.StatusCode.NOT_FOUND, f'pods "{pod}" not found')
            now = self.core.lifecycle.clock.now()
            lines = [(ts, text) for ts, text in job.logs if since <= ts <= now]
        return binoculars_pb2.LogResponse(
            log=[
                binoculars_pb2.LogLine(timestamp=rfc3339_nano(ts), line=text) for ts, text in lines
            ]
        )
