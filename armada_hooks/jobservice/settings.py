"""The job service's timings, each with its default and each configurable."""

from __future__ import annotations

from dataclasses import dataclass, fields

from armada_hooks.defaults import DEFAULT_RPC_TIMEOUT

DEFAULT_CONNECTION_GRACE = 30.0  # seconds without a working stream before CONNECTION_ERR
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds without a request before a job set's stream closes
DEFAULT_RETENTION = 3600.0  # seconds an all-terminal, untouched job set is kept
DEFAULT_LEASE_TTL = 5.0  # seconds a replica's lease on a job set lasts unrenewed


class JobServiceConfigError(ValueError):
    """A job service setting or store address it cannot use; the message says which and why.

    Not an Airflow exception, unlike those of :mod:`armada_hooks.errors`: the job service
    runs without Airflow, and importing Airflow would cost it seconds at every start.
    """


@dataclass(frozen=True)
class JobServiceSettings:
    """How the job service follows job sets (seconds throughout).

    - ``connection_grace``: a job set whose stream has not worked for this long answers
      CONNECTION_ERR for jobs that have not ended;
    - ``idle_timeout``: a job set no request asked about for this long stops being followed
      (its states stay in the store, and a later request resumes the stream);
    - ``retention``: a job set whose known jobs have all ended, and that no request touched
      for this long, is deleted from the store;
    - ``catch_up_quiet``: a stream that, after its first message, delivers nothing for this
      long has replayed what Armada had (only then can an id it has not shown be asked of
      the query API);
    - ``empty_replay_wait``: a stream that has delivered no message at all for this long
      counts as caught up on an empty job set (a stream does not say when it has opened);
    - ``first_answer_wait``: the first request of a job set waits at most this long for
      that replay before answering from what is known;
    - ``replay_patience``: a stream not caught up this long after its job set began to be
      followed (a job set so busy that its stream is never quiet) no longer holds back the
      ids it has not shown: they are asked of the query API like those of a caught-up one;
    - ``stream_ok_after``: a stream open this long without an error counts as working;
    - ``query_window``: ids unseen by their stream are gathered this long into one
      GetJobStatus call;
    - ``query_refresh``: an id known only from the query API (or not at all) is asked
      again at most this often, on request;
    - ``sweep_interval``: how often idle streams and expired job sets are looked for, and
      request times persisted;
    - ``health_interval``: how often Armada's own Health is asked;
    - ``reconnect_wait_max``: the longest pause between reopens of a failing stream (the
      pauses double up to it; the first reopen after a working stream is immediate);
    - ``permission_ttl``: how long Armada's word on whether a caller (token) may watch a
      queue is reused;
    - ``rpc_timeout``: the deadline of each unary call to Armada;
    - ``lease_ttl``: with a shared store (Redis), the lease by which one replica follows
      a job set expires this long after its holder last renewed it (renewed every third
      of it); another replica asked about the job set takes it over then, and until
      then answers from the store (read every fifth of it).
    """

    connection_grace: float = DEFAULT_CONNECTION_GRACE
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    retention: float = DEFAULT_RETENTION
    catch_up_quiet: float = 0.5
    empty_replay_wait: float = 3.0
    first_answer_wait: float = 2.0
    replay_patience: float = 30.0
    stream_ok_after: float = 1.0
    query_window: float = 0.02
    query_refresh: float = 10.0
    sweep_interval: float = 5.0
    health_interval: float = 5.0
    reconnect_wait_max: float = 10.0
    permission_ttl: float = 10.0
    rpc_timeout: float = DEFAULT_RPC_TIMEOUT
    lease_ttl: float = DEFAULT_LEASE_TTL

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or value < 0:
                raise JobServiceConfigError(
                    f"job service setting {f.name} must be a number of seconds >= 0, got {value!r}"
                )
        for name in (
            "rpc_timeout",
            "sweep_interval",
            "health_interval",
            "reconnect_wait_max",
            "lease_ttl",
        ):
            if getattr(self, name) == 0:
                raise JobServiceConfigError(f"job service setting {name} must be > 0")
