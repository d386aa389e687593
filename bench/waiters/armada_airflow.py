"""The waiting process for Armada's own operator, armada-airflow 1.1.3, in deferrable mode.

Runs in its own environment (``bench/armada-airflow-requirements.txt``: it pins Airflow
< 3.3). Its design, reproduced with its own classes:

  a worker runs ``ArmadaOperator._trigger_reentry``: it reads the job context from XCom,
  asks GetJobStatus (and GetJobDetails once the job runs), writes the context back to
  XCom and, while the job is active, defers to ``ArmadaPollJobTrigger``;
  the triggerer runs that trigger, which only sleeps ``poll_interval`` and fires;
  a worker runs ``_trigger_reentry`` again: one worker wake-up per job per interval.

Here the worker is a pool of ``WORKER_SLOTS`` threads in this process and XCom is a dict
per task instance, so the figures leave out what a real deployment adds on top: a task
process start and several Airflow API round trips per wake-up. Triggers are rebuilt from
``serialize()`` and run as asyncio tasks in one loop, as in the triggerer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import Meter, load_config, submit_all, write_result

WORKER_SLOTS = 16


class TaskInstanceStandIn:
    """The attributes and XCom calls of a task instance that the operator uses."""

    def __init__(self, task_id: str, run_id: str) -> None:
        self.dag_id, self.task_id, self.run_id = "bench", task_id, run_id
        self.map_index, self.try_number, self.max_tries = -1, 1, 0
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def xcom_pull(self, key: str, task_ids: Any = None, map_indexes: Any = None) -> Any:
        return self.xcom.get(key)


def warm_up(config: dict[str, Any]) -> None:
    """What running workers and a triggerer have already done: imports and a channel."""
    import armada.triggers  # noqa: F401
    from armada.hooks import ArmadaHook
    from armada.model import GrpcChannelArgs

    ArmadaHook(GrpcChannelArgs(target=config["target"])).client.event_health()


async def wait_all(config: dict[str, Any], jobs: list[tuple[str, str]], meter: Meter):
    from armada.model import GrpcChannelArgs
    from armada.operators.armada import ArmadaOperator
    from armada.triggers import ArmadaPollJobTrigger
    from pendulum import DateTime

    loop = asyncio.get_running_loop()
    workers = ThreadPoolExecutor(WORKER_SLOTS, thread_name_prefix="worker")
    detected: dict[str, list[Any]] = {}
    wakeups = 0

    async def one(index: int, job_id: str, job_set: str) -> None:
        nonlocal wakeups
        operator = ArmadaOperator(
            task_id=f"job_{index}",
            name=f"job_{index}",
            channel_args=GrpcChannelArgs(target=config["target"]),
            armada_queue=config["queue"],
            job_request=None,
            deferrable=True,
            poll_interval=config["interval"],
            job_acknowledgement_timeout=600,
        )
        ti = TaskInstanceStandIn(operator.task_id, job_set)
        ti.xcom["job_context"] = {  # what the operator's submit wrote to XCom
            "armada_queue": config["queue"],
            "armada_job_id": job_id,
            "armada_job_set_id": job_set,
            "armada_job_submit_time": DateTime.utcnow(),
            "armada_job_state": "UNKNOWN",
            "armada_job_last_log_time": None,
        }
        context = {"ti": ti, "run_id": job_set}
        event = None
        while True:
            wakeups += 1
            try:
                result = await loop.run_in_executor(
                    workers, operator._trigger_reentry, context, event
                )
                state = result["job_state"]
                break
            except BaseException as exc:  # Airflow's TaskDeferred is a BaseException
                if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                    raise
                trigger = getattr(exc, "trigger", None)
                if trigger is None:  # the job failed: the operator raises its typed error
                    state = getattr(getattr(exc, "state", None), "name", type(exc).__name__)
                    break
            path, kwargs = trigger.serialize()
            assert path == "armada.triggers.ArmadaPollJobTrigger"
            async for fired in ArmadaPollJobTrigger(**kwargs).run():
                event = fired.payload
                break
        detected[job_id] = [time.time(), state, None]

    meter.start()
    await asyncio.gather(*(one(i, job_id, job_set) for i, (job_id, job_set) in enumerate(jobs)))
    workers.shutdown()
    return detected, wakeups


def main() -> None:
    config = load_config()
    logging.disable(logging.WARNING)  # the operator logs every poll at INFO
    warm_up(config)
    jobs = submit_all(config)
    meter = Meter()
    detected, wakeups = asyncio.run(wait_all(config, jobs, meter))
    write_result(config, meter.result(detected, wakeups))


if __name__ == "__main__":
    main()
