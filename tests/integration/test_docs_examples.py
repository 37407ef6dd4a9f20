"""Every console example of the README and docs/, run as written against `make local`'s stack.

The stack is the one a reader starts: `python -m local.serve` (what `make local` runs) in its own
process, its export lines taken into the shell that runs each `$ llmobs-actions …` line. Each page starts
on a fresh stack and runs its examples in order; what each prints on stdout must be what the page shows.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.serve import READY
from tests.doc_blocks import DOCUMENTS, ROOT, console_examples, matches

PAGES = [page for page in DOCUMENTS if console_examples(page)]


class LocalStackProcess:
    def __init__(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DD_", "LLMOBS_"))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.serve"],
            cwd=ROOT,
            env=environment | {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.exports: dict[str, str] = {}
        self.said: queue.Queue[str] = queue.Queue()
        # A thread reads its output: select() on a pipe that a text reader buffers misses lines already read.
        self._reader = threading.Thread(target=self._read, daemon=True, name="make-local-output")
        self._reader.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Ended, whatever state it is in: the process, the thread reading it, its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.said.put(line.rstrip("\n"))

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                line = self.said.get(timeout=1)
            except queue.Empty:
                assert self.process.poll() is None, "make local ended before it was up"
                continue
            if line.startswith("export "):
                name, value = line.removeprefix("export ").split("=", 1)
                self.exports[name] = value.strip("'")
            if line == READY:
                return
        raise AssertionError("make local did not come up in 90 s")

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DD_", "LLMOBS_"))}
        environment["PATH"] = f"{Path(sys.executable).parent}:{environment.get('PATH', '')}"
        return subprocess.run(  # noqa: S603 (the docs' own example, in bash, as a reader runs it)
            ["bash", "-c", command],  # noqa: S607
            cwd=ROOT,
            env=environment | self.exports,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a reader stops it."""
        self.process.send_signal(signal.SIGINT)
        assert self.process.stderr is not None
        self.process.wait(timeout=60)
        return self.process.returncode, self.process.stderr.read()


@pytest.fixture
def local_stack_process() -> Iterator[LocalStackProcess]:
    stack = LocalStackProcess()
    try:
        yield stack
    finally:
        stack.close()


def test_make_local_is_the_stack_these_examples_run_on() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "\nlocal: $(INSTALLED)\n\t$(BIN)/python -m local.serve\n" in makefile


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_console_example_runs_as_written_and_prints_what_is_shown(
    page: Path, local_stack_process: LocalStackProcess
) -> None:
    for name in ("QUEUE_URL", "DLQ_URL", "AWS_ENDPOINT_URL", "PROJECT", "DATASET", "EXPERIMENT", "DD_SECRET_ID"):
        assert name in local_stack_process.exports, f"make local exports {name}"
    for example in console_examples(page):
        done = local_stack_process.run(example.command)
        printed = done.stdout.splitlines()
        assert "Traceback" not in done.stderr, f"{example.where}: {example.command}\n{done.stderr}"
        assert matches(example.prints, printed), (
            f"{example.where}: {example.command}\nshown:\n"
            + "\n".join(example.prints)
            + "\nprinted:\n"
            + done.stdout
            + done.stderr[-2000:]
        )
    code, err = local_stack_process.interrupt()
    assert code == 0, err
    assert err.strip().endswith("# the local stack is stopped"), err
