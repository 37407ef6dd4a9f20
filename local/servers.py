"""The local stack's HTTP servers: on 127.0.0.1, their threads named for the stack, and a stop that ends them all.

Every stand-in that listens (the Datadog emulator, the strict AWS front, the Lambda Runtime API, the small
servers tests make) serves from a `LocalServer`. While it runs it is registered, and its threads are named
`local-stack/<name>` (the accept loop) and `local-stack/<name>/connection` (one per open connection), so
that a test can be failed for leaving one behind (tests/conftest.py). `stop()` ends everything the server
started: the accept loop, every open connection (keep-alive ones included: a client pool would hold them
open for ever) and their threads. Handlers that wait (a late answer, a hang) wait on `stopping`, so a stop
never waits for them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "local-stack/"
_JOIN_SECONDS = 5.0

_lock = threading.Lock()
_running: set[LocalServer] = set()


class LocalServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free port of 127.0.0.1 that knows its connections and ends them on stop."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when a batch of 10 connects at once, and the
    # client's SYN retry (1 s) then looks like an unreachable service.
    request_queue_size = 128

    def __init__(self, name: str, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.name = name
        self.stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._busy: set[threading.Thread] = set()
        self._connections_lock = threading.Lock()
        self._loop: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalServer:
        self._loop = thread(self.serve_forever, self.name, poll_interval=0.05)
        with _lock:
            _running.add(self)
        return self

    def stop(self) -> None:
        """End the accept loop, every connection and every thread this server started (bounded)."""
        self.stopping.set()
        if self._loop is not None:
            self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections = dict(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # closed already
                connection.shutdown(socket.SHUT_RDWR)  # a handler blocked reading it sees the end at once
        for worker in [*connections.values(), *([self._loop] if self._loop else [])]:
            if worker is not threading.current_thread():
                worker.join(_JOIN_SECONDS)
        with _lock:
            _running.discard(self)

    def is_busy(self, worker: threading.Thread) -> bool:
        """Whether the connection `worker` serves is in the middle of a request (not idle between two)."""
        with self._connections_lock:
            return worker in self._busy

    def owns(self, worker: threading.Thread) -> bool:
        with self._connections_lock:
            return worker in self._connections.values() or worker is self._loop

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up and hung up (the point of some faults) is not a server error

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(
            target=self._serve, args=(request, client_address), name=f"{PREFIX}{self.name}/connection", daemon=True
        )
        with self._connections_lock:
            self._connections[request] = worker
        worker.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)
                self._busy.discard(threading.current_thread())
            self.shutdown_request(request)

    def busy(self, serving: bool) -> None:
        """Called by handlers (`LocalHandler`) around each request."""
        with self._connections_lock:
            if serving:
                self._busy.add(threading.current_thread())
            else:
                self._busy.discard(threading.current_thread())


class LocalHandler(BaseHTTPRequestHandler):
    """A quiet request handler that tells its LocalServer when it is in the middle of a request."""

    server: LocalServer
    protocol_version = "HTTP/1.1"  # clients keep their connections open, as with the real services
    # Headers and body go out in two writes: with Nagle's algorithm on, the second waits for the client's
    # delayed ACK, 40 ms a call on a keep-alive connection (the real services answer in one go).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read what servers recorded instead

    def parse_request(self) -> bool:
        self.server.busy(True)  # a request line has arrived: from now until it is answered, not idle
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self.server.busy(False)


def thread(target: Callable[..., object], name: str, *args: Any, **kwargs: Any) -> threading.Thread:
    """Start a daemon thread of the local stack, named so that a leak check can tell it apart."""
    started = threading.Thread(target=target, args=args, kwargs=kwargs, name=f"{PREFIX}{name}", daemon=True)
    started.start()
    return started


def running_servers() -> set[LocalServer]:
    with _lock:
        return set(_running)


def local_threads() -> set[threading.Thread]:
    """The live threads of the local stack."""
    return {t for t in threading.enumerate() if t.name.startswith(PREFIX) and t.is_alive()}


def leftovers(servers_before: set[LocalServer], threads_before: set[threading.Thread]) -> list[str]:
    """What the local stack still runs that was not running before: servers, and threads that are not idle
    keep-alive connections of a server that was already running (a session's, whose clients may reconnect)."""
    found = [f"server {server.name} at {server.url}" for server in running_servers() - servers_before]
    for worker in local_threads() - threads_before:
        idle_connection = worker.name.endswith("/connection") and any(
            server.owns(worker) and not server.is_busy(worker) for server in servers_before & running_servers()
        )
        if not idle_connection:
            found.append(f"thread {worker.name}")
    return sorted(found)
