"""Run by the historic environment's Python (armada-airflow 0.5.6, grpcio 1.58), never ours.

``python historic_client.py TARGET QUEUE JOB_SET JOB_ID...`` asks the job service at
TARGET about each job with the old operator's own JobServiceClient and
JobServiceAsyncIOClient, and prints one JSON object: the grpcio version, each job's
(state name, error) from both clients, and both health answers.
"""

import asyncio
import json
import sys

import grpc
from armada.jobservice import jobservice_pb2
from armada.operators.jobservice import JobServiceClient
from armada.operators.jobservice_asyncio import JobServiceAsyncIOClient

State = jobservice_pb2.JobServiceResponse.State
Health = jobservice_pb2.HealthCheckResponse.ServingStatus


def answer(response):
    return [State.Name(response.state), response.error]


async def ask_async(target, queue, job_set, job_ids):
    async with grpc.aio.insecure_channel(target) as channel:
        client = JobServiceAsyncIOClient(channel)
        states = [answer(await client.get_job_status(queue, job_set, j)) for j in job_ids]
        return states, Health.Name((await client.health()).status)


def main():
    target, queue, job_set, *job_ids = sys.argv[1:]
    client = JobServiceClient(grpc.insecure_channel(target))
    sync_states = [answer(client.get_job_status(queue, job_set, j)) for j in job_ids]
    async_states, async_health = asyncio.run(ask_async(target, queue, job_set, job_ids))
    print(
        json.dumps(
            {
                "grpc": grpc.__version__,
                "sync": sync_states,
                "async": async_states,
                "health": [Health.Name(client.health().status), async_health],
            }
        )
    )


if __name__ == "__main__":
    main()
