"""Faults against the local Armada: a job set of 2,000 jobs, Armada restarted while jobs
run. Each: no state lost, none applied twice, no wrong terminal state, no false
JOB_ID_NOT_FOUND."""

from __future__ import annotations

import pytest
from armada_client.armada import event_pb2
from js_helpers import eventually

from armada_hooks.jobservice.protos import job_states_pb2
from armada_hooks.states import TERMINAL_STATES, JobState
from armada_hooks.testing import job_request_item

C = job_states_pb2.Certainty


def submit_many(armada, job_set, count, annotations):
    client = armada.client()
    ids = []
    for _ in range(0, count, 100):
        items = [job_request_item(annotations=annotations) for _ in range(100)]
        ids += [r.job_id for r in client.submit_jobs("default", job_set, items).job_response_items]
    return ids


def all_events(armada, job_set):
    stub = armada.client().event_stub
    return list(stub.GetJobSetEvents(event_pb2.JobSetRequest(queue="default", id=job_set)))


@pytest.mark.local_armada(time_scale=20)
def test_a_job_set_of_2000_jobs_is_one_stream_and_every_job_ends_right(
    local_armada, job_service, js_client
):
    ids = submit_many(local_armada, "big", 2000, {"armada-hooks/runtime": "0"})
    refs = [("default", "big", j) for j in ids]

    def all_ended():
        answers = js_client.get_job_states(refs).answers
        assert all(a.certainty != C.NOT_FOUND for a in answers)
        return all(JobState(a.state) in TERMINAL_STATES for a in answers) and answers

    answers = eventually(all_ended, timeout=30, every=0.2)
    assert {JobState(a.state) for a in answers} == {JobState.SUCCEEDED}
    assert [a.job.job_id for a in answers] == ids
    assert local_armada.rpc_count("GetJobSetEvents") == 1 + job_service.call(
        lambda core: core.access.probes
    )
    assert local_armada.rpc_count("GetJobStatus") == 0


@pytest.mark.local_armada(time_scale=20)
def test_armada_restarted_while_jobs_run_loses_nothing_and_applies_nothing_twice(
    local_armada, job_service, js_client
):
    ids = submit_many(local_armada, "restart", 100, {"armada-hooks/runtime": "30s"})
    refs = [("default", "restart", j) for j in ids]
    js_client.get_job_states(refs)
    assert any(local_armada.job(j).state not in TERMINAL_STATES for j in ids)
    local_armada.restart(downtime=0.3)  # the stream drops mid-run; jobs carry on

    def all_ended():
        answers = js_client.get_job_states(refs).answers
        return all(JobState(a.state) in TERMINAL_STATES for a in answers) and answers

    answers = eventually(all_ended, timeout=30, every=0.2)
    truth = {j: local_armada.job(j).state for j in ids}
    assert {a.job.job_id: JobState(a.state) for a in answers} == truth
    follower = job_service.call(lambda core: core.followers[("default", "restart")])
    assert follower.streams_opened >= 2
    assert follower.messages == len(all_events(local_armada, "restart"))
