"""The server interceptor every RPC passes: counting, bearer-token auth, faults, latency, holds."""

from __future__ import annotations

import collections
import hmac
import threading
import time
from typing import TYPE_CHECKING, Any

import grpc

from armada_hooks.testing.faults import Faults, matches

UNAUTHENTICATED_MESSAGE = (
    "Request could not be authenticated: Request could not be authenticated with any of the "
    "supported schemes. (send metadata 'authorization: Bearer <token>')"
)
FORBIDDEN_MESSAGE = "the bearer token presented is not valid for this Armada server"


class RpcCounter:
    """Thread-safe RPC counts per full method path (``/api.Jobs/GetJobStatus``).

    Calls whose request names one job (a ``job_id`` field, as Binoculars' ``Logs``) are
    also counted per job.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._per_job: collections.Counter[tuple[str, str]] = collections.Counter()

    def add(self, method: str, job_id: str = "") -> None:
        """Count one call (of ``job_id``, if the request names one)."""
        with self._lock:
            self._counts[method] += 1
            if job_id:
                self._per_job[method, job_id] += 1

    def by_job(self, method: str) -> dict[str, int]:
        """Calls of ``method`` (as in :meth:`count`) per job id, for requests naming one."""
        totals: collections.Counter[str] = collections.Counter()
        with self._lock:
            for (full, job_id), n in self._per_job.items():
                if matches(method, full):
                    totals[job_id] += n
        return dict(totals)

    def count(self, method: str) -> int:
        """Calls of ``method`` (short name, ``Service/Name`` or ``*``) since the last reset."""
        with self._lock:
            return sum(n for m, n in self._counts.items() if matches(method, m))

    def snapshot(self) -> dict[str, int]:
        """Counts by short method name (``{"GetJobStatus": 3, ...}``)."""
        totals: collections.Counter[str] = collections.Counter()
        with self._lock:
            for method, n in self._counts.items():
                totals[method.rsplit("/", 1)[-1]] += n
        return dict(totals)

    def reset(self) -> None:
        """Zero every count."""
        with self._lock:
            self._counts.clear()
            self._per_job.clear()


if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    _Interceptor = grpc.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _Interceptor = grpc.ServerInterceptor
    _Handler = grpc.RpcMethodHandler


class Gate(_Interceptor):
    """Wraps every handler: count, latency, a hold, an injected fault, authentication.

    A unary call's reply may also be held once it is served.
    """

    def __init__(self, counter: RpcCounter, faults: Faults, token: str | None) -> None:
        self.counter = counter
        self.faults = faults
        self.token = token

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        """Wrap the unary and server-streaming handlers the Armada API uses."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        metadata = dict(handler_call_details.invocation_metadata or ())

        def admit(request: Any, context: grpc.ServicerContext) -> None:
            job_id = getattr(request, "job_id", "")
            self.counter.add(method, job_id if isinstance(job_id, str) else "")
            fault = self.faults.next_fault(method)
            if fault.latency:
                time.sleep(fault.latency)
            hold = self.faults.held(method, after_serving=False, request=request)
            if hold is not None:
                hold.keep()
            if fault.code is not None:
                context.abort(fault.code, fault.message)
            self._authenticate(metadata, context)

        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def unary_call(request: Any, context: grpc.ServicerContext) -> Any:
                admit(request, context)
                response = unary(request, context)
                hold = self.faults.held(method, after_serving=True, request=request)
                if hold is not None:
                    hold.keep()
                return response

            return grpc.unary_unary_rpc_method_handler(
                unary_call,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def stream_call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                admit(request, context)
                yield from stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                stream_call,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _authenticate(self, metadata: dict[str, Any], context: grpc.ServicerContext) -> None:
        if self.token is None:
            return
        header = str(metadata.get("authorization", ""))
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        if not hmac.compare_digest(presented.encode(), self.token.encode()):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, FORBIDDEN_MESSAGE)
