"""The local Armada serves a thousand watching event streams at once, and stays responsive.

A job service follows one watching GetJobSetEvents stream per job set, so a local Armada
standing in for a real one must hold that many open streams without starving its unary
RPCs, and deliver each stream's events as they happen.
"""

from __future__ import annotations

import asyncio

import pytest
from armada_client.armada import event_pb2, event_pb2_grpc, submit_pb2, submit_pb2_grpc

from armada_hooks.testing import LocalArmada, job_request_item

STREAMS = 1_200


@pytest.mark.timeout(120)
async def test_a_thousand_watching_streams_each_get_their_events_and_unary_calls_still_answer():
    with LocalArmada(queues=["default"], time_scale=20) as armada:
        async with armada.aio_channel() as channel:
            events = event_pb2_grpc.EventStub(channel)
            streams = [
                events.GetJobSetEvents(
                    event_pb2.JobSetRequest(queue="default", id=f"set-{n}", watch=True)
                )
                for n in range(STREAMS)
            ]
            firsts = [asyncio.ensure_future(stream.read()) for stream in streams]
            await asyncio.sleep(1.0)  # every stream is open and waiting on the server

            # while all of them wait, a unary call answers at once
            submit = submit_pb2_grpc.SubmitStub(channel)
            for n in range(STREAMS):
                request = submit_pb2.JobSubmitRequest(
                    queue="default", job_set_id=f"set-{n}", job_request_items=[job_request_item()]
                )
                await submit.SubmitJobs(request, timeout=10)

            first_messages = await asyncio.wait_for(asyncio.gather(*firsts), timeout=60)
            for n, message in enumerate(first_messages):
                assert message.message.WhichOneof("events") == "submitted", n
                assert message.message.submitted.job_set_id == f"set-{n}"
            assert armada.rpc_count("GetJobSetEvents") == STREAMS
            for stream in streams:
                stream.cancel()
