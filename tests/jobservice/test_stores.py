"""One suite for every job-service store (SQLite, Redis): atomic records, what survives
reopening, touch times, all-terminal, purge, job sets kept apart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from armada_hooks.jobservice.redis_store import RedisStore
from armada_hooks.jobservice.sqlite_store import SQLiteStore
from armada_hooks.jobservice.store import JobRecord, JobStateStore
from armada_hooks.states import JobState

KEY = ("q", "set")


@pytest.fixture(params=["sqlite", "redis"])
def open_again(request, tmp_path: Path) -> Iterator[Callable[[], JobStateStore]]:
    """``open_again()``: a new store on the same data (a file, or a Redis database)."""
    opened: list[JobStateStore] = []

    def open_one() -> JobStateStore:
        if request.param == "sqlite":
            store: JobStateStore = SQLiteStore(tmp_path / "js.db")
        else:
            store = RedisStore(request.getfixturevalue("redis_url"))
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_again: Callable[[], JobStateStore]) -> JobStateStore:
    return open_again()


def test_what_was_recorded_survives_reopening(open_again):
    store = open_again()
    store.touch(KEY, 100.0)
    store.record(
        KEY, "m2", [JobRecord("a", JobState.RUNNING), JobRecord("b", JobState.FAILED, "x")]
    )
    store.close()
    again = open_again()
    assert again.jobs(KEY) == {
        "a": JobRecord("a", JobState.RUNNING),
        "b": JobRecord("b", JobState.FAILED, "x"),
    }
    record = again.job_set(KEY)
    assert record is not None
    assert (record.last_message_id, record.touched, record.all_terminal) == ("m2", 100.0, False)


def test_later_records_update_jobs_and_all_terminal_follows_them(store):
    store.record(KEY, "m1", [JobRecord("a", JobState.RUNNING)])
    assert not store.job_set(KEY).all_terminal
    store.record(KEY, "m5", [JobRecord("a", JobState.SUCCEEDED)])
    assert store.jobs(KEY)["a"].state is JobState.SUCCEEDED
    [record] = store.job_sets()
    assert record.last_message_id == "m5"
    assert record.all_terminal


def test_a_record_without_changes_moves_the_message_id(store):
    store.record(KEY, "m1", [JobRecord("a", JobState.QUEUED, "")])
    store.record(KEY, "m2", [])
    assert store.job_set(KEY).last_message_id == "m2"
    assert store.jobs(KEY) == {"a": JobRecord("a", JobState.QUEUED)}


def test_touch_never_moves_back_and_an_empty_job_set_counts_as_all_terminal(store):
    store.touch(KEY, 50.0)
    store.touch(KEY, 10.0)
    record = store.job_set(KEY)
    assert record is not None
    assert (record.touched, record.last_message_id, record.all_terminal) == (50.0, "", True)
    store.record(KEY, "m1", [])
    assert store.job_set(KEY).touched == 50.0  # a record keeps the touch time


def test_touch_many_touches_each_job_set_and_never_moves_one_back(store):
    other = ("q", "other-set")
    store.touch(KEY, 50.0)
    store.touch_many({KEY: 10.0, other: 30.0})
    store.touch_many({})
    touched = {r.key: r.touched for r in store.job_sets()}
    assert touched == {KEY: 50.0, other: 30.0}


def test_a_failed_record_writes_nothing(store):
    store.record(KEY, "m1", [JobRecord("a", JobState.RUNNING)])

    class Boom:
        job_id = "b"

        @property
        def state(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.record(KEY, "m9", [JobRecord("c", JobState.QUEUED), Boom()])  # type: ignore[list-item]
    assert set(store.jobs(KEY)) == {"a"}
    assert store.job_set(KEY).last_message_id == "m1"


def test_purge_deletes_the_job_set_and_only_it(store):
    store.record(KEY, "m1", [JobRecord("a", JobState.SUCCEEDED)])
    store.record(("q", "other"), "m1", [JobRecord("b", JobState.SUCCEEDED)])
    store.purge(KEY)
    assert store.job_set(KEY) is None
    assert store.jobs(KEY) == {}
    assert [r.key for r in store.job_sets()] == [("q", "other")]


def test_job_sets_of_other_queues_and_odd_names_are_kept_apart(store):
    store.record(("q1", "set"), "m1", [JobRecord("a", JobState.RUNNING)])
    store.record(("q1:set", ""), "m1", [JobRecord("b", JobState.RUNNING)])
    store.touch(("q", 'with "quotes", and:colons'), 1.0)
    assert store.jobs(("q2", "set")) == {}
    assert store.jobs(("q1", "set")) == {"a": JobRecord("a", JobState.RUNNING)}
    assert [r.key for r in store.job_sets()] == [
        ("q", 'with "quotes", and:colons'),
        ("q1", "set"),
        ("q1:set", ""),
    ]
