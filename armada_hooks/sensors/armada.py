"""``ArmadaJobSensor``: wait for an Armada job somebody else submitted.

Name the job by ``job_id``, or by ``external_job_uri`` with its queue and job set. The
sensor succeeds when the job reaches one of ``target_states`` (default SUCCEEDED) and
returns its description; a job that ends anywhere else raises the hook's typed error
(or skips, with ``soft_fail``). ``poke``, ``reschedule`` and deferrable modes share one
meaning of ``timeout``: seconds since the sensor first looked.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from armada_hooks import errors, verdicts
from armada_hooks._compat import (
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    default_deferrable,
)
from armada_hooks.defaults import DEFAULT_CONN_ID
from armada_hooks.job_description import JobDescription
from armada_hooks.states import JobState

if TYPE_CHECKING:
    from armada_hooks._compat import Context
    from armada_hooks.hooks.armada import ArmadaHook


class ArmadaJobSensor(BaseSensorOperator):
    """Waits until an Armada job reaches ``target_states``.

    :param job_id: the job to watch.
    :param external_job_uri: or: find the newest job with this URI in ``armada_queue`` /
        ``job_set_id`` (the job may not exist yet: the sensor waits for it).
    :param armada_queue: the job's queue (with ``external_job_uri``).
    :param job_set_id: the job's job set (with ``external_job_uri``).
    :param target_states: states that satisfy the sensor (default: SUCCEEDED).
    :param armada_conn_id: the ``armada`` Airflow connection.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param event_mode: deferred, follow the job set's events instead of polling (needs
        ``armada_queue`` and ``job_set_id``; default: the connection's ``event_mode``).
    """

    template_fields: Sequence[str] = ("job_id", "external_job_uri", "armada_queue", "job_set_id")

    def __init__(
        self,
        *,
        job_id: str | None = None,
        external_job_uri: str | None = None,
        armada_queue: str | None = None,
        job_set_id: str | None = None,
        target_states: Iterable[JobState | str] = (JobState.SUCCEEDED,),
        armada_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        event_mode: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (job_id is None) == (external_job_uri is None):
            raise ValueError("ArmadaJobSensor needs exactly one of job_id and external_job_uri")
        if external_job_uri is not None and not (armada_queue and job_set_id):
            raise ValueError("external_job_uri needs armada_queue and job_set_id to search in")
        self.job_id = job_id
        self.external_job_uri = external_job_uri
        self.armada_queue = armada_queue
        self.job_set_id = job_set_id
        self.target_states = frozenset(
            JobState(s) if isinstance(s, Enum) else JobState[str(s).upper()] for s in target_states
        )
        if not self.target_states:
            raise ValueError("target_states must name at least one state")
        self.armada_conn_id = armada_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.event_mode = event_mode

    @cached_property
    def hook(self) -> ArmadaHook:
        """The hook, built on first use."""
        from armada_hooks.hooks.armada import ArmadaHook

        return ArmadaHook(self.armada_conn_id)

    def _resolve(self) -> str | None:
        if self.job_id is not None:
            return self.job_id
        if not (self.external_job_uri and self.armada_queue and self.job_set_id):
            raise ValueError(
                "external_job_uri, armada_queue and job_set_id must not render empty, got "
                f"{self.external_job_uri!r}, {self.armada_queue!r}, {self.job_set_id!r}"
            )
        return self.hook.find_job_by_external_uri(
            self.armada_queue, self.job_set_id, self.external_job_uri
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the job, its state logged: done in a target state, raise if never."""
        job_id = self._resolve()
        if job_id is None:
            self.log.info("No Armada job with URI %s yet", self.external_job_uri)
            return PokeReturnValue(is_done=False)
        description = self.hook.get_job_description(job_id)
        self.log.info(
            "Armada job %s is %s; waiting for %s",
            job_id,
            description.state.name,
            sorted(s.name for s in self.target_states),
        )
        return PokeReturnValue(is_done=self._verdict(description), xcom_value=description.to_dict())

    def _verdict(self, description: JobDescription) -> bool:
        try:
            return verdicts.sensor_verdict(description, self.target_states)
        except errors.ArmadaJobError as exc:
            if self.soft_fail:
                raise AirflowSkipException(str(exc)) from exc
            raise

    def execute(self, context: Context) -> Any:
        """Poke or reschedule as configured; deferrable: one look, then the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        started = time.monotonic()
        job_id = self._resolve()
        if job_id is None:  # nothing to hand the triggerer yet: find the job first
            return super().execute(context)
        description = self.hook.get_job_description(job_id)
        if self._verdict(description):
            return description.to_dict()
        from armada_hooks.triggers.armada import ArmadaJobTrigger

        remaining = None
        if self.timeout is not None:
            remaining = timedelta(seconds=max(0.0, self.timeout - (time.monotonic() - started)))
        self.defer(
            trigger=ArmadaJobTrigger(
                job_id=job_id,
                armada_conn_id=self.armada_conn_id,
                queue=self.armada_queue,
                job_set_id=self.job_set_id,
                poll_interval=self.poke_interval,
                target_states=[s.name for s in self.target_states],
                event_mode=self.event_mode,
            ),
            method_name="execute_complete",
            timeout=remaining,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after deferral: the job's description, or the error its end deserves."""
        job_id = str(event["job_id"])
        if event.get("error"):
            exc = errors.from_event(event["error"], job_id)
            if self.soft_fail:
                raise AirflowSkipException(str(exc)) from exc
            raise exc
        data = event.get("description") or {}
        description = JobDescription(
            job_id=job_id, state=JobState[str(event["state"])], reason=str(event.get("reason", ""))
        )
        if not self._verdict(description):
            raise errors.ArmadaJobError(
                f"Armada job {job_id} woke the sensor in {description.state.name}",
                job_id=job_id,
                state=description.state,
            )
        return data
