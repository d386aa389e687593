"""``ArmadaOperator``: run a job on Armada from a DAG, and wait for it (or defer).

Airflow concerns live here (templating, context, XCom, the Lookout link, deferral,
reattach); Armada concerns live in :class:`~armada_hooks.hooks.armada.ArmadaHook`.

Exactly once: every job carries an ``external_job_uri`` naming (dag, task, run, map
index) and a ``client_id`` derived from it and a *generation* — the number of earlier
jobs of this task instance that the reattach policy declined. Armada deduplicates
client ids per queue, so a retry, or a worker killed between submit and recording the
job, gets the original job back instead of a twin; only a policy that asks for a fresh
job moves to the next generation.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from armada_hooks import errors, verdicts
from armada_hooks._compat import BaseOperator, default_deferrable, task_state_store
from armada_hooks.defaults import (
    DEFAULT_ACKNOWLEDGEMENT_TIMEOUT,
    DEFAULT_CONN_ID,
    DEFAULT_POLL_INTERVAL,
    JOB_FILE_EXTENSIONS,
    LOG_POSITION_XCOM_KEY,
)
from armada_hooks.job_description import JobDescription
from armada_hooks.links.lookout import XCOM_KEY, LookoutLink
from armada_hooks.states import TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from armada_client.armada import submit_pb2

    from armada_hooks._compat import Context
    from armada_hooks.hooks.armada import ArmadaHook

JobRequest = Any  # a JobSubmitRequestItem, a dict, a job file's name, or (context) -> item/dict
ReattachPolicy = (
    Literal["always", "never", "running_or_succeeded"] | Callable[[JobState, Any], bool]
)
REATTACH_POLICIES = ("always", "never", "running_or_succeeded")
DEFAULT_ANNOTATION_PREFIX = "armadaproject.io/"
STATE_STORE_KEY = "armada_job_id"
MAX_JOB_SET_ID = 1023
NO_RUN = "manual"  # the run of a task run outside Airflow and Flyte: identifies nothing


def annotation_prefix() -> str:
    """The annotation key prefix: ``$ANNOTATION_KEY_PREFIX`` or ``armadaproject.io/``."""
    return os.environ.get("ANNOTATION_KEY_PREFIX") or DEFAULT_ANNOTATION_PREFIX


def external_job_uri(dag_id: str, task_id: str, run_id: str, map_index: int) -> str:
    """The URI naming one task instance's job (the form Armada's own operator uses)."""
    return f"airflow://{dag_id}/{task_id}/{run_id}/{map_index}"


def client_id_for(uri: str, generation: int) -> str:
    """The deterministic client id of generation ``generation`` of ``uri``'s job."""
    digest = hashlib.sha256(f"{uri}#{generation}".encode()).hexdigest()[:40]
    return f"airflow-{digest}-{generation}"


def default_job_set_id(dag_id: str, run_id: str) -> str:
    """One job set per DAG run (shortened with a hash past Armada's 1023 characters)."""
    name = f"{dag_id}-{run_id}"
    if len(name) <= MAX_JOB_SET_ID:
        return name
    return f"{name[:980]}-{hashlib.sha256(name.encode()).hexdigest()[:40]}"


class ArmadaOperator(BaseOperator):
    """Submit one job to Armada and wait for it, synchronously or deferred.

    :param armada_queue: the Armada queue (default: an ``armadactl`` job file's ``queue``,
        else the connection's ``default_queue``).
        Not ``queue``: that is Airflow's executor queue, which routes the task to workers.
    :param job_request: a ``JobSubmitRequestItem``; a dict (templated): a job item in
        protobuf-JSON or Kubernetes style, a bare pod spec, or a ``kind: Pod`` manifest;
        the name of a ``.yaml``/``.yml``/``.json`` job file (one job item or pod spec or
        manifest, or an ``armadactl`` job file with one job), found on the DAG's template
        search path or at an absolute path, and rendered with Jinja; or a callable
        ``(context) -> item or dict``.
    :param job_set_id: the job set (default: an ``armadactl`` file's ``jobSetId``, else
        one per DAG run, ``{dag_id}-{run_id}``).
    :param armada_conn_id: the ``armada`` Airflow connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls while waiting.
    :param wait_for_completion: False returns the job id as soon as it is submitted.
    :param fetch_logs: stream the container log into the task log while the job runs.
    :param log_interval: seconds between log fetches while the log grows, deferred or
        not (default: the connection's ``log_interval``, 5 s); a quiet log is fetched
        less often, down to once a minute.
    :param event_mode: deferred, follow the job set's events instead of polling
        (default: the connection's ``event_mode`` extra).
    :param reattach_policy: on a retry, whether to reattach to this task's previous job
        (``"always"``, ``"never"``, ``"running_or_succeeded"``, or ``(state, context) ->
        bool``); declining submits a fresh job.
    :param acknowledgement_timeout: seconds a job may stay UNKNOWN before it is lost.
    :param dry_run: render and validate the request, log it, submit nothing.
    :param labels: labels added to the job.
    :param annotations: annotations added to the job.

    Returns the job id (XCom). Errors: an invalid spec or a REJECTED job fails the task
    at once (``AirflowFailException``); FAILED, PREEMPTED or CANCELLED raise a retryable
    error carrying the state and Armada's reason.
    """

    template_fields: Sequence[str] = (
        "armada_queue",
        "job_set_id",
        "job_request",
        "labels",
        "annotations",
    )
    template_ext: Sequence[str] = JOB_FILE_EXTENSIONS  # Airflow reads and renders a job file
    template_fields_renderers: ClassVar[dict[str, str]] = {"job_request": "json"}
    operator_extra_links = (LookoutLink(),)
    ui_color = "#d8e6f3"
    hook_class: ClassVar[type[ArmadaHook] | None] = None  # default: ArmadaHook

    def __new__(cls, *args: Any, **kwargs: Any) -> ArmadaOperator:
        """Hand whatever captures operator kwargs (Flyte) a form it can replay.

        Flyte's Airflow plugin replaces ``BaseOperator.__new__`` to capture an operator's
        keyword arguments, jsonpickles them, and rebuilds the operator with
        ``deferrable=True`` added. So a proto ``job_request`` goes to it as its dict form
        (``armada.submit_pb2`` cannot be imported by that name), and ``deferrable`` not at
        all (given twice, the rebuild would fail): under Flyte the operator runs deferred.
        """
        parent_new = super().__new__
        if parent_new is object.__new__:  # plain Airflow: object.__new__ takes no arguments
            return object.__new__(cls)
        if "job_request" in kwargs:
            kwargs["job_request"] = _dict_if_proto(kwargs["job_request"])
        if kwargs.pop("deferrable", None) is False:
            cls._log_deferred_anyway()
        built: ArmadaOperator = parent_new(cls, *args, **kwargs)
        return built

    @classmethod
    def _log_deferred_anyway(cls) -> None:
        import logging

        logging.getLogger(__name__).warning(
            "%s(deferrable=False) under Flyte's Airflow connector: the connector runs "
            "operators deferred, so this one waits in the connector's trigger",
            cls.__name__,
        )

    def __init__(
        self,
        *,
        job_request: JobRequest,
        armada_queue: str | None = None,
        job_set_id: str | None = None,
        armada_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        wait_for_completion: bool = True,
        fetch_logs: bool = True,
        log_interval: float | None = None,
        event_mode: bool | None = None,
        reattach_policy: ReattachPolicy = "running_or_succeeded",
        acknowledgement_timeout: float = DEFAULT_ACKNOWLEDGEMENT_TIMEOUT,
        dry_run: bool = False,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_request = _initial_form(job_request)
        self.job_request_file = job_request if isinstance(job_request, str) else None
        self.file_queue: str | None = None  # an armadactl job file's, once it is read
        self.file_job_set_id: str | None = None
        self.armada_queue = armada_queue
        self.job_set_id = job_set_id
        self.armada_conn_id = armada_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval}")
        self.poll_interval = poll_interval
        self.wait_for_completion = wait_for_completion
        self.fetch_logs = fetch_logs
        if log_interval is not None and log_interval <= 0:
            raise ValueError(f"log_interval must be > 0 seconds, got {log_interval}")
        self.log_interval = log_interval
        self.event_mode = event_mode
        if not callable(reattach_policy) and reattach_policy not in REATTACH_POLICIES:
            raise ValueError(
                f"reattach_policy must be one of {REATTACH_POLICIES} or a callable, "
                f"got {reattach_policy!r}"
            )
        self.reattach_policy = reattach_policy
        self.acknowledgement_timeout = acknowledgement_timeout
        self.dry_run_only = dry_run  # BaseOperator.dry_run() is a method
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.job_id: str | None = None

    @cached_property
    def hook(self) -> ArmadaHook:
        """The hook, built on first use (DAG parsing imports no gRPC and touches no Armada)."""
        from armada_hooks.hooks.armada import ArmadaHook

        hook_class = self.hook_class or ArmadaHook
        return hook_class(self.armada_conn_id, acknowledgement_timeout=self.acknowledgement_timeout)

    # -- building the request ---------------------------------------------------------

    def build_request(self, context: Context) -> submit_pb2.JobSubmitRequestItem:
        """The rendered request with this task instance's labels and annotations."""
        from armada_hooks.job_requests import build_from_job_file

        request = self.job_request
        if callable(request):  # not rendered (execute called directly): build it now
            request = request(context=context)
        if isinstance(request, str):
            name = str(self.job_request_file)
            from_file = build_from_job_file(self._job_file_text(request), name)
            item = from_file.item
            self.file_queue, self.file_job_set_id = from_file.queue, from_file.job_set_id
        else:
            item = self.hook.build_job_request_item(_template_form(request, allow_callable=False))
        ti = context.get("ti")
        dag_id, task_id, run_id, map_index, try_number = _identity(self, context)
        prefix = annotation_prefix()
        item.labels.update(self.labels)
        item.annotations.update(self.annotations)
        item.annotations.update(
            {
                f"{prefix}dagId": dag_id,
                f"{prefix}taskId": task_id,
                f"{prefix}runId": run_id,
                f"{prefix}mapIndex": str(map_index),
                f"{prefix}tryNumber": str(try_number),
            }
        )
        if ti is not None or not item.external_job_uri:
            item.external_job_uri = external_job_uri(dag_id, task_id, run_id, map_index)
        item.annotations[f"{prefix}externalJobUri"] = item.external_job_uri
        return item

    def resolve_queue(self) -> str:
        """The queue: the operator's, an armadactl job file's, or the connection's default."""
        queue = self.armada_queue or self.file_queue or self.hook.config.default_queue
        if not queue:
            raise errors.ArmadaJobSpecError(
                f"no queue: set ArmadaOperator(armada_queue=...) or the extra 'default_queue' of "
                f"Airflow connection {self.armada_conn_id!r}"
            )
        return queue

    def _job_file_text(self, request: str) -> str:
        """The rendered job file; a relative name not rendered yet cannot be found here."""
        if request != self.job_request_file:
            return request  # Airflow has read and rendered it
        raise errors.ArmadaJobSpecError(
            f"job file {request}: a relative name is found on the DAG's template search path "
            "when Airflow renders the task; outside Airflow (Flyte, or execute() called "
            "directly) give its absolute path"
        )

    # -- execution --------------------------------------------------------------------

    def execute(self, context: Context) -> str | None:
        """Submit (or reattach to) the job, record it, then wait or defer."""
        item = self.build_request(context)
        if self.dry_run_only:
            self.log.info(
                "Dry run: would submit to Armada\n%s",
                json.dumps(_template_form(item), indent=2, sort_keys=True),
            )
            return None
        queue = self.resolve_queue()
        dag_id, _, run_id, _, _ = _identity(self, context)
        job_set_id = self.job_set_id or self.file_job_set_id or default_job_set_id(dag_id, run_id)
        job_id = self._submit_or_reattach(context, queue, job_set_id, item)
        self.job_id = job_id
        self._record(context, queue, job_set_id, job_id)
        if not self.wait_for_completion:
            return job_id
        if self.deferrable:
            from armada_hooks.triggers.armada import ArmadaJobTrigger

            streams = self.fetch_logs and _streams_logs(context)
            if streams:  # where the trigger keeps its log position: it reads it first
                context["ti"].xcom_push(key=LOG_POSITION_XCOM_KEY, value={"job_id": job_id})
            self.defer(
                trigger=ArmadaJobTrigger(
                    job_id=job_id,
                    armada_conn_id=self.armada_conn_id,
                    queue=queue,
                    job_set_id=job_set_id,
                    poll_interval=self.poll_interval,
                    acknowledgement_timeout=self.acknowledgement_timeout,
                    submitted_at=time.time(),
                    fetch_logs=streams,
                    log_interval=self.log_interval,
                    event_mode=self.event_mode,
                ),
                method_name="execute_complete",
            )
        fetcher = (
            self.hook.log_fetcher(job_id, self.log, self.log_interval) if self.fetch_logs else None
        )
        self.hook.wait_for_job(
            job_id, self.poll_interval, fetcher, queue=queue, job_set_id=job_set_id
        )
        self.hook.check_job_success(job_id)
        return job_id

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after deferral: the job's id, or the typed error its end deserves."""
        job_id = str(event["job_id"])
        self.job_id = job_id
        if self.fetch_logs and not _streams_logs(context):
            self.hook.log_fetcher(job_id, self.log).drain()  # the whole log, once
        if event.get("error"):
            raise errors.from_event(event["error"], job_id)
        description = JobDescription(
            job_id=job_id, state=JobState[str(event["state"])], reason=str(event.get("reason", ""))
        )
        # As the synchronous wait says it: the task log ends with the job's outcome.
        self.log.info("Armada job %s is %s", job_id, description.state.name)
        verdicts.check_success(description)
        return job_id

    def on_kill(self) -> None:
        """The task is being killed (SIGTERM, timeout): cancel its Armada job."""
        record = getattr(self, "_recorded", None)
        if self.job_id and record:
            self.hook.cancel_job(record["queue"], record["job_set_id"], self.job_id)

    # -- reattach ---------------------------------------------------------------------

    def _submit_or_reattach(
        self, context: Context, queue: str, job_set_id: str, item: submit_pb2.JobSubmitRequestItem
    ) -> str:
        client_id: str | None = None
        if _identity(self, context)[2] == NO_RUN:
            self.log.warning(
                "No Airflow task instance or Flyte execution: submitting without a client id, "
                "so a repeat of this call submits another job"
            )
        else:
            previous = self._previous_jobs(context, queue, job_set_id, item.external_job_uri)
            if previous:
                newest = previous[-1]
                state = self.hook.get_job_status(newest)
                if self._reattach(state, context):
                    self.log.info("Reattaching to Armada job %s (%s)", newest, state.name)
                    return newest
                self.log.info(
                    "Not reattaching to Armada job %s (%s, reattach_policy=%r); submitting anew",
                    newest,
                    state.name,
                    self.reattach_policy,
                )
                if state not in TERMINAL_STATES:  # never two jobs of one task instance
                    cancelled = self.hook.cancel_job(queue, job_set_id, newest)
                    self.log.info("Cancelled Armada job %s (now %s)", newest, cancelled.name)
            client_id = client_id_for(item.external_job_uri, len(previous))
        job_id = self.hook.submit_job(queue, job_set_id, item, client_id=client_id)
        self.log.info("Submitted Armada job %s to queue %s, job set %s", job_id, queue, job_set_id)
        return job_id

    def _previous_jobs(self, context: Context, queue: str, job_set_id: str, uri: str) -> list[str]:
        """Earlier jobs of this task instance, oldest first (Armada's and Airflow's record)."""
        ids = self.hook.find_jobs_by_external_uri(queue, job_set_id, uri)
        store = task_state_store(context)
        stored = store.get(STATE_STORE_KEY) if store is not None else None
        if stored and stored not in ids:
            ids.append(str(stored))  # submitted, not yet in Armada's query API
        return ids

    def _reattach(self, state: JobState, context: Context) -> bool:
        policy = self.reattach_policy
        if callable(policy):
            return bool(policy(state, context))
        if policy == "always":
            return True
        if policy == "never":
            return False
        return state not in TERMINAL_STATES or state is JobState.SUCCEEDED

    def _record(self, context: Context, queue: str, job_set_id: str, job_id: str) -> None:
        """Keep the job where a retry and the Lookout link find it, before any deferral."""
        self._recorded = {"queue": queue, "job_set_id": job_set_id}
        store = task_state_store(context)
        if store is not None:
            store.set(STATE_STORE_KEY, job_id)
        ti = context.get("ti")
        if ti is not None and self.do_xcom_push:
            ti.xcom_push(
                key=XCOM_KEY,
                value={
                    "job_id": job_id,
                    "queue": queue,
                    "job_set_id": job_set_id,
                    "lookout_url": self._lookout_url(),
                },
            )

    def _lookout_url(self) -> str | None:
        try:
            return self.hook.config.lookout_url
        except errors.ArmadaConnectionError:
            return None  # an injected client and no connection: no link


def _streams_logs(context: Context) -> bool:
    """Whether a deferred wait can stream the log: not when no task instance runs it.

    Flyte's connector rebuilds the trigger from its first form on every status check, so
    a streaming trigger would write the log from its start each time; there the log is
    written once, when the job has ended.
    """
    return context.get("ti") is not None


def _identity(task: BaseOperator, context: Context) -> tuple[str, str, str, int, int]:
    """(dag id, task id, run id, map index, try number), tolerating an empty context.

    Without a task instance or DAG run (Flyte's connector), the run is Flyte's execution
    (:func:`~armada_hooks.flyte.flyte_execution_id`), else :data:`NO_RUN`.
    """
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    run_id = getattr(dag_run, "run_id", None) or context.get("run_id")
    if not run_id:
        from armada_hooks.flyte import flyte_execution_id

        flyte_run = flyte_execution_id()
        run_id = f"flyte-{flyte_run}" if flyte_run else NO_RUN
    map_index = getattr(ti, "map_index", -1) if ti is not None else -1
    try_number = getattr(ti, "try_number", 1) if ti is not None else 1
    dag_id = getattr(ti, "dag_id", None) or task.dag_id
    return str(dag_id), task.task_id, str(run_id), int(map_index), int(try_number)


class _RequestFactory:
    """A ``(context) -> request`` callable in the shape Airflow's templater calls.

    Airflow renders a callable template field by calling it with ``context`` and
    ``jinja_env`` and keeping the result, so rendering builds the request's dict form.
    """

    def __init__(self, factory: Callable[[Any], Any]) -> None:
        self.factory = factory

    def __call__(self, context: Any, jinja_env: Any = None) -> Any:
        return _template_form(self.factory(context), allow_callable=False)

    def __repr__(self) -> str:
        return f"<job_request built by {getattr(self.factory, '__qualname__', self.factory)!r}>"


def _dict_if_proto(request: Any) -> Any:
    """A ``JobSubmitRequestItem``'s protobuf-JSON dict; anything else unchanged."""
    # Only a loaded module can have made a JobSubmitRequestItem: asking sys.modules keeps
    # protobuf unloaded while a DAG file with a dict request is parsed.
    submit_pb2 = sys.modules.get("armada_client.armada.submit_pb2")
    if submit_pb2 is not None and isinstance(request, submit_pb2.JobSubmitRequestItem):
        from google.protobuf import json_format

        return json_format.MessageToDict(request)
    return request


def _initial_form(request: Any) -> Any:
    """``job_request`` as the operator keeps it: a job file's name, else its template form.

    An absolute file is read now: Jinja's loader finds only names on the search path.
    """
    if not isinstance(request, str):
        return _template_form(request)
    if not request.endswith(JOB_FILE_EXTENSIONS):
        raise errors.ArmadaJobSpecError(
            f"job_request {request!r}: a string names a job file, whose name ends in "
            f"{', '.join(JOB_FILE_EXTENSIONS)}"
        )
    if not os.path.isabs(request):
        return request
    from armada_hooks.job_specs.files import read_absolute

    return read_absolute(request)


def _template_form(request: Any, *, allow_callable: bool = True) -> Any:
    """A request as templating sees it: a proto becomes its dict form, a callable a factory."""
    request = _dict_if_proto(request)
    if isinstance(request, Mapping | _RequestFactory):
        return request
    if callable(request) and allow_callable:
        return _RequestFactory(request)
    raise errors.ArmadaJobSpecError(
        "job_request must be a JobSubmitRequestItem, a dict (a job item, pod spec or Pod "
        "manifest), a job file's name, or a callable (context) -> item or dict; got "
        f"{type(request).__name__}" + (" from the callable" if not allow_callable else "")
    )
