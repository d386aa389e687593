"""The job service's shared store: one Redis database, for several job-service replicas.

Per job set, a hash ``<prefix>set:<key>`` (``last_message_id``, ``touched``) and a hash
``<prefix>jobs:<key>`` (job id -> ``state`` and ``reason``); the set ``<prefix>sets``
lists the job sets held. A record's job changes and its message id are written in one
``MULTI``/``EXEC`` transaction, so a stream resumed from the stored id replays nothing
that was applied and misses nothing that was not. ``touch`` never moves a time back
(a small Lua script compares and sets in one step). Durability is Redis's own (run it
with ``appendonly yes`` to keep states across a Redis restart).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from armada_hooks.errors import ArmadaJobServiceConfigError
from armada_hooks.jobservice.store import JobRecord, JobSetKey, JobSetRecord
from armada_hooks.states import TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_PREFIX = "armada-hooks:job-service:"
_TOUCH = """
local old = tonumber(redis.call('HGET', KEYS[1], 'touched') or '0')
if tonumber(ARGV[1]) > old then redis.call('HSET', KEYS[1], 'touched', ARGV[1]) end
if redis.call('HEXISTS', KEYS[1], 'last_message_id') == 0 then
  redis.call('HSET', KEYS[1], 'last_message_id', '')
end
redis.call('SADD', KEYS[2], ARGV[2])
return 1
"""


def _member(key: JobSetKey) -> str:
    return json.dumps(list(key), separators=(",", ":"))


def _job(job_id: str, raw: bytes | str) -> JobRecord:
    state, reason = json.loads(raw)
    return JobRecord(job_id, JobState(state), reason)


class RedisStore:
    """A :class:`~armada_hooks.jobservice.store.JobStateStore` in one Redis database.

    :param url: ``redis://HOST:PORT/DB`` (``rediss://`` for TLS; a password in the URL
        is passed to Redis and never logged).
    :param prefix: the prefix of every key (several services may share one database).
    """

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        import redis

        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ArmadaJobServiceConfigError(
                f"job service store: {parts.scheme}://... is not a Redis address; "
                "use redis://HOST:PORT/DB"
            )
        self.address = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
        try:
            self._redis: Any = redis.Redis.from_url(url, socket_timeout=10)
            self._redis.ping()
        except redis.RedisError as exc:
            raise ArmadaJobServiceConfigError(
                f"job service store redis://{self.address} cannot be reached: {exc}"
            ) from None
        except ValueError as exc:
            raise ArmadaJobServiceConfigError(
                f"job service store redis://{self.address}: {exc}"
            ) from None
        self.prefix = prefix
        self._touch = self._redis.register_script(_TOUCH)

    def _set_key(self, key: JobSetKey) -> str:
        return f"{self.prefix}set:{_member(key)}"

    def _jobs_key(self, key: JobSetKey) -> str:
        return f"{self.prefix}jobs:{_member(key)}"

    @property
    def _sets(self) -> str:
        return f"{self.prefix}sets"

    def job_set(self, key: JobSetKey) -> JobSetRecord | None:
        """The job set's record, or None."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(self._set_key(key))
        pipe.hvals(self._jobs_key(key))
        fields, jobs = pipe.execute()
        return self._record(key, fields, jobs) if fields else None

    @staticmethod
    def _record(key: JobSetKey, fields: dict[bytes, bytes], jobs: list[bytes]) -> JobSetRecord:
        terminal = {s.value for s in TERMINAL_STATES}
        return JobSetRecord(
            key[0],
            key[1],
            fields.get(b"last_message_id", b"").decode(),
            float(fields.get(b"touched", b"0")),
            all(json.loads(raw)[0] in terminal for raw in jobs),
        )

    def jobs(self, key: JobSetKey) -> dict[str, JobRecord]:
        """Every job of the job set, by id."""
        raw = self._redis.hgetall(self._jobs_key(key))
        return {job.decode(): _job(job.decode(), value) for job, value in raw.items()}

    def record(self, key: JobSetKey, message_id: str, changes: Iterable[JobRecord]) -> None:
        """Write the changed jobs and the job set's last message id in one transaction."""
        mapping = {c.job_id: json.dumps([c.state.value, c.reason]) for c in changes}
        pipe = self._redis.pipeline(transaction=True)
        if mapping:
            pipe.hset(self._jobs_key(key), mapping=mapping)
        pipe.hset(self._set_key(key), "last_message_id", message_id)
        pipe.hsetnx(self._set_key(key), "touched", "0")
        pipe.sadd(self._sets, _member(key))
        pipe.execute()

    def touch(self, key: JobSetKey, when: float) -> None:
        """Note a request at ``when`` (epoch seconds); never moves the time back."""
        self._touch(keys=[self._set_key(key), self._sets], args=[repr(when), _member(key)])

    def job_sets(self) -> list[JobSetRecord]:
        """Every job set held."""
        keys: list[JobSetKey] = sorted(
            (q, s) for q, s in (json.loads(m) for m in self._redis.smembers(self._sets))
        )
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._set_key(key))
            pipe.hvals(self._jobs_key(key))
        replies = pipe.execute()
        records = []
        for i, key in enumerate(keys):
            fields, jobs = replies[2 * i], replies[2 * i + 1]
            if fields:
                records.append(self._record(key, fields, jobs))
        return records

    def purge(self, key: JobSetKey) -> None:
        """Delete the job set and its jobs."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._set_key(key), self._jobs_key(key))
        pipe.srem(self._sets, _member(key))
        pipe.execute()

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()
