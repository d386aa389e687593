"""Every code block of the docs runs against a local Armada, so the docs cannot go stale.

Each page's blocks run in order, in a working folder of the page's own, where the
checkout's ``bench/`` and ``example_dags/`` are linked in (as if in a checkout):

- a ```python block runs in a fresh module, with ``AIRFLOW_CONN_ARMADA_DEFAULT`` pointing
  at a fresh local Armada (queue ``default``, ``TIME_SCALE`` job-seconds per second);
  environment changes are undone afterwards;
- a ```console block preceded by ``<!-- runnable -->`` runs its ``$ `` lines in one bash
  script (same environment, the venv's ``bin`` first on ``PATH``); the lines after a
  command are its expected output: each must match an output line, in order, where
  ``...`` stands for anything. ``<!-- runnable: background -->`` starts a server
  (one command) that stays up for the rest of the page and must exit 0 on Ctrl-C.
  The port the docs use, ``DOCS_PORT``, is replaced by a free one, so that runs on one
  machine do not collide;
- ``<!-- output -->`` before a block: it is the expected stdout of the python block just
  before it (matched the same way);
- ``<!-- file: PATH -->``: the block is written to ``PATH`` for later blocks, one of
  which must name it (its stem will do: a DAG file is named after its DAG);
- ``<!-- pytest -->`` before a python block: it is a test file, run by pytest in a
  subprocess (the armada-hooks plugin comes from its entry point); all must pass;
- ``<!-- real-airflow -->`` before a console block: it needs a real Airflow deployment,
  and tests/stack/test_quickstart.py runs it on the real-stack fixture instead;
- ``<!-- not-runnable: REASON -->``: skipped, and the reason must be given.

Any other block without a marker fails the page, naming the page and line.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from docs_blocks import ROOT, Block, DocsError, matches, parse_blocks, parse_console

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
TIME_SCALE = 60.0
DOCS_PORT = "50051"
CHECKOUT_LINKS = ("bench", "example_dags")
COMMAND_TIMEOUT = 120.0  # seconds for one console block or pytest block
SERVER_START_TIMEOUT = 60.0
SEPARATOR = "@@docs-command@@"


class _Server:
    """A background console command, its output collected by a reader thread."""

    def __init__(self, block: Block, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.block = block
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, expected: str, timeout: float) -> None:
        """Return once the output so far matches ``expected``."""
        deadline = time.monotonic() + timeout
        while not matches(expected, "\n".join(self.seen)):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise DocsError(
                    f"{self.block.where}: the server did not print what the page says "
                    f"within {timeout:g}s.\nexpected:\n{expected}\ngot:\n" + "\n".join(self.seen)
                )
            self.seen.append(line)

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; it must exit 0."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise DocsError(f"{self.block.where}: the server ignored Ctrl-C") from None
        if self.process.returncode != 0:
            raise DocsError(
                f"{self.block.where}: the server exited {self.process.returncode} on Ctrl-C"
            )


class PageRunner:
    """Runs one page's blocks in order (see the module docstring for the rules)."""

    def __init__(self, workdir: Path, start_armada: Callable[..., Any]) -> None:
        self.workdir = workdir
        for name in CHECKOUT_LINKS:
            (workdir / name).symlink_to(ROOT / name)
        self.start_armada = start_armada
        self.port = _free_port()
        self.servers: list[_Server] = []
        self.files: dict[str, Block] = {}
        self.ran: list[str] = []  # code of every block run, to check files are used
        self.last: tuple[Block, str] | None = None  # the last python block and its stdout

    def run_page(self, page: Path) -> int:
        """Run every block of ``page``; how many ran (not counting not-runnable ones)."""
        try:
            count = sum(self.run(block) for block in parse_blocks(page))
            for name, block in self.files.items():
                if not any(Path(name).stem in code for code in self.ran):
                    raise DocsError(f"{block.where}: no later block uses the file {name}")
        except BaseException:
            with contextlib.suppress(DocsError):  # the first failure is the one to report
                self._stop_servers()
            raise
        self._stop_servers()
        return count

    def _stop_servers(self) -> None:
        servers, self.servers = self.servers, []
        for server in servers:
            server.stop()

    def run(self, block: Block) -> int:
        """Run one block; 1 if it ran or was checked, 0 if it is not runnable."""
        marker, lang = block.marker, block.lang
        previous, self.last = self.last, None  # an output block checks the block just before
        if marker == "not-runnable":
            if len(block.arg.split()) < 2:
                raise DocsError(f"{block.where}: say why the block is not runnable")
            return 0
        if marker == "real-airflow":
            if lang != "console":
                raise DocsError(f"{block.where}: <!-- real-airflow --> marks a console block")
            return 0  # tests/stack/test_quickstart.py runs it on a real Airflow
        if marker == "file":
            self._write(block)
        elif marker == "output":
            self._check_output(block, previous)
        elif lang == "python" and marker is None:
            self._python(block)
        elif lang == "python" and marker == "pytest":
            self._pytest(block)
        elif lang == "console" and marker == "runnable":
            self._console(block)
        else:
            raise DocsError(
                f"{block.where}: a ```{lang or 'plain'} block must run or be marked: "
                "<!-- runnable --> (console), <!-- output -->, <!-- file: PATH --> or "
                "<!-- not-runnable: why -->"
            )
        if marker != "file":
            self.ran.append(block.code)
        return 1

    # -- kinds of block -------------------------------------------------------------

    def _write(self, block: Block) -> None:
        if not block.arg:
            raise DocsError(f"{block.where}: <!-- file: PATH --> needs a PATH")
        path = self.workdir / block.arg
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.code)
        self.files[block.arg] = block

    def _check_output(self, block: Block, previous: tuple[Block, str] | None) -> None:
        if previous is None:
            raise DocsError(f"{block.where}: an output block must follow a python block")
        source, stdout = previous
        if not matches(block.code, stdout):
            raise DocsError(
                f"{block.where}: the block at {source.where} printed something else.\n"
                f"expected:\n{block.code}\ngot:\n{stdout}"
            )

    def _python(self, block: Block) -> None:
        name = f"docs_snippet_{block.page.stem}_{block.line}"
        module = types.ModuleType(name)
        module.__file__ = str(block.page)
        code = compile("\n" * block.line + block.code, str(block.page), "exec")
        stdout = io.StringIO()
        with self._environment(), contextlib.chdir(self.workdir):
            sys.modules[name] = module
            try:
                with contextlib.redirect_stdout(stdout):
                    exec(code, module.__dict__)
            except BaseException:
                raise DocsError(
                    f"{block.where}: the python block failed\n{traceback.format_exc()}"
                ) from None
            finally:
                del sys.modules[name]
        self.last = (block, stdout.getvalue())

    def _pytest(self, block: Block) -> None:
        path = self.workdir / f"test_{block.page.stem}_{block.line}.py"
        path.write_text(block.code)
        with self._environment() as env:
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path.name],
                cwd=self.workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        if done.returncode != 0 or " passed" not in done.stdout:
            raise DocsError(f"{block.where}: the test file did not pass\n{done.stdout}")

    def _console(self, block: Block) -> None:
        steps = [
            (command.replace(DOCS_PORT, str(self.port)), out.replace(DOCS_PORT, str(self.port)))
            for command, out in parse_console(block.code)
        ]
        with self._environment() as env:
            if block.arg == "background":
                if len(steps) != 1:
                    raise DocsError(f"{block.where}: a background block runs one command")
                server = _Server(block, steps[0][0], self.workdir, env)
                self.servers.append(server)
                server.wait_for(steps[0][1], SERVER_START_TIMEOUT)
                return
            script = "set -e\n" + "".join(f"echo {SEPARATOR}\n{command}\n" for command, _ in steps)
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=self.workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        outputs = done.stdout.split(f"{SEPARATOR}\n")[1:]
        if done.returncode != 0:
            raise DocsError(
                f"{block.where}: `{steps[len(outputs) - 1][0]}` exited {done.returncode}\n"
                f"{_tail(outputs[-1] if outputs else done.stdout)}"
            )
        for (command, expected), output in zip(steps, outputs, strict=True):
            if not matches(expected, output):
                raise DocsError(
                    f"{block.where}: `{command}` printed something else.\n"
                    f"expected:\n{expected}\ngot (last lines):\n{_tail(output)}"
                )

    @contextlib.contextmanager
    def _environment(self) -> Iterator[dict[str, str]]:
        """A fresh local Armada behind ``armada_default``; the environment is restored."""
        saved = dict(os.environ)
        armada = self.start_armada(queues=["default"], time_scale=TIME_SCALE)
        try:
            os.environ["AIRFLOW_CONN_ARMADA_DEFAULT"] = armada.airflow_connection()
            os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
            yield dict(os.environ)
        finally:
            armada.stop()
            os.environ.clear()
            os.environ.update(saved)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# -- the docs ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_block_of_the_page_runs(page, tmp_path, local_armada_factory):
    PageRunner(tmp_path, local_armada_factory).run_page(page)


def test_the_docs_have_pages_and_snippets():
    assert len(PAGES) >= 10
    assert sum(len(parse_blocks(page)) for page in PAGES) >= 50


# -- the runner's own rules (negative controls) -----------------------------------------


def _run_text(tmp_path, factory, text: str) -> int:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    page = folder / "page.md"
    page.write_text(text)
    (folder / "work").mkdir()
    return PageRunner(folder / "work", factory).run_page(page)


def test_a_failing_block_is_reported_with_its_page_and_line(tmp_path, local_armada_factory):
    text = "# t\n\n```python\nx = 1\n```\n\n```python\nraise ValueError('stale')\n```\n"
    with pytest.raises(DocsError, match=r"page.md:7: the python block failed") as caught:
        _run_text(tmp_path, local_armada_factory, text)
    assert 'page.md", line 8' in str(caught.value)
    assert "stale" in str(caught.value)


def test_blocks_must_run_or_say_why_not(tmp_path, local_armada_factory):
    with pytest.raises(DocsError, match=r"page.md:1: a ```json block must run or be marked"):
        _run_text(tmp_path, local_armada_factory, '```json\n{"a": 1}\n```\n')
    with pytest.raises(DocsError, match=r"page.md:3: a ```json block must run"):
        _run_text(tmp_path, local_armada_factory, "1. in a list:\n\n   ```json\n   {}\n   ```\n")
    with pytest.raises(DocsError, match="say why the block is not runnable"):
        _run_text(tmp_path, local_armada_factory, "<!-- not-runnable -->\n```json\n{}\n```\n")
    skipped = "<!-- not-runnable: needs a real cluster -->\n```console\n$ kubectl get pods\n```\n"
    assert _run_text(tmp_path, local_armada_factory, skipped) == 0
    unused = "<!-- file: dags/lonely.py -->\n```python\nx = 1\n```\n"
    with pytest.raises(DocsError, match=r"no later block uses the file dags/lonely\.py"):
        _run_text(tmp_path, local_armada_factory, unused)
    used = unused + "<!-- runnable -->\n```console\n$ cat dags/lonely.py\nx = 1\n```\n"
    assert _run_text(tmp_path, local_armada_factory, used) == 2


def test_output_and_console_blocks_are_compared(tmp_path, local_armada_factory):
    good = (
        "```python\nprint('job 42 SUCCEEDED')\n```\n"
        "<!-- output -->\n```text\njob ... SUCCEEDED\n```\n"
        "<!-- runnable -->\n```console\n$ echo port 50051\nport ...\n```\n"
    )
    assert _run_text(tmp_path, local_armada_factory, good) == 3
    bad = "```python\nprint('FAILED')\n```\n<!-- output -->\n```text\nSUCCEEDED\n```\n"
    with pytest.raises(DocsError, match=r"page.md:5: the block at .*page.md:1 printed"):
        _run_text(tmp_path, local_armada_factory, bad)
    with pytest.raises(DocsError, match="`false` exited 1"):
        _run_text(tmp_path, local_armada_factory, "<!-- runnable -->\n```console\n$ false\n```\n")


def test_the_matcher_keeps_order_and_wildcards():
    assert matches("a ... c\n...\nz", "a b c\nx\nz")
    assert not matches("z\na b c", "a b c\nz")
    assert not matches("a c", "a b c")


def test_the_architecture_page_shows_the_readmes_layout():
    readme = (ROOT / "README.md").read_text()
    tree = re.search(r"```\n(armada_hooks/\n.*?)```", readme[readme.index("## Layout") :], re.S)
    assert tree is not None
    assert tree[1] in (DOCS / "architecture.md").read_text()
