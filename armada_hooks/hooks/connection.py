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
extra ``rpc_timeout``         deadline of every RPC, seconds (default 30; at most a day)
extra ``lookout_url``         Armada's Lookout UI, for links (``https://lookout.example.com``)
extra ``binoculars_target``   Binoculars endpoint per cluster, a template with
                              ``{cluster}`` (``binoculars-{cluster}.example.com:443``)
extra ``default_queue``       queue used when an operator names none
extra ``event_mode``          ``true``: deferred waits follow job-set event streams instead of
                              polling (triggers may still choose; default ``false``)
extra ``log_interval``        seconds between container-log fetches while a job writes
                              (default 5, at most a day; a quiet log is fetched less often,
                              down to once a minute)
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

_Fail = Callable[[str, str], ArmadaConnectionError]  # (field, problem) -> the error
MAX_SECONDS = 86400.0  # rpc_timeout and log_interval: a day at most
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

        def fail(field: str, problem: str) -> ArmadaConnectionError:
            return ArmadaConnectionError(f"Airflow connection {conn_id!r}: {field} {problem}")

        extras = _extras(conn, fail)
        host = str(conn.host or "").strip()
        if not host:
            raise fail("host", "is empty; set it to the Armada gRPC server's host name")
        if "://" in host:
            raise fail("host", f"{host!r} must be a bare host name, without a scheme")
        port = _port(conn.port, fail)
        tls = _bool(extras.get("tls", False), fail("tls", "must be true or false"))
        rpc_timeout = _seconds(extras, "rpc_timeout", DEFAULT_RPC_TIMEOUT, fail)
        log_interval = _seconds(extras, "log_interval", DEFAULT_LOG_INTERVAL, fail)
        ca_cert = _pem(extras.get("ca_cert"), "ca_cert", fail)
        client_cert = _pem(extras.get("client_cert"), "client_cert", fail)
        client_key = _pem(extras.get("client_key"), "client_key", fail)
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
            port=port,
            token=_token(conn.password, fail),
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


def _extras(conn: Connection, fail: _Fail) -> dict[str, Any]:
    text = conn.extra
    if isinstance(text, str) and text.strip():
        # Read here first: Airflow's extra_dejson logs a bad one's traceback and returns {},
        # which would quietly drop every setting (tls among them).
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise fail("extra", f"is not valid JSON ({exc.msg} at {where})") from None
        if not isinstance(parsed, dict):
            kind = type(parsed).__name__
            raise fail("extra", f"must be a JSON object of settings, not a {kind}") from None
    raw = conn.extra_dejson  # Airflow's reading: it masks sensitive values in logs
    extras = {}
    for name in EXTRA_FIELDS:
        for key in (name, f"extra__armada__{name}"):
            if raw.get(key) not in (None, ""):
                extras[name] = raw[key]
                break
    return extras


def _port(port: object, fail: _Fail) -> int | None:
    if port in (None, ""):
        return None
    try:
        number = int(str(port))
    except ValueError:
        raise fail("port", f"{port!r} is not a number") from None
    if not 0 < number < 65536:
        raise fail("port", f"{number} is not a TCP port (1-65535)")
    return number


def _token(password: str | None, fail: _Fail) -> str | None:
    """The bearer token: a gRPC header value can carry printable ASCII only."""
    token = (password or "").strip()  # a token pasted with its line end
    if token and not all(" " <= c <= "~" for c in token):
        # Never quote the token back: say only what is wrong with it.
        raise fail(
            "password",
            "(the bearer token) holds characters a gRPC header cannot carry (line breaks, "
            "tabs or non-ASCII); paste the token alone",
        )
    return token or None


def _seconds(extras: dict[str, Any], name: str, default: float, fail: _Fail) -> float:
    value = extras.get(name, default)
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        raise fail(name, "must be a number of seconds") from None
    if not 0 < seconds <= MAX_SECONDS:  # NaN fails too
        # gRPC turns a deadline past what it can hold into DEADLINE_EXCEEDED at once.
        raise fail(name, f"must be > 0 and at most {MAX_SECONDS:g} seconds (a day)")
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


def _pem(value: Any, field: str, fail: _Fail) -> bytes | None:
    """PEM bytes from a file path or PEM text, checked to hold what ``field`` needs.

    gRPC itself would take any bytes and fail every call's handshake as UNAVAILABLE,
    retried as if the server were down.
    """
    if value in (None, ""):
        return None
    text = str(value)
    if text.lstrip().startswith("-----BEGIN"):
        data, source = text.encode(), "the PEM text"
    else:
        try:
            data = Path(text).expanduser().read_bytes()
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            why = getattr(exc, "strerror", None) or "not a file path"
            raise fail(field, f"cannot be read: {why} ({text!r})") from None
        source = f"the file {text}"
    problem = pem_problem(data, private_key=field == "client_key")
    if problem:
        raise fail(field, f"is not usable: {source} {problem}")
    return data


def pem_problem(data: bytes, *, private_key: bool) -> str | None:
    """What is wrong with PEM ``data`` as certificates (or a private key); None if it loads.

    Never quotes the data: a key is secret.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        if private_key:
            load_pem_private_key(data, password=None)
        else:
            x509.load_pem_x509_certificates(data)
    except TypeError:
        return "holds an encrypted private key; give it without a passphrase"
    except (ValueError, UnsupportedAlgorithm):
        wanted = "an unencrypted PEM private key" if private_key else "PEM certificates"
        return f"does not hold {wanted}"
    return None


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
            fields = json.loads(text)
        except json.JSONDecodeError as exc:
            return f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        port = fields.get("port") if isinstance(fields, dict) else None
        if port not in (None, ""):
            try:
                int(port)
            except (TypeError, ValueError):
                return "its port is not a whole number"
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
