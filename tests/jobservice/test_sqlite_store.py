"""The SQLite store: WAL, atomic records, what survives reopening, purge."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from armada_hooks.errors import ArmadaJobServiceConfigError
from armada_hooks.jobservice.sqlite_store import SQLiteStore, open_store
from armada_hooks.jobservice.store import JobRecord
from armada_hooks.states import JobState

KEY = ("q", "set")


def test_file_store_is_in_wal_mode_and_survives_reopening(tmp_path: Path):
    path = tmp_path / "js.db"
    store = SQLiteStore(path)
    assert store.journal_mode() == "wal"
    store.touch(KEY, 100.0)
    store.record(
        KEY, "m2", [JobRecord("a", JobState.RUNNING), JobRecord("b", JobState.FAILED, "x")]
    )
    store.close()
    again = SQLiteStore(path)
    assert again.jobs(KEY) == {
        "a": JobRecord("a", JobState.RUNNING),
        "b": JobRecord("b", JobState.FAILED, "x"),
    }
    record = again.job_set(KEY)
    assert record is not None
    assert (record.last_message_id, record.touched, record.all_terminal) == ("m2", 100.0, False)
    again.close()


def test_later_records_update_jobs_and_all_terminal_follows_them():
    store = SQLiteStore(":memory:")
    store.record(KEY, "m1", [JobRecord("a", JobState.RUNNING)])
    store.record(KEY, "m5", [JobRecord("a", JobState.SUCCEEDED)])
    assert store.jobs(KEY)["a"].state is JobState.SUCCEEDED
    [record] = store.job_sets()
    assert record.last_message_id == "m5"
    assert record.all_terminal


def test_touch_never_moves_back_and_an_empty_job_set_counts_as_all_terminal():
    store = SQLiteStore(":memory:")
    store.touch(KEY, 50.0)
    store.touch(KEY, 10.0)
    record = store.job_set(KEY)
    assert record is not None
    assert record.touched == 50.0
    assert record.all_terminal


def test_a_failed_record_writes_nothing():
    store = SQLiteStore(":memory:")
    store.record(KEY, "m1", [JobRecord("a", JobState.RUNNING)])

    class Boom:
        job_id = "b"

        @property
        def state(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.record(KEY, "m9", [JobRecord("c", JobState.QUEUED), Boom()])  # type: ignore[list-item]
    assert set(store.jobs(KEY)) == {"a"}
    assert store.job_set(KEY).last_message_id == "m1"  # type: ignore[union-attr]


def test_purge_deletes_the_job_set_and_only_it():
    store = SQLiteStore(":memory:")
    store.record(KEY, "m1", [JobRecord("a", JobState.SUCCEEDED)])
    store.record(("q", "other"), "m1", [JobRecord("b", JobState.SUCCEEDED)])
    store.purge(KEY)
    assert store.job_set(KEY) is None
    assert store.jobs(KEY) == {}
    assert [r.key for r in store.job_sets()] == [("q", "other")]


def test_job_sets_of_other_queues_are_kept_apart():
    store = SQLiteStore(":memory:")
    store.record(("q1", "set"), "m1", [JobRecord("a", JobState.RUNNING)])
    assert store.jobs(("q2", "set")) == {}


def test_store_addresses(tmp_path: Path):
    assert open_store(f"sqlite:{tmp_path / 'a.db'}").journal_mode() == "wal"
    assert open_store("sqlite::memory:").path == ":memory:"
    with pytest.raises(ArmadaJobServiceConfigError, match="use sqlite:PATH"):
        open_store("redis://127.0.0.1:6379/0")
    with pytest.raises(ArmadaJobServiceConfigError, match="does not exist"):
        open_store(f"sqlite:{tmp_path / 'missing' / 'a.db'}")
    not_sqlite = tmp_path / "not.db"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ArmadaJobServiceConfigError, match="cannot be used as SQLite"):
        SQLiteStore(not_sqlite)
    assert sqlite3.sqlite_version  # the stdlib module is what the store runs on
