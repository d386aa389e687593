"""The job service's shared store: one Redis database, for several job-service replicas.

Per job set, a hash ``<prefix>set:<key>`` (``last_message_id``, ``touched``) and a hash
``<prefix>jobs:<key>`` (job id -> ``state`` and ``reason``); the set ``<prefix>sets``
lists the job sets held. A record's job changes and its message id are written in one
``MULTI``/``EXEC`` transaction, so a stream resumed from the stored id replays nothing
that was applied and misses nothing that was not. ``touch`` never moves a time back
(a small Lua script compares and sets in one step). Durability is Redis's own (run it
with ``appendonly yes`` to keep states across a Redis restart).

Replicas sharing the database follow each job set one at a time: ``<prefix>lease:<key>``
names the holder (the store's ``owner``) and expires unless renewed
(:class:`~.store.LeasedStore`); a record for a job set whose lease another replica holds
is refused, in the same script that writes it.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from armada_hooks.jobservice.settings import JobServiceConfigError
from armada_hooks.jobservice.store import (
    JobRecord,
    JobSetKey,
    JobSetRecord,
    LeaseLostError,
    StreamDown,
)
from armada_hooks.states import TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

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


_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
# KEYS: lease, set, jobs, sets. ARGV: owner, message id, member, then job id / value pairs.
_RECORD = """
local holder = redis.call('GET', KEYS[1])
if holder ~= false and holder ~= ARGV[1] then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[2], 'last_message_id', ARGV[2])
redis.call('HSETNX', KEYS[2], 'touched', '0')
redis.call('SADD', KEYS[4], ARGV[3])
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
    :param owner: this replica's name in the leases (default: a new random one).
    """

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX, owner: str = "") -> None:
        import redis

        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise JobServiceConfigError(
                f"job service store: {parts.scheme}://... is not a Redis address; "
                "use redis://HOST:PORT/DB"
            )
        self.address = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
        try:
            self._redis: Any = redis.Redis.from_url(url, socket_timeout=10)
            self._redis.ping()
        except redis.RedisError as exc:
            raise JobServiceConfigError(
                f"job service store redis://{self.address} cannot be reached: {exc}"
            ) from None
        except ValueError as exc:
            raise JobServiceConfigError(
                f"job service store redis://{self.address}: {exc}"
            ) from None
        self.prefix = prefix
        self._touch = self._redis.register_script(_TOUCH)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)
        self._record_script = self._redis.register_script(_RECORD)
        self.owner = owner or uuid.uuid4().hex

    def _lease_key(self, key: JobSetKey) -> str:
        return f"{self.prefix}lease:{_member(key)}"

    def acquire(self, key: JobSetKey, ttl: float) -> bool:
        """Take or renew the job set's lease for ``ttl`` seconds; False if another holds it."""
        ms = max(1, int(ttl * 1000))
        return bool(self._acquire(keys=[self._lease_key(key)], args=[self.owner, ms]))

    def release(self, key: JobSetKey) -> None:
        """Give the job set's lease up, if this store's owner holds it."""
        self._release(keys=[self._lease_key(key)], args=[self.owner])

    def lease_holder(self, key: JobSetKey) -> str | None:
        """The owner holding the job set's lease now, or None."""
        holder = self._redis.get(self._lease_key(key))
        return holder.decode() if holder is not None else None

    def _stream_key(self, key: JobSetKey) -> str:
        return f"{self.prefix}stream:{_member(key)}"

    def set_stream_down(self, key: JobSetKey, down: StreamDown | None) -> None:
        """(The lease holder.) Since when its stream of the job set has not worked, and why.

        None: it works.
        """
        if down is None:
            self._redis.delete(self._stream_key(key))
        else:
            self._redis.set(self._stream_key(key), json.dumps([down.since, down.problem]))

    def stream_down(self, key: JobSetKey) -> StreamDown | None:
        """What the lease holder last recorded of its stream of the job set (None: works)."""
        raw = self._redis.get(self._stream_key(key))
        if raw is None:
            return None
        since, problem = json.loads(raw)
        return StreamDown(float(since), str(problem))

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
        """Write the changed jobs and the job set's last message id in one step.

        :raises LeaseLostError: another replica holds the job set's lease; nothing written.
        """
        pairs: list[str] = []
        for c in changes:
            pairs += [c.job_id, json.dumps([c.state.value, c.reason])]
        keys = [self._lease_key(key), self._set_key(key), self._jobs_key(key), self._sets]
        args = [self.owner, message_id, _member(key), *pairs]
        if not self._record_script(keys=keys, args=args):
            raise LeaseLostError(
                f"job set {key[1]!r} of queue {key[0]!r} is followed by another replica now"
            )

    def touch(self, key: JobSetKey, when: float) -> None:
        """Note a request at ``when`` (epoch seconds); never moves the time back."""
        self.touch_many({key: when})

    def touch_many(self, touches: Mapping[JobSetKey, float]) -> None:
        """Note requests (epoch seconds by job set) in one round trip."""
        if not touches:
            return
        pipe = self._redis.pipeline(transaction=False)
        for key, when in touches.items():
            self._touch(
                keys=[self._set_key(key), self._sets], args=[repr(when), _member(key)], client=pipe
            )
        pipe.execute()

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
        pipe.delete(self._set_key(key), self._jobs_key(key), self._stream_key(key))
        pipe.srem(self._sets, _member(key))
        pipe.execute()

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()
