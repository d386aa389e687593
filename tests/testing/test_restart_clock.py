"""Job time never goes backwards across a restart, so scheduled transitions never stall."""

from __future__ import annotations

import time

import pytest

from armada_hooks.states import JobState
from armada_hooks.testing import LocalArmada, job_request_item


@pytest.mark.parametrize("persisted", [False, True], ids=["in-memory", "state-file"])
def test_restart_resumes_job_time_where_it_stopped(tmp_path, persisted: bool) -> None:
    state = tmp_path / "armada.db" if persisted else None
    armada = LocalArmada(queues=["q"], time_scale=100, state_path=state).start()
    try:
        item = job_request_item(annotations={"armada-hooks/runtime": "300s"})
        job_id = armada.client().submit_jobs("q", "s", [item]).job_response_items[0].job_id
        armada.wait_for_state(job_id, [JobState.RUNNING], timeout=10)
        time.sleep(1.0)  # 100 job-seconds pass: job time is now well ahead of the wall clock
        before = armada.now()
        armada.restart()
        assert armada.now() >= before
        # 300 job-seconds of runtime are 3 real seconds; a clock reset to wall time would
        # push the finish ~100 job-seconds (plus the time already run) into the future.
        assert armada.wait_for_state(job_id, timeout=10).state is JobState.SUCCEEDED
    finally:
        armada.stop()
