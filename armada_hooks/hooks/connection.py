"""The ``armada`` Airflow connection, parsed and checked once.

============================  ===========================================================
connection field              meaning
============================  ===========================================================
host, port                    the Armada gRPC endpoint (``armada.example.com``, ``50051``)
password                      bearer token (sent as ``authorization: Bearer``; never logged)
extra ``tls``                 ``true`` to use TLS (default ``false``)
extra ``ca_cert``             CA bundle: a file path or PEM text (default: system roots)
extra ``client_cert``         client certificate for mutual TLS: path or PEM
extra ``client_key``          its private key: path or PEM (both or neither)
extra ``rpc_timeout``         deadline of every RPC, seconds (default 30)
extra ``lookout_url``         Armada's Lookout UI, for links (``https://lookout.example.com``)
extra ``binoculars_target``   Binoculars endpoint per cluster, a template with
                              ``{cluster}`` (``binoculars-{cluster}.example.com:443``)
extra ``default_queue``       queue used when an operator names none
extra ``event_mode``          ``true``: deferred waits follow job-set event streams instead of
                              polling (triggers may still choose; default ``false``)
extra ``log_interval``        seconds between container-log fetches while a job writes
                              (default 5; a quiet log is fetched less often, down to once a
                              minute)
extra ``job_service_target``  ``host:port`` of an ``armada-hooks job-service``: statuses
                              are asked of it (same TLS and token settings) instead of
                              Armada's query API; submit, cancel and the rest go to Armada
============================  ===========================================================

Extras may also be spelled ``extra__armada__<name>`` (older Airflow UIs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from armada_hooks import _compat
from armada_hooks.channels import ChannelSpec
from armada_hooks.defaults import DEFAULT_LOG_INTERVAL, DEFAULT_RPC_TIMEOUT
from armada_hooks.errors import ArmadaConnectionError

if TYPE_CHECKING:
    from armada_hooks._compat import Connection

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
_CHANNEL_SECURITY = ("tls", "ca_cert", "client_cert", "client_key", "token")
EXTRA_FIELDS = (
    "tls",
    "ca_cert",
    "client_cert",
    "client_key",
    "rpc_timeout",
    "lookout_url",
    "binoculars_target",
    "default_queue",
    "event_mode",
    "log_interval",
    "job_service_target",
)


def _connection_type() -> dict[str, Any]:
    from armada_hooks import get_provider_info

    return dict(get_provider_info()["connection-types"][0])


def form_widgets(_hook: type) -> dict[str, Any]:
    """The Armada fields of Airflow 2's connection form (3.2+ reads ``conn-fields``)."""
    return _compat.connection_form_widgets(_connection_type()["conn-fields"])


def form_behaviour(_hook: type) -> dict[str, Any]:
    """Airflow 2's hidden, relabelled and placeholder fields of the connection form."""
    return _compat.ui_field_behaviour(_connection_type()["ui-field-behaviour"])


@dataclass(frozen=True)
class ArmadaConnectionConfig:
    """What an ``armada`` connection says, validated; the token is kept out of ``repr``."""

    conn_id: str
    host: str
    port: int | None = None
    token: str | None = dataclasses.field(default=None, repr=False)
    tls: bool = False
    ca_cert: bytes | None = dataclasses.field(default=None, repr=False)
    client_cert: bytes | None = dataclasses.field(default=None, repr=False)
    client_key: bytes | None = dataclasses.field(default=None, repr=False)
    rpc_timeout: float = DEFAULT_RPC_TIMEOUT
    lookout_url: str | None = None
    binoculars_target: str | None = None
    default_queue: str | None = None
    event_mode: bool = False
    log_interval: float = DEFAULT_LOG_INTERVAL
    job_service_target: str | None = None

    @property
    def target(self) -> str:
        """``host:port`` to dial."""
        return f"{self.host}:{self.port}" if self.port else self.host

    def channel_spec(self, target: str | None = None) -> ChannelSpec:
        """How to reach Armada (or, with ``target``, a Binoculars endpoint) with these settings."""
        security = {name: getattr(self, name) for name in _CHANNEL_SECURITY}
        return ChannelSpec(target=target or self.target, deadline=self.rpc_timeout, **security)

    def job_service_spec(self) -> ChannelSpec | None:
        """How to reach the job service (Armada's TLS and token); None when none is set."""
        return self.channel_spec(self.job_service_target) if self.job_service_target else None

    def binoculars_for(self, cluster: str) -> str | None:
        """The Binoculars target of ``cluster`` (None when the connection names none)."""
        if not self.binoculars_target:
            return None
        return self.binoculars_target.replace("{cluster}", cluster)

    @classmethod
    def from_connection(cls, conn: Connection) -> ArmadaConnectionConfig:
        """Parse and check a connection; :class:`ArmadaConnectionError` says what to fix."""
        conn_id = conn.conn_id
        extras = _extras(conn)

        def fail(field: str, problem: str) -> ArmadaConnectionError:
            return ArmadaConnectionError(f"Airflow connection {conn_id!r}: {field} {problem}")

        host = (conn.host or "").strip()
        if not host:
            raise fail("host", "is empty; set it to the Armada gRPC server's host name")
        if "://" in host:
            raise fail("host", f"{host!r} must be a bare host name, without a scheme")
        port = conn.port
        if port is not None and not 0 < int(port) < 65536:
            raise fail("port", f"{port} is not a TCP port")
        tls = _bool(extras.get("tls", False), fail("tls", "must be true or false"))
        rpc_timeout = _seconds(extras, "rpc_timeout", DEFAULT_RPC_TIMEOUT, fail)
        log_interval = _seconds(extras, "log_interval", DEFAULT_LOG_INTERVAL, fail)
        ca_cert = _pem(extras.get("ca_cert"), fail("ca_cert", "cannot be read"))
        client_cert = _pem(extras.get("client_cert"), fail("client_cert", "cannot be read"))
        client_key = _pem(extras.get("client_key"), fail("client_key", "cannot be read"))
        if (client_cert is None) != (client_key is None):
            raise fail("client_cert/client_key", "must be given together for mutual TLS")
        if (ca_cert or client_cert) and not tls:
            raise fail("tls", "must be true when certificates are configured")
        binoculars = str(extras.get("binoculars_target") or "").strip() or None
        event_mode = _bool(
            extras.get("event_mode", False), fail("event_mode", "must be true or false")
        )
        job_service = str(extras.get("job_service_target") or "").strip() or None
        if job_service is not None and ("://" in job_service or "/" in job_service):
            raise fail(
                "job_service_target",
                f"{job_service!r} must be host:port, without a scheme or path",
            )
        return cls(
            conn_id=conn_id,
            host=host,
            port=int(port) if port else None,
            token=conn.password or None,
            tls=tls,
            ca_cert=ca_cert,
            client_cert=client_cert,
            client_key=client_key,
            rpc_timeout=rpc_timeout,
            lookout_url=str(extras.get("lookout_url") or "").rstrip("/") or None,
            binoculars_target=binoculars,
            default_queue=str(extras.get("default_queue") or "").strip() or None,
            event_mode=event_mode,
            log_interval=log_interval,
            job_service_target=job_service,
        )


def _extras(conn: Connection) -> dict[str, Any]:
    raw = conn.extra_dejson
    extras = {}
    for name in EXTRA_FIELDS:
        for key in (name, f"extra__armada__{name}"):
            if raw.get(key) not in (None, ""):
                extras[name] = raw[key]
                break
    return extras


def _seconds(
    extras: dict[str, Any],
    name: str,
    default: float,
    fail: Callable[[str, str], ArmadaConnectionError],
) -> float:
    try:
        seconds = float(extras.get(name) or default)
    except (TypeError, ValueError):
        raise fail(name, "must be a number of seconds") from None
    if not seconds > 0:
        raise fail(name, "must be > 0 seconds")
    return seconds


def _bool(value: Any, error: ArmadaConnectionError) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise error


def _pem(value: Any, error: ArmadaConnectionError) -> bytes | None:
    if value in (None, ""):
        return None
    text = str(value)
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode()
    try:
        return Path(text).expanduser().read_bytes()
    except OSError as exc:
        raise ArmadaConnectionError(f"{error.message}: {exc.strerror} ({text})") from None


class ConfigLoader:
    """Loads one connection's :class:`ArmadaConnectionConfig` once, blocking or not.

    ``get`` and ``aget`` fetch an Airflow connection by id (the hook passes its own
    ``get_connection`` / ``aget_connection``). Concurrent async callers share one lookup;
    a failed lookup is tried again by the next call. Any failure to load becomes an
    :class:`ArmadaConnectionError` that says how to define the connection.
    """

    def __init__(
        self,
        conn_id: str,
        get: Callable[[str], Connection],
        aget: Callable[[str], Awaitable[Connection]],
    ) -> None:
        self.conn_id = conn_id
        self._get = get
        self._aget = aget
        self._config: ArmadaConnectionConfig | None = None
        self._loading: asyncio.Task[ArmadaConnectionConfig] | None = None

    def load(self) -> ArmadaConnectionConfig:
        """The config, looked up on first use."""
        if self._config is None:
            try:
                conn = self._get(self.conn_id)
            except ArmadaConnectionError:
                raise
            except Exception as exc:
                raise self._unloadable(exc) from exc
            self._config = ArmadaConnectionConfig.from_connection(conn)
        return self._config

    async def aload(self) -> ArmadaConnectionConfig:
        """The config, looked up without blocking the event loop."""
        if self._config is None:
            loop = asyncio.get_running_loop()
            loading = self._loading
            if loading is None or loading.get_loop() is not loop or _failed(loading):
                loading = self._loading = loop.create_task(self._fetch())
            config = await asyncio.shield(loading)
            if self._config is None:
                self._config = config
        return self._config

    async def _fetch(self) -> ArmadaConnectionConfig:
        try:
            conn = await self._aget(self.conn_id)
        except Exception as exc:
            raise self._unloadable(exc) from exc
        return ArmadaConnectionConfig.from_connection(conn)

    def _unloadable(self, exc: Exception) -> ArmadaConnectionError:
        env = f"AIRFLOW_CONN_{self.conn_id.upper()}"
        why = unparsable_reason(os.environ.get(env, ""))
        if why is not None:
            return ArmadaConnectionError(
                f"Airflow connection {self.conn_id!r}: {env} is set, but Airflow cannot parse "
                f"it: {why}"
            )
        return ArmadaConnectionError(
            f"Airflow connection {self.conn_id!r} could not be loaded ({exc}); "
            f"define it, e.g. {env}='armada://armada.example.com:50051'"
        )


def unparsable_reason(value: str) -> str | None:
    """Why an ``AIRFLOW_CONN_*`` value cannot be parsed, in words; None if it looks fine.

    The value itself is never quoted back: it may hold the token.
    """
    text = value.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        return None
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme:
        return "a connection URI starts with its type, e.g. armada://host:50051"
    if "://" in rest:
        return (
            "a value in it contains '://' unescaped; URL-encode the extras' values, e.g. "
            "lookout_url=https%3A%2F%2Flookout.example.com"
        )
    try:
        urlsplit(text).port  # noqa: B018  (parsing the port is the check)
    except ValueError:
        return "its port is not a number (a value with ':' or '/' needs URL-encoding)"
    return None


def _failed(task: asyncio.Future[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)
