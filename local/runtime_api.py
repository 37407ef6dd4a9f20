"""Run the function the way Lambda does, without Docker: AWS's runtime interface client (awslambdaric) in its
own process, talking to a small Lambda Runtime API of ours on 127.0.0.1.

The function then gets a real cold start, a real `LambdaContext` (request id, deadline, ARN) and its
environment from the template, exactly as in Lambda; only the process around it is ours.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from local.servers import LocalHandler, LocalServer

SOURCE = Path(__file__).resolve().parent.parent / "src"
HANDLER = "llmobs_actions.handler.lambda_handler"
API = "/2018-06-01/runtime"


class InvocationError(Exception):
    """The function raised: Lambda would count an error and retry the whole batch."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}")
        self.error = error


@dataclass
class _Invocation:
    request_id: str
    event: Any
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: dict[str, Any] | None = None


class LambdaRuntime:
    """One warm execution environment: `invoke(event)` returns what the handler returned, or raises."""

    def __init__(
        self,
        environment: dict[str, str],
        timeout_seconds: int,
        function_name: str = "llmobs-actions-local",
        log: IO[str] | None = None,
        handler: str = HANDLER,
        source: Path = SOURCE,
        sampled: bool = False,
    ) -> None:
        self.handler, self.source = handler, source
        self.sampled = sampled  # the trace header X-Ray reads: sampled invocations send their segments
        self.timeout_seconds = timeout_seconds
        self.function_name = function_name
        self._pending: queue.Queue[_Invocation] = queue.Queue()
        self._active: dict[str, _Invocation] = {}
        self._init_error: dict[str, Any] | None = None
        self.cold_starts = 0
        self._ready = threading.Event()  # set when the runtime client asks for its first invocation
        self._environment = environment
        self._log = log
        self._server = _server(self).start()
        self._process = self._start()

    def _start(self) -> subprocess.Popen[str]:
        process = self._spawn()
        # As in Lambda, the init phase (imports) is not part of an invocation's timeout.
        self._ready.wait(timeout=60)
        return process

    def _spawn(self) -> subprocess.Popen[str]:
        host, port = self._server.server_address[:2]
        self.cold_starts += 1
        lambda_environment = {
            "AWS_LAMBDA_RUNTIME_API": f"{host!s}:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "LAMBDA_TASK_ROOT": str(self.source),  # where Lambda unpacked the code (/var/task); Tracer reads it
            "PYTHONPATH": str(self.source),
        }
        return subprocess.Popen(  # noqa: S603 (this interpreter, AWS's runtime client, our handler)
            [sys.executable, "-m", "awslambdaric", self.handler],
            cwd=self.source,
            env=os.environ | self._environment | lambda_environment,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            text=True,
        )

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """Invoke with `event`; `request_id` as Lambda keeps it for the retries of one asynchronous event."""
        deadline_ms = int((time.time() + self.timeout_seconds) * 1000)
        invocation = _Invocation(request_id or str(uuid.uuid4()), event, deadline_ms)
        self._pending.put(invocation)
        if not invocation.done.wait(self.timeout_seconds + 1):
            # As Lambda does at the deadline: stop the sandbox mid-work; the next invocation starts cold.
            self._process.kill()
            self._process.wait()
            self._active.pop(invocation.request_id, None)
            self._ready.clear()
            self._process = self._start()
            raise InvocationError({"errorType": "Sandbox.Timedout", "errorMessage": "the function timed out"})
        if self._init_error is not None:
            raise InvocationError(self._init_error)
        if invocation.error is not None:
            raise InvocationError(invocation.error)
        return invocation.result

    def kill(self) -> None:
        """Kill the sandbox now, in the middle of whatever it is doing (as Lambda does at a deadline): the
        invocation in flight fails with Sandbox.Timedout, and the next one starts cold."""
        self._process.kill()
        self._process.wait()
        for request_id in list(self._active):
            invocation = self._active.pop(request_id)
            invocation.error = {"errorType": "Sandbox.Timedout", "errorMessage": "the sandbox was killed"}
            invocation.done.set()
        self._ready.clear()
        self._process = self._start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._server.stop()

    def __enter__(self) -> LambdaRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Runtime API --------------------------------------------------------------------------
    def next_invocation(self) -> _Invocation:
        """The next event, as soon as there is one (the runtime client's long poll); ends with the server, or
        with the sandbox that asked (a long poll of a killed sandbox must not take the next one's event)."""
        sandbox = self.cold_starts
        self._ready.set()
        while True:
            try:
                invocation = self._pending.get(timeout=0.1)
            except queue.Empty:
                if self._server.stopping.is_set() or sandbox != self.cold_starts:
                    raise ConnectionAbortedError("the Runtime API stopped, or its sandbox was killed") from None
                continue
            if sandbox != self.cold_starts:
                self._pending.put(invocation)  # for the sandbox that lives now
                raise ConnectionAbortedError("this long poll's sandbox was killed")
            self._active[invocation.request_id] = invocation
            return invocation

    def finish(self, request_id: str, result: Any = None, error: dict[str, Any] | None = None) -> None:
        invocation = self._active.pop(request_id)
        invocation.result, invocation.error = result, error
        invocation.done.set()

    def init_failed(self, error: dict[str, Any]) -> None:
        self._init_error = error
        while not self._pending.empty():
            self._pending.get().done.set()


def _server(runtime: LambdaRuntime) -> LocalServer:
    class Handler(LocalHandler):  # awslambdaric keeps one connection open
        def do_GET(self) -> None:
            if self.path != f"{API}/invocation/next":
                self._reply(404, {"errorMessage": "unknown path"})
                return
            invocation = runtime.next_invocation()
            payload = json.dumps(invocation.event).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")  # without it the client hangs
            self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                f"arn:aws:lambda:us-east-1:123456789012:function:{runtime.function_name}",
            )
            self.send_header(
                "Lambda-Runtime-Trace-Id",
                f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};"
                f"Sampled={int(runtime.sampled)}",
            )
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            document = json.loads(body) if body else None
            parts = self.path.removeprefix(f"{API}/").split("/")
            if parts[:2] == ["init", "error"]:
                runtime.init_failed(document or {})
            elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                if parts[2] == "response":
                    runtime.finish(parts[1], result=document)
                else:
                    runtime.finish(parts[1], error=document or {})
            else:
                self._reply(404, {"errorMessage": "unknown path"})
                return
            self._reply(202, {"status": "OK"})

        def _reply(self, status: int, document: Any) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return LocalServer("lambda-runtime-api", Handler)
