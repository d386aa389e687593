"""Real execution mode: a job's first container command runs as a local subprocess.

Its merged stdout/stderr become the job's log lines (timestamped as they are read) and
its exit code decides SUCCEEDED or FAILED. Cancelling or preempting the job kills it.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from armada_hooks.testing.records import JobRecord

LineSink = Callable[[str, str], None]
ExitSink = Callable[[str, int, str], None]


def container_command(job: JobRecord) -> tuple[list[str], dict[str, str], str | None]:
    """argv, extra environment and working directory of the job's first container."""
    pod = job.item.pod_spec if job.item.HasField("pod_spec") else job.item.pod_specs[0]
    container = pod.containers[0]
    argv = list(container.command) + list(container.args)
    env = {e.name: e.value for e in container.env}
    return argv, env, container.workingDir or None


class ProcessRunner:
    """Starts, watches and kills the subprocesses of jobs in real execution mode."""

    def __init__(self, on_line: LineSink, on_exit: ExitSink) -> None:
        self._on_line = on_line
        self._on_exit = on_exit
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self._lock = threading.Lock()

    def start(self, job: JobRecord) -> None:
        """Run the job's command; report lines and the exit through the sinks."""
        argv, env, cwd = container_command(job)
        if not argv:
            self._on_exit(
                job.job_id,
                127,
                "container has no command; subprocess execution runs the first "
                "container's command + args",
            )
            return
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **env},
                cwd=cwd,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        except OSError as exc:
            self._on_exit(job.job_id, 127, f"could not start container command {argv!r}: {exc}")
            return
        with self._lock:
            self._procs[job.job_id] = proc
        threading.Thread(
            target=self._watch,
            args=(job.job_id, proc),
            name=f"local-armada-run-{job.job_id}",
            daemon=True,
        ).start()

    def _watch(self, job_id: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._on_line(job_id, line.rstrip("\n"))
        code = proc.wait()
        with self._lock:
            self._procs.pop(job_id, None)
        reason = "" if code == 0 else f"Container main exited with code {code}"
        self._on_exit(job_id, code, reason)

    def kill(self, job_id: str) -> None:
        """Kill the job's process, if it has one."""
        with self._lock:
            proc = self._procs.pop(job_id, None)
        if proc is not None and proc.poll() is None:
            proc.kill()

    def kill_all(self) -> None:
        """Kill every process (server stop)."""
        with self._lock:
            procs, self._procs = list(self._procs.values()), {}
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
