"""Callers are answered about a queue only if Armada lets their own token watch it."""

from __future__ import annotations

import grpc
import pytest
from js_helpers import historic, submit

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.jobservice.client import JobServiceClient
from armada_hooks.jobservice.permissions import bearer_token

TOKEN = "caller-and-service-token"


def client(service, token=None):
    return JobServiceClient(open_channel(ChannelSpec(service.target, token=token)))


@pytest.mark.local_armada(token=TOKEN)
def test_an_authenticating_armada_decides_who_is_answered(local_armada, job_service):
    [job_id] = submit(local_armada, "guarded", {"armada-hooks/runtime": "1h"})
    allowed = client(job_service, TOKEN)
    assert historic(allowed, "default", "guarded", job_id)[0] in ("SUBMITTED", "RUNNING")
    for caller, who in (
        (client(job_service), "without a token"),
        (client(job_service, "nope"), "token"),
    ):
        with pytest.raises(grpc.RpcError) as denied:
            caller.get_job_status("default", "guarded", job_id)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert who in denied.value.details()
        assert "queue 'default'" in denied.value.details()
        assert "nope" not in denied.value.details()  # a token is never echoed
        with pytest.raises(grpc.RpcError) as batched:
            caller.get_job_states([("default", "guarded", job_id)])
        assert batched.value.code() is grpc.StatusCode.PERMISSION_DENIED
    # verdicts are cached per token: the allowed caller asks again without a new check,
    # and the cache never lets another token in
    probes = job_service.call(lambda core: core.access.probes)
    assert historic(allowed, "default", "guarded", job_id)[0] in ("SUBMITTED", "RUNNING")
    assert job_service.call(lambda core: core.access.probes) == probes == 3


def test_an_armada_without_authentication_lets_tokenless_callers_in(local_armada, job_service):
    [job_id] = submit(local_armada, "open", {"armada-hooks/runtime": "1h"})
    assert historic(client(job_service), "default", "open", job_id)[0] in ("SUBMITTED", "RUNNING")
    assert historic(client(job_service, "any"), "default", "open", job_id)[0] != "JOB_ID_NOT_FOUND"


def test_bearer_token_reads_the_authorization_header():
    assert bearer_token((("authorization", "Bearer abc"),)) == "abc"
    assert bearer_token((("Authorization", "bearer abc"),)) == "abc"
    assert bearer_token((("authorization", "Basic abc"),)) is None
    assert bearer_token(()) is None


def test_a_caller_that_goes_away_does_not_fail_the_check_others_wait_for(local_armada):
    import asyncio

    from armada_hooks.jobservice.permissions import QueueAccess

    local_armada.faults.delay("GetJobSetEvents", 0.5)  # the check takes a while

    async def scenario() -> None:
        access = QueueAccess(local_armada.channel_spec(), ttl=10.0, timeout=10.0)
        try:
            first = asyncio.ensure_future(access.check(None, "default"))
            await asyncio.sleep(0.1)  # the check is under way for the first caller
            second = asyncio.ensure_future(access.check(None, "default"))
            await asyncio.sleep(0.05)
            first.cancel()  # its caller went away
            await second  # still answered: allowed
            assert access.probes == 1
        finally:
            await access.close()

    asyncio.run(scenario())
