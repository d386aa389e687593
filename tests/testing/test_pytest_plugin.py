"""The pytest plugin, used from a test file exactly as a user would (a separate pytest run)."""

from __future__ import annotations

import pytest

USER_TESTS = """
import grpc
import pytest
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

SEEN = []


def test_fixture_serves_the_default_queue(local_armada, local_armada_client):
    SEEN.append(local_armada)
    response = local_armada_client.submit_jobs("default", "user-set", [job_request_item()])
    job_id = response.job_response_items[0].job_id
    assert local_armada.wait_for_state(job_id, timeout=30).state is JobState.SUCCEEDED


def test_fixture_is_stopped_after_each_test():
    assert SEEN and not SEEN[0].running


@pytest.mark.local_armada(queues=["team-a"], time_scale=50, ingestion_delay=1000)
def test_marker_configures_the_server(local_armada, local_armada_client):
    with pytest.raises(grpc.RpcError) as excinfo:
        local_armada_client.submit_jobs("default", "s", [job_request_item()])
    assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED
    response = local_armada_client.submit_jobs("team-a", "s", [job_request_item()])
    job_id = response.job_response_items[0].job_id
    assert local_armada_client.get_job_status([job_id]).job_states[job_id] == JobState.UNKNOWN.value


@pytest.mark.local_armada(token="user-token-123")
def test_connection_fixture_points_airflow_at_the_server(local_armada, local_armada_connection):
    from armada_hooks.hooks.armada import ArmadaHook

    hook = ArmadaHook(local_armada_connection)
    job_id = hook.submit_job("default", "s", job_request_item())
    assert hook.config.target == local_armada.target
    assert hook.config.binoculars_for("any") == local_armada.target
    assert local_armada.wait_for_state(job_id, timeout=30).state is JobState.SUCCEEDED


def test_factory_starts_independent_servers(local_armada_factory):
    one = local_armada_factory(queues=["a"])
    two = local_armada_factory(queues=["b"], auto_create_queues=True)
    assert one.target != two.target
    two.client().submit_jobs("new-queue", "s", [job_request_item()])
    assert [j.queue for j in two.jobs()] == ["new-queue"] and one.jobs() == []
"""


def test_plugin_fixtures_work_in_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=5)


def test_plugin_registers_its_marker(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*local_armada(**options)*"])
