"""The waiting process for armada-hooks: N deferred waits as the triggerer runs them.

Modes (config ``mode``):
  shared  ``ArmadaJobTrigger`` as shipped: the loop's shared, batched status poller;
  events  ``ArmadaJobTrigger(event_mode=True)``: one event stream per job set;
  naive   a trigger that polls its own job once per interval (one RPC per job per interval),
          the design of most deferrable operators; it shares one channel, to be fair.
Every trigger is rebuilt from ``serialize()`` and its ``run()`` is an asyncio task in one
event loop, as in Airflow's triggerer.

With a ``log_interval`` in the config (``waiting.py --logs``) every trigger also streams
its job's log (``fetch_logs=True``). The result then has ``lines``: ``{job_id: [[line,
epoch s when the trigger logged it], ...]}``, taken from the trigger's own log records,
and ``warnings``: what the triggers logged at WARNING or worse.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import time
from typing import Any

from common import Meter, load_config, submit_all, write_result

CONN_ID = "armada_bench"
LINE = re.compile(r"^\[(?P<job>[^\]]+)\] line \d+ of \d+$")  # the local Armada's log lines


def capture_log_lines(lines: dict[str, list[Any]], warnings: list[str]) -> None:
    """Record every job log line the triggers log, with the wall time it was logged.

    A structlog processor just before Airflow's renderer: the lines still go to the
    process's output as the triggerer writes them, and cost what they cost there.
    """
    import structlog

    def capture(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        text = event.get("event")
        if event.get("level") in ("warning", "error", "critical"):
            warnings.append(str(text))
        elif isinstance(text, str) and (match := LINE.match(text)):
            lines.setdefault(match["job"], []).append([text, time.time()])
        return event

    processors = list(structlog.get_config()["processors"])
    structlog.configure(processors=[*processors[:-1], capture, processors[-1]])


def rebuild(trigger: Any) -> Any:
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**kwargs)


def naive_trigger_class() -> type:
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    from armada_hooks.hooks.armada import ArmadaHook
    from armada_hooks.states import TERMINAL_STATES

    hooks: dict[str, ArmadaHook] = {}

    class NaivePollingTrigger(BaseTrigger):
        """Polls one job every ``poll_interval`` seconds until it ends."""

        def __init__(self, job_id: str, armada_conn_id: str, poll_interval: float) -> None:
            super().__init__()
            self.job_id, self.armada_conn_id = job_id, armada_conn_id
            self.poll_interval = poll_interval

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return (
                f"{__name__}.NaivePollingTrigger",
                {
                    "job_id": self.job_id,
                    "armada_conn_id": self.armada_conn_id,
                    "poll_interval": self.poll_interval,
                },
            )

        async def run(self):  # type: ignore[override]
            hook = hooks.setdefault(self.armada_conn_id, ArmadaHook(self.armada_conn_id))
            await hook.aload_config()
            while await hook.aget_job_status(self.job_id) not in TERMINAL_STATES:
                await asyncio.sleep(self.poll_interval)
            description = await hook.aget_job_description(self.job_id)
            yield TriggerEvent({"job_id": self.job_id, "state": description.state.name})

    return NaivePollingTrigger


async def warm_up() -> None:
    """What a running triggerer has already done: imports, a connection lookup, a channel."""
    from armada_hooks.hooks.armada import ArmadaHook

    hook = ArmadaHook(CONN_ID)
    await hook.aload_config()
    await hook.async_client.event_health()  # not a query RPC: the counts leave it out


async def wait_all(config: dict[str, Any], jobs: list[tuple[str, str]], meter: Meter):
    from armada_hooks.triggers.armada import ArmadaJobTrigger

    mode = config["mode"]
    if mode == "naive":
        globals()["NaivePollingTrigger"] = naive_cls = naive_trigger_class()
        built = [naive_cls(job_id, CONN_ID, config["interval"]) for job_id, _ in jobs]
    else:
        built = [
            ArmadaJobTrigger(
                job_id,
                CONN_ID,
                queue=config["queue"],
                job_set_id=job_set,
                poll_interval=config["interval"],
                acknowledgement_timeout=600,
                event_mode=mode == "events",
                fetch_logs=config.get("log_interval") is not None,
                log_interval=config.get("log_interval"),
            )
            for job_id, job_set in jobs
        ]
    triggers = [rebuild(t) for t in built]  # as the triggerer gets them, from the database
    detected: dict[str, list[Any]] = {}

    async def one(trigger: Any) -> None:
        try:
            async for event in trigger.run():
                payload = event.payload
                detected[trigger.job_id] = [time.time(), payload["state"], payload.get("error")]
        except Exception as exc:  # as in the triggerer: a failing trigger fails alone
            detected[trigger.job_id] = [time.time(), "ERROR", f"{type(exc).__name__}: {exc}"]

    meter.start()
    await asyncio.gather(*(one(t) for t in triggers))
    return detected


def connection(target: str) -> str:
    """The ``AIRFLOW_CONN_*`` value: Armada and Binoculars both at ``target``."""
    host, port = target.rsplit(":", 1)
    extra = {"binoculars_target": target}
    return json.dumps({"conn_type": "armada", "host": host, "port": int(port), "extra": extra})


def main() -> None:
    config = load_config()
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection(config["target"])
    lines: dict[str, list[Any]] = {}
    warnings: list[str] = []
    if config.get("log_interval") is not None:
        import airflow  # noqa: F401  # configures Airflow's logging, which the capture extends

        capture_log_lines(lines, warnings)
    asyncio.run(warm_up())
    jobs = submit_all(config)
    meter = Meter()
    detected = asyncio.run(wait_all(config, jobs, meter))
    result = meter.result(detected)
    if config.get("log_interval") is not None:
        result.update(lines=lines, warnings=warnings)
    write_result(config, result)


if __name__ == "__main__":
    main()
