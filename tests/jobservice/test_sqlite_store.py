"""The SQLite store's own traits: WAL, addresses (the shared suite is test_stores.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from armada_hooks.jobservice.settings import JobServiceConfigError
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


def test_store_addresses(tmp_path: Path):
    assert open_store(f"sqlite:{tmp_path / 'a.db'}").journal_mode() == "wal"
    assert open_store("sqlite::memory:").path == ":memory:"
    with pytest.raises(JobServiceConfigError, match="use sqlite:PATH or redis://"):
        open_store("postgres://127.0.0.1:5432/js")
    with pytest.raises(JobServiceConfigError, match="does not exist"):
        open_store(f"sqlite:{tmp_path / 'missing' / 'a.db'}")
    not_sqlite = tmp_path / "not.db"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JobServiceConfigError, match="cannot be used as SQLite"):
        SQLiteStore(not_sqlite)
    assert sqlite3.sqlite_version  # the stdlib module is what the store runs on
