"""The Redis store's own traits: its address, a Redis restart (append-only file), keys
under a prefix (the shared suite is test_stores.py)."""

from __future__ import annotations

import pytest
from redis_helpers import free_port

from armada_hooks.jobservice.redis_store import RedisStore
from armada_hooks.jobservice.settings import JobServiceConfigError
from armada_hooks.jobservice.sqlite_store import open_store
from armada_hooks.jobservice.store import JobRecord
from armada_hooks.states import JobState

KEY = ("q", "set")


def test_redis_addresses(redis_url):
    store = open_store(redis_url)
    assert isinstance(store, RedisStore)
    store.close()
    port = free_port()
    with pytest.raises(JobServiceConfigError, match=f"127.0.0.1:{port}/0 cannot be reached"):
        RedisStore(f"redis://:secret-pw@127.0.0.1:{port}/0")
    with pytest.raises(JobServiceConfigError) as caught:
        RedisStore(f"redis://:secret-pw@127.0.0.1:{port}/0")
    assert "secret-pw" not in str(caught.value)
    with pytest.raises(JobServiceConfigError, match="use redis://HOST:PORT/DB"):
        RedisStore("http://127.0.0.1:6379/0")


def test_states_survive_a_redis_restart(redis_server, redis_url):
    store = RedisStore(redis_url)
    store.record(KEY, "m7", [JobRecord("a", JobState.FAILED, "exit 1")])
    redis_server.restart()
    assert store.jobs(KEY) == {"a": JobRecord("a", JobState.FAILED, "exit 1")}  # reconnects
    assert store.job_set(KEY).last_message_id == "m7"
    store.close()


def test_two_prefixes_share_one_database(redis_url):
    one, two = RedisStore(redis_url, prefix="one:"), RedisStore(redis_url, prefix="two:")
    one.record(KEY, "m1", [JobRecord("a", JobState.RUNNING)])
    assert two.job_sets() == []
    assert [r.key for r in one.job_sets()] == [KEY]
    one.close()
    two.close()
