"""The deferrable sensor's timeout means what it means in poke and reschedule modes.

In deferrable mode Airflow's scheduler enforces the timeout handed to ``defer()`` (which
``dag.test()`` does not), then resumes the task with ``__fail__`` / "Trigger timeout".
These tests check both halves with Airflow's own code: the ``TaskDeferred`` the sensor
raises carries the time left of ``timeout``, and Airflow's ``resume_execution`` turns
the scheduler's timeout signal into ``AirflowSensorTimeout`` (or a skip with soft_fail).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from armada_hooks._compat import (
    AIRFLOW_V3,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from armada_hooks.sensors.armada import ArmadaJobSensor
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item
from armada_hooks.triggers.armada import ArmadaJobTrigger


def running_job(armada) -> str:
    item = job_request_item(annotations={"armada-hooks/runtime": "1h"})
    job_id = armada.client().submit_jobs("default", "set", [item]).job_response_items[0].job_id
    armada.wait_for_state(job_id, [JobState.RUNNING])
    return job_id


def test_defer_carries_the_time_left_of_timeout(local_armada, local_armada_connection):
    job_id = running_job(local_armada)
    sensor = ArmadaJobSensor(
        task_id="wait", job_id=job_id, deferrable=True, timeout=90, poke_interval=7
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert isinstance(deferred.value.trigger, ArmadaJobTrigger)
    assert deferred.value.trigger.job_id == job_id
    assert deferred.value.trigger.poll_interval == 7.0
    assert deferred.value.method_name == "execute_complete"
    assert timedelta(seconds=80) < deferred.value.timeout <= timedelta(seconds=90)


@pytest.mark.skipif(
    not AIRFLOW_V3,
    reason="Airflow 2.11 has no TriggerFailureReason: its scheduler fails a timed-out deferral"
    " with a TaskDeferralError, not a sensor timeout",
)
@pytest.mark.parametrize(
    ("soft_fail", "raised"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)]
)
def test_a_trigger_timeout_is_a_sensor_timeout(soft_fail, raised):
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    sensor = ArmadaJobSensor(task_id="wait", job_id="any", deferrable=True, soft_fail=soft_fail)
    with pytest.raises(raised):
        sensor.resume_execution(
            TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, {}
        )
