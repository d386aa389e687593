"""Queue CRUD on the local Armada, through ``api.QueueService`` and the legacy ``api.Submit``.

Every behaviour is checked on both services: the one the current ``ArmadaClient`` calls
(``create_queue``, ``get_queue``, ...) and the queue RPCs ``api.Submit`` still carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import grpc
import pytest
from armada_client.armada import health_pb2, submit_pb2, submit_pb2_grpc

from armada_hooks.testing import job_request_item

if TYPE_CHECKING:
    from collections.abc import Sequence

    from armada_client.client import ArmadaClient

    from armada_hooks.testing import LocalArmada

pytestmark = pytest.mark.local_armada(time_scale=50)


class QueueStub(Protocol):
    """The queue RPCs ``api.QueueService`` and ``api.Submit`` share."""

    CreateQueue: grpc.UnaryUnaryMultiCallable
    CreateQueues: grpc.UnaryUnaryMultiCallable
    UpdateQueue: grpc.UnaryUnaryMultiCallable
    UpdateQueues: grpc.UnaryUnaryMultiCallable
    DeleteQueue: grpc.UnaryUnaryMultiCallable
    GetQueue: grpc.UnaryUnaryMultiCallable
    GetQueues: grpc.UnaryStreamMultiCallable


def _read_queue_stream(stub: QueueStub, num: int = 0) -> tuple[list[submit_pb2.Queue], bool]:
    """The queues streamed by GetQueues, and whether the stream ended with an end marker."""
    queues: list[submit_pb2.Queue] = []
    ended = False
    for message in stub.GetQueues(submit_pb2.StreamingQueueGetRequest(num=num)):
        assert not ended, "a message arrived after the end marker"
        if message.HasField("queue"):
            queues.append(message.queue)
        elif message.HasField("end"):
            ended = True
    return queues, ended


@dataclass
class ClientQueues:
    """``api.QueueService`` through the real ``ArmadaClient``'s queue methods."""

    client: ArmadaClient

    @property
    def stub(self) -> QueueStub:
        return self.client.queue_stub

    def create(self, queue: submit_pb2.Queue) -> None:
        self.client.create_queue(queue)

    def get(self, name: str) -> submit_pb2.Queue:
        return self.client.get_queue(name)

    def update(self, queue: submit_pb2.Queue) -> None:
        self.client.update_queue(queue)

    def delete(self, name: str) -> None:
        self.client.delete_queue(name)

    def create_many(
        self, queues: Sequence[submit_pb2.Queue]
    ) -> submit_pb2.BatchQueueCreateResponse:
        return self.client.create_queues(list(queues))

    def update_many(
        self, queues: Sequence[submit_pb2.Queue]
    ) -> submit_pb2.BatchQueueUpdateResponse:
        return self.client.update_queues(list(queues))

    def get_all(self) -> list[submit_pb2.Queue]:
        return self.client.get_queues()


@dataclass
class LegacySubmitQueues:
    """The legacy queue RPCs of ``api.Submit``, through the generated ``SubmitStub``."""

    stub: submit_pb2_grpc.SubmitStub

    def create(self, queue: submit_pb2.Queue) -> None:
        self.stub.CreateQueue(queue)

    def get(self, name: str) -> submit_pb2.Queue:
        return self.stub.GetQueue(submit_pb2.QueueGetRequest(name=name))

    def update(self, queue: submit_pb2.Queue) -> None:
        self.stub.UpdateQueue(queue)

    def delete(self, name: str) -> None:
        self.stub.DeleteQueue(submit_pb2.QueueDeleteRequest(name=name))

    def create_many(
        self, queues: Sequence[submit_pb2.Queue]
    ) -> submit_pb2.BatchQueueCreateResponse:
        return self.stub.CreateQueues(submit_pb2.QueueList(queues=queues))

    def update_many(
        self, queues: Sequence[submit_pb2.Queue]
    ) -> submit_pb2.BatchQueueUpdateResponse:
        return self.stub.UpdateQueues(submit_pb2.QueueList(queues=queues))

    def get_all(self) -> list[submit_pb2.Queue]:
        queues, ended = _read_queue_stream(self.stub)
        assert ended
        return queues


Queues = ClientQueues | LegacySubmitQueues


@pytest.fixture(params=["QueueService", "Submit"])
def queues(request: pytest.FixtureRequest, local_armada: LocalArmada) -> Queues:
    if request.param == "QueueService":
        return ClientQueues(local_armada.client())
    return LegacySubmitQueues(submit_pb2_grpc.SubmitStub(local_armada.channel()))


def _queue(name: str, priority_factor: float = 1.0, **fields: object) -> submit_pb2.Queue:
    return submit_pb2.Queue(name=name, priority_factor=priority_factor, **fields)


def _names(queues: Sequence[submit_pb2.Queue]) -> list[str]:
    return sorted(q.name for q in queues)


# -- create and get (internal/server/queue/queue_service.go, pkg/client/queue/queue.go) --

ALL_VERBS = ["submit", "cancel", "preempt", "reprioritize", "watch"]


def _subjects(queue: submit_pb2.Queue) -> list[list[tuple[str, str]]]:
    """Each permission's subjects as (kind, name)."""
    return [[(s.kind, s.name) for s in p.subjects] for p in queue.permissions]


def test_a_created_queue_reads_back_as_armada_stores_it(queues: Queues) -> None:
    queues.create(
        _queue(
            "team-a",
            2.5,
            user_owners=["alice", "bob"],
            group_owners=["data-eng"],
            labels={"cost-centre": "42", "tier": "gold"},
            resource_limits={"cpu": 0.5},
        )
    )
    fetched = queues.get("team-a")
    assert (fetched.name, fetched.priority_factor) == ("team-a", 2.5)
    assert dict(fetched.labels) == {"cost-centre": "42", "tier": "gold"}
    # Owners become one permission for every verb; the owner fields themselves and the
    # deprecated resource_limits are not kept (queue.NewQueue / Queue.ToAPI).
    assert _subjects(fetched) == [[("User", "alice"), ("User", "bob"), ("Group", "data-eng")]]
    assert list(fetched.permissions[0].verbs) == ALL_VERBS
    assert list(fetched.user_owners) == list(fetched.group_owners) == []
    assert dict(fetched.resource_limits) == {}


def test_a_queue_created_without_user_owners_is_owned_by_its_creator(queues: Queues) -> None:
    queues.create(_queue("mine", group_owners=["ops"]))
    assert _subjects(queues.get("mine")) == [[("User", "anonymous"), ("Group", "ops")]]


def test_explicit_permissions_follow_the_owners_permission(queues: Queues) -> None:
    watcher = submit_pb2.Queue.Permissions(
        subjects=[submit_pb2.Queue.Permissions.Subject(kind="Group", name="viewers")],
        verbs=["watch"],
    )
    queues.create(_queue("shared", user_owners=["alice"], permissions=[watcher]))
    fetched = queues.get("shared")
    assert _subjects(fetched) == [[("User", "alice")], [("Group", "viewers")]]
    assert list(fetched.permissions[1].verbs) == ["watch"]


def test_creating_an_existing_queue_overwrites_it_as_armadas_upsert_does(queues: Queues) -> None:
    # queue_repository.go: CreateQueue and UpdateQueue both upsert.
    queues.create(_queue("team-a", 2.0))
    queues.create(_queue("team-a", 3.0))
    assert queues.get("team-a").priority_factor == 3.0
    queues.create(_queue("default", 4.0))
    assert queues.get("default").priority_factor == 4.0


def test_a_queue_created_through_one_service_is_seen_by_the_other(
    local_armada: LocalArmada,
) -> None:
    client = ClientQueues(local_armada.client())
    legacy = LegacySubmitQueues(submit_pb2_grpc.SubmitStub(local_armada.channel()))
    client.create(_queue("via-queue-service", 4.0))
    legacy.create(_queue("via-submit", 5.0))
    assert legacy.get("via-queue-service").priority_factor == 4.0
    assert client.get("via-submit").priority_factor == 5.0


INVALID_QUEUES = [
    pytest.param(
        _queue("half", 0.5),
        "failed to map priority factor. priority factor cannot be lower than 1.0. Value: 0.500000",
        id="factor-below-1",
    ),
    pytest.param(
        _queue("zero", 0.0),
        "failed to map priority factor. priority factor cannot be lower than 1.0. Value: 0.000000",
        id="zero-factor",
    ),
    pytest.param(
        _queue("labelled", labels={"tier": ""}),
        "queue labels must not have an empty key or value, key: tier, value: ",
        id="empty-label-value",
    ),
    pytest.param(
        _queue(
            "odd",
            permissions=[
                submit_pb2.Queue.Permissions(
                    subjects=[
                        submit_pb2.Queue.Permissions.Subject(kind="User", name="a"),
                        submit_pb2.Queue.Permissions.Subject(kind="Robot", name="b"),
                    ]
                )
            ],
        ),
        "failed to map permission with index: 0. failed to map subjects. "
        "failed to map kind with index: 1. invalid kind value: Robot",
        id="subject-kind",
    ),
]


@pytest.mark.parametrize(("queue", "message"), INVALID_QUEUES)
def test_creating_an_invalid_queue_is_invalid_argument_with_armadas_message(
    queues: Queues, queue: submit_pb2.Queue, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as excinfo:
        queues.create(queue)
    assert excinfo.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert excinfo.value.details() == f"error validating queue: {message}"
    assert _names(queues.get_all()) == ["default"]


def test_a_queue_naming_a_retry_policy_is_refused_as_no_policy_exists(queues: Queues) -> None:
    # The local Armada serves no RetryPolicyService, so every named policy is unknown.
    with pytest.raises(grpc.RpcError) as excinfo:
        queues.create(_queue("retrying", retry_policies=["p1", "p2"]))
    assert excinfo.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (
        excinfo.value.details() == 'error creating queue: retry policies do not exist: "p1", "p2"'
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        queues.update(_queue("default", retry_policies=["p1"]))
    assert excinfo.value.details() == 'error updating queue: retry policies do not exist: "p1"'


def test_an_empty_queue_name_is_not_refused_as_armada_does_not_check_it(queues: Queues) -> None:
    queues.create(_queue(""))
    assert _names(queues.get_all()) == ["", "default"]


def test_getting_a_missing_queue_is_not_found(queues: Queues) -> None:
    with pytest.raises(grpc.RpcError) as excinfo:
        queues.get("ghost")
    assert excinfo.value.code() is grpc.StatusCode.NOT_FOUND
    assert excinfo.value.details() == 'error: could not find queue "ghost"'


# -- update -----------------------------------------------------------------------


def test_updating_a_queue_replaces_its_fields(queues: Queues) -> None:
    queues.create(_queue("team-a", 1.0, user_owners=["alice"], labels={"tier": "gold"}))
    queues.update(_queue("team-a", 3.0, user_owners=["carol"], labels={"tier": "silver"}))
    fetched = queues.get("team-a")
    assert fetched.priority_factor == 3.0
    assert _subjects(fetched) == [[("User", "carol")]]
    assert dict(fetched.labels) == {"tier": "silver"}


def test_an_update_without_owners_leaves_the_queue_without_permissions(queues: Queues) -> None:
    queues.create(_queue("team-a", user_owners=["alice"]))
    queues.update(_queue("team-a", 2.0))
    assert list(queues.get("team-a").permissions) == []


def test_updating_a_missing_queue_creates_it_as_armadas_upsert_does(queues: Queues) -> None:
    queues.update(_queue("ghost", 2.0))
    assert queues.get("ghost").priority_factor == 2.0


@pytest.mark.parametrize(("queue", "message"), INVALID_QUEUES[:2])
def test_updating_with_an_invalid_queue_is_invalid_argument_with_armadas_message(
    queues: Queues, queue: submit_pb2.Queue, message: str
) -> None:
    renamed = submit_pb2.Queue()
    renamed.CopyFrom(queue)
    renamed.name = "default"
    with pytest.raises(grpc.RpcError) as excinfo:
        queues.update(renamed)
    assert excinfo.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert excinfo.value.details() == f"error: {message}"
    assert queues.get("default").priority_factor == 1.0


# -- delete -----------------------------------------------------------------------


def test_a_deleted_queue_is_gone(queues: Queues) -> None:
    queues.create(_queue("team-a"))
    queues.delete("team-a")
    with pytest.raises(grpc.RpcError) as excinfo:
        queues.get("team-a")
    assert excinfo.value.code() is grpc.StatusCode.NOT_FOUND
    assert _names(queues.get_all()) == ["default"]


def test_deleting_a_missing_queue_succeeds(queues: Queues) -> None:
    queues.delete("ghost")  # queue_repository.go: a DELETE that matches no row
    assert _names(queues.get_all()) == ["default"]


def test_a_deleted_queue_refuses_new_submissions(
    queues: Queues, local_armada: LocalArmada, local_armada_client: ArmadaClient
) -> None:
    queues.create(_queue("short-lived"))
    response = local_armada_client.submit_jobs("short-lived", "set", [job_request_item(["true"])])
    (accepted,) = [r.job_id for r in response.job_response_items]
    queues.delete("short-lived")
    with pytest.raises(grpc.RpcError) as excinfo:
        local_armada_client.submit_jobs("short-lived", "set", [job_request_item(["true"])])
    assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert 'could not find queue "short-lived"' in excinfo.value.details()
    assert [j.job_id for j in local_armada.jobs()] == [accepted]


def test_a_queue_can_be_created_again_after_deletion(queues: Queues) -> None:
    queues.create(_queue("phoenix", 1.0))
    queues.delete("phoenix")
    queues.create(_queue("phoenix", 7.0))
    assert queues.get("phoenix").priority_factor == 7.0


# -- batches ------------------------------------------------------------------------


def test_create_queues_reports_failures_as_grpc_errors_and_creates_the_rest(
    queues: Queues,
) -> None:
    batch = [
        _queue("new-1", 2.0),
        _queue("default", 3.0),
        _queue("bad-factor", 0.0),
        _queue("new-2", 3.0, user_owners=["alice"]),
    ]
    response = queues.create_many(batch)
    assert [(f.queue, f.error) for f in response.failed_queues] == [
        (
            batch[2],
            "rpc error: code = InvalidArgument desc = error validating queue: failed to map "
            "priority factor. priority factor cannot be lower than 1.0. Value: 0.000000",
        )
    ]
    assert _names(queues.get_all()) == ["default", "new-1", "new-2"]
    assert queues.get("new-1").priority_factor == 2.0
    assert queues.get("default").priority_factor == 3.0
    assert _subjects(queues.get("new-2")) == [[("User", "alice")]]


def test_create_queues_with_a_name_twice_keeps_the_last(queues: Queues) -> None:
    response = queues.create_many([_queue("twice", 2.0), _queue("twice", 5.0)])
    assert list(response.failed_queues) == []
    assert queues.get("twice").priority_factor == 5.0


def test_create_queues_with_no_failures_reports_none(queues: Queues) -> None:
    response = queues.create_many([_queue("a"), _queue("b")])
    assert list(response.failed_queues) == []
    assert _names(queues.get_all()) == ["a", "b", "default"]


def test_update_queues_reports_failures_as_grpc_errors_and_updates_the_rest(
    queues: Queues,
) -> None:
    queues.create(_queue("team-a", 1.0))
    batch = [
        _queue("team-a", 4.0, labels={"tier": "gold"}),
        _queue("ghost", 2.0),
        _queue("default", -2.0),
    ]
    response = queues.update_many(batch)
    assert [(f.queue, f.error) for f in response.failed_queues] == [
        (
            batch[2],
            "rpc error: code = InvalidArgument desc = error: failed to map priority factor. "
            "priority factor cannot be lower than 1.0. Value: -2.000000",
        )
    ]
    team_a = queues.get("team-a")
    assert team_a.priority_factor == 4.0
    assert dict(team_a.labels) == {"tier": "gold"}
    assert queues.get("default").priority_factor == 1.0
    assert _names(queues.get_all()) == ["default", "ghost", "team-a"]


# -- listing ------------------------------------------------------------------------


def test_get_queues_lists_every_queue(queues: Queues) -> None:
    names = [f"q-{i:02d}" for i in range(12)]
    assert (
        list(
            queues.create_many([_queue(n, float(i + 1)) for i, n in enumerate(names)]).failed_queues
        )
        == []
    )
    listed = queues.get_all()
    assert _names(listed) == sorted(["default", *names])
    assert len(listed) == len({q.name for q in listed})
    by_name = {q.name: q for q in listed}
    assert [by_name[n].priority_factor for n in names] == [float(i + 1) for i in range(12)]


@pytest.mark.parametrize("service", ["QueueService", "Submit"])
def test_get_queues_streams_every_queue_then_an_end_marker(
    local_armada: LocalArmada, service: str
) -> None:
    for name in ("b", "c", "a"):
        local_armada.create_queue(name)
    stub: QueueStub = (
        submit_pb2_grpc.QueueServiceStub(local_armada.channel())
        if service == "QueueService"
        else submit_pb2_grpc.SubmitStub(local_armada.channel())
    )
    listed, ended = _read_queue_stream(stub)
    assert ended
    assert _names(listed) == ["a", "b", "c", "default"]


@pytest.mark.parametrize("service", ["QueueService", "Submit"])
@pytest.mark.parametrize("num", [1, 3])
def test_get_queues_num_limits_how_many_are_streamed(
    local_armada: LocalArmada, service: str, num: int
) -> None:
    for name in ("q1", "q2", "q3", "q4"):
        local_armada.create_queue(name)
    stub: QueueStub = (
        submit_pb2_grpc.QueueServiceStub(local_armada.channel())
        if service == "QueueService"
        else submit_pb2_grpc.SubmitStub(local_armada.channel())
    )
    everything, _ = _read_queue_stream(stub)
    limited, ended = _read_queue_stream(stub, num=num)
    assert ended
    assert len(limited) == num
    assert {q.name for q in limited} <= {q.name for q in everything}
    assert len({q.name for q in limited}) == num


@pytest.mark.parametrize("service", ["QueueService", "Submit"])
def test_get_queues_num_larger_than_the_queue_count_streams_them_all(
    local_armada: LocalArmada, service: str
) -> None:
    local_armada.create_queue("other")
    stub: QueueStub = (
        submit_pb2_grpc.QueueServiceStub(local_armada.channel())
        if service == "QueueService"
        else submit_pb2_grpc.SubmitStub(local_armada.channel())
    )
    listed, ended = _read_queue_stream(stub, num=50)
    assert ended
    assert _names(listed) == ["default", "other"]


# -- health -------------------------------------------------------------------------


def test_submit_health_is_serving(local_armada_client: ArmadaClient) -> None:
    assert local_armada_client.submit_health().status == health_pb2.HealthCheckResponse.SERVING


def test_event_health_is_serving(local_armada_client: ArmadaClient) -> None:
    assert local_armada_client.event_health().status == health_pb2.HealthCheckResponse.SERVING
