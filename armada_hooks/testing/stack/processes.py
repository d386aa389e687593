"""Processes of the real stack: started with their log in a file, stopped by their PID.

Each process leads a session of its own (``start_new_session``), so that its process
group holds what it forks (the scheduler's LocalExecutor workers, a triggerer's trigger
runner, the API server's workers) and stopping it stops them: the signal goes to the
group whose id is the PID we started, never to a name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

LOOPBACK = "127.0.0.1"
STOP_GRACE = 20.0  # seconds a process gets to exit after SIGTERM before SIGKILL


class StackError(RuntimeError):
    """A part of the real stack did not start or stay up; the message names its log."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ManagedProcess:
    """One long-running command, its output in ``log_path``, stopped by its PID."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The PID of the started command (also its process group id)."""
        if self.proc is None:
            raise StackError(f"{self.name} has not been started")
        return self.proc.pid

    def start(self) -> ManagedProcess:
        """Start the command, appending its stdout and stderr to the log file."""
        if self.proc is not None and self.proc.poll() is None:
            raise StackError(f"{self.name} is already running (pid {self.proc.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
            )
        return self

    def running(self) -> bool:
        """Whether the command is still running."""
        return self.proc is not None and self.proc.poll() is None

    def check_running(self) -> None:
        """Raise :class:`StackError` (with the log's tail) if the command has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise StackError(
                f"{self.name} exited with code {self.proc.returncode}; its log "
                f"{self.log_path} ends:\n{self.log_tail()}"
            )

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the log file."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process and its group at once (a crash, for fault scenarios)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Ask the process group to stop; SIGKILL what is left after ``grace`` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(self.stop_signal)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        # Children that outlived their leader (a worker still exiting) share its group.
        self._signal_group(signal.SIGKILL)


def run_checked(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float,
    user: str | None = None,
) -> None:
    """Run a one-off command to completion, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"--- {time.strftime('%H:%M:%S')} run: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            done = subprocess.run(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"{name} did not finish within {timeout:g}s; see {log_path}") from None
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise StackError(f"{name} failed with code {done.returncode}; {log_path} ends:\n{tail}")


def wait_until(
    condition: object,
    *,
    timeout: float,
    what: str,
    processes: Sequence[ManagedProcess] = (),
    interval: float = 0.25,
) -> None:
    """Poll ``condition()`` until true; fail early if one of ``processes`` exits."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        for process in processes:
            process.check_running()
        try:
            if condition():  # type: ignore[operator]
                return
            last_error = None
        except Exception as exc:  # not ready yet: reported on timeout
            last_error = exc
        if time.monotonic() >= deadline:
            why = f" (last error: {last_error})" if last_error else ""
            raise StackError(f"timed out after {timeout:g}s waiting for {what}{why}")
        time.sleep(interval)
