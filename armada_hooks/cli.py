"""The ``armada-hooks`` command: local Armada, a look inside any Armada, job service, demo."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from armada_hooks.defaults import DEFAULT_CONN_ENV, DEFAULT_RPC_TIMEOUT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from armada_hooks.channels import ChannelSpec
    from armada_hooks.testing import LocalArmada

TOKEN_ENV = "ARMADA_HOOKS_LOCAL_TOKEN"
ENV = DEFAULT_CONN_ENV
NO_JOB_SET_LISTING = (
    "--job-set is required: Armada has no call that lists a queue's job sets "
    "(only the local Armada answers that)"
)


class UsageError(Exception):
    """A command-line value the command cannot use; the message says which and why."""


def _read_token(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace removed); never echoed."""
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read token file {path}: {exc.strerror}") from exc
    if not token:
        raise UsageError(f"token file {path} is empty")
    return token


def _local_armada_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "local-armada",
        help="serve a local Armada (Armada's gRPC API) until interrupted",
        description="Serve Submit, QueueService, Jobs, Event and Binoculars on one port.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind (default 0: any free port)")
    p.add_argument("--state", type=Path, help="SQLite file that keeps jobs across restarts")
    p.add_argument("--queue", action="append", default=[], help="create this queue (repeatable)")
    p.add_argument(
        "--auto-create-queues", action="store_true", help="create unknown queues on submit"
    )
    p.add_argument("--time-scale", type=float, default=1.0, help="job-seconds per real second")
    p.add_argument(
        "--ingestion-delay",
        type=float,
        default=0.0,
        help="job-seconds before a new job shows in the query API",
    )
    p.add_argument(
        "--execution",
        choices=("simulate", "subprocess"),
        default="simulate",
        help="simulate jobs, or run each job's first container command as a local process",
    )
    p.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="[NAME:]RESOURCE=QUANTITY,...",
        help="a simulated node, e.g. 'cpu=16,memory=64Gi' (repeatable; default: one node "
        "with cpu=8,memory=32Gi,ephemeral-storage=100Gi); jobs that fit on none are rejected",
    )
    p.add_argument(
        "--lookout-url",
        help="a Lookout UI to link jobs to; it goes into the printed connection",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        help=f"require this bearer token (or set {TOKEN_ENV}); never pass a token on argv",
    )
    p.add_argument(
        "--tls-dir",
        type=Path,
        help="serve TLS with a generated test CA; its PEM files are written to this folder",
    )


def _serve(args: argparse.Namespace) -> int:
    from armada_hooks.testing import LocalArmada, ServerTls, make_test_pki
    from armada_hooks.testing.cluster import DEFAULT_NODES, NodeConfigError, parse_node

    try:
        nodes = [
            parse_node(spec, default_name=f"local-node-{i}")
            for i, spec in enumerate(args.node, start=1)
        ] or list(DEFAULT_NODES)
    except NodeConfigError as exc:
        raise UsageError(f"--node: {exc}") from exc

    token = os.environ.get(TOKEN_ENV) or None
    if args.token_file is not None:
        token = _read_token(args.token_file)
    tls, paths = None, {}
    if args.tls_dir is not None:
        pki = make_test_pki()
        paths = pki.write(args.tls_dir)
        tls = ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key)
        print(f"TLS: CA certificate for clients at {paths['ca_cert']}", flush=True)
    same_name = ("host", "port", "auto_create_queues", "time_scale", "ingestion_delay")
    armada = LocalArmada(
        **{name: getattr(args, name) for name in same_name},
        queues=args.queue,
        execution=args.execution,
        state_path=args.state,
        token=token,
        tls=tls,
        nodes=nodes,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    armada.start()
    print(f"local Armada serving on {armada.target}", flush=True)
    for line in _connection_lines(armada, args, token is not None, paths):
        print(line, flush=True)
    try:
        stop.wait()
    finally:
        armada.stop()
        print("local Armada stopped", flush=True)
    return 0


def _connection_lines(
    armada: LocalArmada, args: argparse.Namespace, has_token: bool, paths: dict[str, Path]
) -> list[str]:
    """The Airflow connection to what is served, as a URI and as JSON (no secret in them)."""
    extra: dict[str, str] = {}
    if args.lookout_url:
        extra["lookout_url"] = args.lookout_url
    ca_cert = str(paths["ca_cert"]) if "ca_cert" in paths else None
    placeholder = "TOKEN" if has_token else None
    uri = armada.airflow_connection_uri(ca_cert=ca_cert, token=placeholder, **extra)
    conn = json.loads(armada.airflow_connection())
    conn["extra"].update(extra)
    conn.pop("password", None)
    if placeholder:
        conn["password"] = placeholder
    if ca_cert:
        conn["extra"]["ca_cert"] = ca_cert
    lines = [
        f"  Airflow connection: {ENV}='{uri}'",
        f"  or as JSON:         {ENV}='{json.dumps(conn)}'",
    ]
    if placeholder:
        lines.append("  (TOKEN: the token this server requires; it is never printed)")
    return lines


def _jobs_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "jobs",
        help="list a job set's jobs, states and events (any Armada, the local one included)",
        description="Replay a job set's events, then show each job's state, its events and "
        "why it failed; --watch then prints new events until interrupted. Armada has no "
        "call that lists a queue's jobs, so name the job set; the local Armada also lists "
        "a queue's job sets when --job-set is left out.",
    )
    p.add_argument("--target", required=True, metavar="HOST:PORT", help="Armada's gRPC address")
    p.add_argument("--queue", required=True, help="the job set's queue")
    p.add_argument("--job-set", help="the job set to list (left out: list the job sets)")
    p.add_argument("--watch", action="store_true", help="then print new events until Ctrl-C")
    p.add_argument("--tls", action="store_true", help="connect with TLS (system CA roots)")
    p.add_argument("--ca-cert", type=Path, help="PEM file of the server's CA (implies --tls)")
    p.add_argument(
        "--token-file", type=Path, help="file holding the bearer token (never pass it on argv)"
    )


def _jobs(args: argparse.Namespace) -> int:
    import grpc
    from armada_client.client import ArmadaClient

    from armada_hooks import jobs_view
    from armada_hooks.channels import ChannelSpec, open_channel
    from armada_hooks.rpc import describe_failure
    from armada_hooks.testing.job_sets import list_job_sets

    if args.watch and args.job_set is None:
        raise UsageError("--watch needs --job-set: it follows one job set's events")
    ca_cert = None
    if args.ca_cert is not None:
        try:
            ca_cert = args.ca_cert.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read CA certificate {args.ca_cert}: {exc.strerror}") from exc
    spec = ChannelSpec(
        target=args.target,
        tls=args.tls or ca_cert is not None,
        ca_cert=ca_cert,
        token=_read_token(args.token_file) if args.token_file is not None else None,
        deadline=DEFAULT_RPC_TIMEOUT,
    )
    channel = open_channel(spec)
    try:
        if args.job_set is None:
            try:
                job_sets = list_job_sets(channel, args.queue)
            except grpc.RpcError as exc:
                if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                    raise UsageError(NO_JOB_SET_LISTING) from exc
                raise
            _print(jobs_view.render_job_sets(args.queue, job_sets))
            return 0
        client = ArmadaClient(channel)
        view = jobs_view.read_job_set(client, args.queue, args.job_set, missing_ok=args.watch)
        _print(jobs_view.render_job_set(view))
        if args.watch:
            # Ctrl-C ends the watch even where SIGINT came in ignored (a background job).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            jobs_view.follow(client, view, lambda line: _print([line]))
        return 0
    except grpc.RpcError as exc:
        print(
            f"error: {' '.join(describe_failure(exc).split())} (Armada at {args.target})",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 0 if args.watch else 130
    finally:
        channel.close()


def _job_service_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "job-service",
        help="serve the job service (Armada's historic JobService API) for one Armada",
        description="Follow the job sets callers ask about (one event stream each) and "
        "answer jobservice.JobService, our batched JobStates and grpc.health.v1 on "
        "127.0.0.1 until interrupted.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--armada-target", metavar="HOST:PORT", help="Armada's gRPC address")
    where.add_argument(
        "--armada-conn-id",
        metavar="ID",
        help="take Armada's address, TLS and token from this Airflow connection",
    )
    p.add_argument("--port", type=int, default=0, help="port to bind (default 0: any free port)")
    p.add_argument(
        "--store",
        default="sqlite::memory:",
        metavar="sqlite:PATH|redis://HOST:PORT/DB",
        help="where states are kept (default: in memory; sqlite:PATH survives restarts; "
        "redis://HOST:PORT/DB is shared by replicas)",
    )
    p.add_argument(
        "--token-file", type=Path, help="file holding Armada's bearer token (never on argv)"
    )
    p.add_argument("--tls", action="store_true", help="reach Armada with TLS (system CA roots)")
    p.add_argument("--ca-cert", type=Path, help="PEM file of Armada's CA (implies --tls)")
    p.add_argument("--tls-cert", type=Path, help="serve TLS with this PEM certificate chain")
    p.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    for name, default in (
        ("connection-grace", "30"),
        ("idle-timeout", "300"),
        ("retention", "3600"),
        ("lease-ttl", "5"),
    ):
        p.add_argument(f"--{name}", type=float, help=f"seconds (default {default})")


def job_service_armada(args: argparse.Namespace) -> ChannelSpec:
    """How the job service reaches Armada: ``--armada-target`` and flags, or a connection."""
    from armada_hooks.channels import ChannelSpec

    if args.armada_conn_id is not None:
        if args.tls or args.ca_cert is not None or args.token_file is not None:
            raise UsageError(
                "--armada-conn-id takes TLS and the token from the connection: "
                "leave out --tls, --ca-cert and --token-file"
            )
        from armada_hooks.errors import ArmadaConnectionError
        from armada_hooks.hooks.armada import ArmadaHook

        try:
            return ArmadaHook(armada_conn_id=args.armada_conn_id).config.channel_spec()
        except ArmadaConnectionError as exc:
            raise UsageError(str(exc)) from exc
    ca_cert = None
    if args.ca_cert is not None:
        try:
            ca_cert = args.ca_cert.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read CA certificate {args.ca_cert}: {exc.strerror}") from exc
    return ChannelSpec(
        target=args.armada_target,
        tls=args.tls or ca_cert is not None,
        ca_cert=ca_cert,
        token=_read_token(args.token_file) if args.token_file is not None else None,
    )


def _job_service(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from armada_hooks.jobservice.server import JobServiceServer, tune_collector
    from armada_hooks.jobservice.settings import JobServiceConfigError, JobServiceSettings
    from armada_hooks.jobservice.sqlite_store import open_store

    spec = job_service_armada(args)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together: give both to serve TLS")
    listener_tls = None
    if args.tls_cert is not None:
        try:
            listener_tls = (args.tls_cert.read_bytes(), args.tls_key.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    chosen = {
        name: getattr(args, name)
        for name in ("connection_grace", "idle_timeout", "retention", "lease_ttl")
        if getattr(args, name) is not None
    }
    try:
        settings = dataclasses.replace(JobServiceSettings(), **chosen)
        store = open_store(args.store)
    except JobServiceConfigError as exc:
        raise UsageError(str(exc)) from exc
    server = JobServiceServer(
        spec, store=store, settings=settings, port=args.port, tls=listener_tls
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tune_collector()  # this process is the service
        await server.open()
        print(f"job service serving on {server.target}", flush=True)
        try:
            await stop.wait()
        finally:
            await server.close()
            store.close()

    asyncio.run(run())
    print("job service stopped", flush=True)
    return 0


def _print(lines: list[str]) -> None:
    for line in lines:
        print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``armada-hooks`` console script."""
    parser = argparse.ArgumentParser(prog="armada-hooks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _local_armada_parser(sub)
    _jobs_parser(sub)
    _job_service_parser(sub)
    demo = sub.add_parser("demo", help="run the example DAG against an embedded local Armada")
    demo.add_argument("--time-scale", type=float, default=10.0, help="job-seconds per real second")
    demo.add_argument(
        "--dag-file",
        type=Path,
        default=Path("example_dags/armada_example.py"),
        help="the DAG to run (default: example_dags/armada_example.py)",
    )
    args = parser.parse_args(argv)
    commands = {"local-armada": _serve, "jobs": _jobs, "job-service": _job_service}
    if args.command in commands:
        try:
            return commands[args.command](args)
        except UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    # Quiet Airflow's own INFO logs (read when Airflow is first imported): the demo prints
    # its own progress, container log lines included.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    from armada_hooks.demo import run_demo

    return run_demo(dag_file=args.dag_file, time_scale=args.time_scale)


if __name__ == "__main__":
    sys.exit(main())
