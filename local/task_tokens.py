"""Step Functions' task tokens, as the callback pattern uses them: a state machine's
`arn:aws:states:::sqs:sendMessage.waitForTaskToken` step puts `$$.Task.Token` into the message and waits
until a worker answers SendTaskSuccess or SendTaskFailure with it.

moto accepts any token and records nothing; this stand-in (reached through the strict front) issues
tokens and answers as the Step Functions API reference says: an unknown token is `InvalidToken`, a task
already answered or past its timeout is `TaskTimedOut`, an output that is not JSON or over 262,144 bytes
is `InvalidOutput`, an error over 256 or a cause over 32,768 characters is a `ValidationException`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any


class TaskRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Task:
    token: str
    deadline: float | None  # time.monotonic(); None: no timeout
    status: str = "WAITING"  # WAITING, SUCCEEDED, FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None


class TaskTokens:
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def issue(self, timeout_seconds: float | None = None) -> str:
        """A token as a waiting state machine task would hand out (real ones are long opaque strings)."""
        token = "AQB" + secrets.token_urlsafe(300)
        with self._lock:
            deadline = time.monotonic() + timeout_seconds if timeout_seconds is not None else None
            self._tasks[token] = Task(token, deadline)
        return token

    def task(self, token: str) -> Task:
        with self._lock:
            return self._tasks[token]

    def issued(self) -> list[str]:
        with self._lock:
            return list(self._tasks)

    def clear(self) -> None:
        with self._lock:
            self._tasks.clear()

    def answer(self, operation: str, document: dict[str, Any]) -> dict[str, Any]:
        token = document.get("taskToken")
        with self._lock:
            task = self._tasks.get(token) if isinstance(token, str) else None
            if task is None:
                raise TaskRefused("InvalidToken", "Invalid Token: 'Invalid token'")
            if task.status != "WAITING" or (task.deadline is not None and time.monotonic() > task.deadline):
                raise TaskRefused("TaskTimedOut", "Task Timed Out: 'Provided task does not exist anymore'")
            if operation == "SendTaskSuccess":
                output = document.get("output")
                if not isinstance(output, str) or len(output.encode()) > 262_144:
                    raise TaskRefused(
                        "InvalidOutput", "Invalid Output: the output must be JSON of at most 262144 bytes"
                    )
                try:
                    task.output = json.loads(output)
                except ValueError:
                    raise TaskRefused("InvalidOutput", "Invalid Output: 'Cannot parse output as JSON'") from None
                task.status = "SUCCEEDED"
            elif operation == "SendTaskFailure":
                error, cause = str(document.get("error") or ""), str(document.get("cause") or "")
                if len(error) > 256 or len(cause) > 32_768:
                    raise TaskRefused("ValidationException", "error is at most 256 and cause 32768 characters")
                task.status, task.error, task.cause = "FAILED", error, cause
            return {}
