"""Results back to producers: the event that announces a message's final outcome on EventBridge, and the
Step Functions task callback. Both happen after the action; neither can re-run it or fail the message."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmobs_actions.aws_clients import AwsClients, Bounds, Deadline
from llmobs_actions.observability import count, logger

SUCCEEDED = "LLMObs Action Succeeded"
FAILED = "LLMObs Action Failed"
RESULT_DETAIL_TYPES = frozenset({SUCCEEDED, FAILED})
DEFAULT_SOURCE = "llmobs.actions"
RESULT_SCHEMA_VERSION = 1
# Every text of a detail is cut to this many characters, so that an event stays far under EventBridge's
# entry limit (256 KB) and a callback under Step Functions' output limit (256 KiB), whatever came in.
_LONGEST_TEXT = 1000
_PUBLISH_TRIES = 3
# PutEvents takes at most 10 entries and 256 KB a request ("Calculating PutEvents event entry size": the
# UTF-8 bytes of Source, DetailType and Detail, plus 14 for Time), else refuses the whole request.
EVENTS_PER_CALL = 10
EVENTS_BYTES_PER_CALL = 256 * 1024
_PUBLISH_PAUSE_SECONDS = 0.2
# EventBridge's and Step Functions' calls' usual bounds; each is cut to what the invocation has left.
CALL_BOUNDS = Bounds(connect_timeout=2, read_timeout=5, max_attempts=2)
OUT_OF_TIME = "too little of the invocation left to publish it"
# Step Functions' answers that no retry can change: the task is over, or never was.
_TASK_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
# SendTaskFailure's limits (Step Functions API reference).
_MAX_ERROR_CHARS, _MAX_CAUSE_CHARS = 256, 32_768


class ResultError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error_class: str = Field(alias="class", description="The failure's class, as in the DLQ's error_class.")
    message: str
    http_status: int | None = None


class ResultDetail(BaseModel):
    """The detail of an `LLMObs Action Succeeded` or `LLMObs Action Failed` event (version 1)."""

    model_config = ConfigDict(extra="forbid", title="llmobs-actions result event detail v1")

    message_id: str = Field(description="The SQS message id (or the direct invocation's event id).")
    action: str | None = Field(
        description=(
            "clone_dataset, delete_experiments, prune_experiments, delete_datasets, prune_datasets, "
            "restore_dataset_version; null if unreadable."
        )
    )
    idempotency_key: str | None = Field(description="The key the action took effect under.")
    correlation_id: str | None = Field(description="Echoed from the action's correlation_id.")
    status: Literal["succeeded", "failed"]
    dry_run: bool
    duplicate: bool = Field(description="True when an earlier delivery did it: this announces the stored result.")
    receive_count: int
    finished_at: str = Field(description="ISO 8601, UTC.")
    result: dict[str, Any] | None = Field(
        description=(
            "For a clone: new_dataset_id, name, current_version. For deletes and prunes: counts "
            "(deleted, already_gone; matching, spared by reason, to_delete, ...). resolved: the ids "
            "project_name and dataset_name named."
        )
    )
    error: ResultError | None = Field(description="Why it failed; null when it succeeded.")


class Reply(BaseModel):
    """Who to tell about a message's outcome, as far as its body says (read before the contract)."""

    correlation_id: str | None = None
    task_token: str | None = Field(default=None, repr=False)  # a capability: never logged

    @classmethod
    def from_payload(cls, payload: object) -> Reply:
        if not isinstance(payload, Mapping):
            return cls()
        correlation, token = payload.get("correlation_id"), payload.get("task_token")
        return cls(
            correlation_id=correlation[:_LONGEST_TEXT] if isinstance(correlation, str) else None,
            task_token=token if isinstance(token, str) and 0 < len(token) <= 2048 else None,
        )


class Announcer:
    """Publishes result events (when a bus is configured) and answers task tokens, for final outcomes only."""

    def __init__(self, event_bus: str | None, source: str = DEFAULT_SOURCE, clients: AwsClients | None = None) -> None:
        self._bus, self._source, self._clients = event_bus, source, clients or AwsClients()
        self._lock = threading.Lock()
        self._gathered: list[dict[str, str]] | None = None  # inside together(): what goes out at its end

    def announce(self, detail: ResultDetail, reply: Reply, deadline: Deadline) -> None:
        document = detail.model_dump(mode="json", by_alias=True)
        if self._bus:
            entry = {
                "Source": self._source,
                "DetailType": SUCCEEDED if detail.status == "succeeded" else FAILED,
                "Detail": json.dumps(document, separators=(",", ":")),
                "EventBusName": self._bus,
            }
            with self._lock:
                gathered = self._gathered
                if gathered is not None:
                    gathered.append(entry)
            if gathered is None:
                self._publish([entry], deadline)
        if reply.task_token:
            self._answer_task(reply.task_token, detail, document, deadline)

    @contextlib.contextmanager
    def together(self, deadline: Deadline) -> Iterator[None]:
        """Result events announced inside go out together at the end, up to 10 an API call: a batch of
        ten costs one PutEvents request instead of ten (task callbacks, one token each, go at once)."""
        with self._lock:
            self._gathered = []
        try:
            yield
        finally:
            with self._lock:
                entries, self._gathered = self._gathered or [], None
            for chunk in _requests_of(entries):
                self._publish(chunk, deadline)

    def _publish(self, entries: list[dict[str, str]], deadline: Deadline) -> None:
        """PutEvents, the failed entries tried again briefly while time is left; what still fails is logged and
        counted (an outcome that could not be told in time included)."""
        problems: dict[int, str] = {}
        pending = list(range(len(entries)))
        for attempt in range(_PUBLISH_TRIES):
            client = self._clients.within("events", CALL_BOUNDS, deadline.seconds_left())
            if client is None:
                problems = dict.fromkeys(pending, OUT_OF_TIME) if attempt == 0 else problems
                break
            try:
                answer = client.put_events(Entries=[entries[i] for i in pending])
            except Exception as error:  # throttled, unreachable: tried again briefly, then given up
                problems = dict.fromkeys(pending, f"{type(error).__name__}: {str(error)[:300]}")
            else:
                results = answer.get("Entries") or [{}] * len(pending)
                failed = [(i, r) for i, r in zip(pending, results, strict=False) if r.get("ErrorCode")]
                if not answer.get("FailedEntryCount") or not failed:
                    return
                problems = {i: f"{r.get('ErrorCode')}: {r.get('ErrorMessage')}" for i, r in failed}
                pending = [i for i, _ in failed]
            pause = _PUBLISH_PAUSE_SECONDS * (attempt + 1)
            if attempt + 1 < _PUBLISH_TRIES and deadline.seconds_left() > pause:
                time.sleep(pause)
        for index, problem in problems.items():
            logger.error(
                "result event not published; the action's outcome stands",
                extra={"detail_type": entries[index]["DetailType"], "problem": problem},
            )
            count("ResultPublishFailed")

    def _answer_task(self, token: str, detail: ResultDetail, document: dict[str, Any], deadline: Deadline) -> None:
        states = self._clients.within("stepfunctions", CALL_BOUNDS, deadline.seconds_left())
        if states is None:
            logger.error("task callback not sent: " + OUT_OF_TIME)
            count("TaskCallbackFailed")
            return
        try:
            if detail.status == "succeeded":
                states.send_task_success(taskToken=token, output=json.dumps(document))
            else:
                assert detail.error is not None
                states.send_task_failure(
                    taskToken=token,
                    error=detail.error.error_class[:_MAX_ERROR_CHARS],
                    cause=detail.error.message[:_MAX_CAUSE_CHARS],
                )
        except Exception as error:  # the task is over, or Step Functions failed: logged, never retried
            code = _aws_error_code(error)
            gone = code in _TASK_GONE
            logger.warning(
                "the Step Functions task is over: its callback was not taken" if gone else "task callback failed",
                extra={"error_code": code or type(error).__name__},
            )
            count("TaskCallbackFailed")


def result_detail(
    *,
    message_id: str,
    action: str | None,
    idempotency_key: str | None,
    correlation_id: str | None,
    receive_count: int,
    details: Mapping[str, object] | None = None,
    error: tuple[str, str, int | None] | None = None,
    now: datetime | None = None,
) -> ResultDetail:
    """The detail of the event announcing one final outcome: `details` when done, `error` when it failed."""
    details = dict(details or {})
    dry_run, duplicate = bool(details.pop("dry_run", False)), bool(details.pop("duplicate", False))
    return ResultDetail(
        message_id=_cut(message_id),
        action=action,
        idempotency_key=_cut(idempotency_key) if idempotency_key else None,
        correlation_id=_cut(correlation_id) if correlation_id else None,
        status="failed" if error else "succeeded",
        dry_run=dry_run,
        duplicate=duplicate,
        receive_count=receive_count,
        finished_at=(now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        result=None if error else {k: _cut(v) if isinstance(v, str) else v for k, v in details.items()},
        error=ResultError.model_validate({"class": error[0], "message": _cut(error[1]), "http_status": error[2]})
        if error
        else None,
    )


def result_event_json_schema() -> dict[str, Any]:
    """The result event, envelope and detail, as JSON Schema draft 4 (what the EventBridge schema registry reads)."""
    detail = ResultDetail.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    definitions = detail.pop("$defs", {})
    schema: dict[str, Any] = _draft4(
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "title": f"llmobs-actions result event v{RESULT_SCHEMA_VERSION}",
            "description": "Published on the result bus when a message reaches its final outcome.",
            "type": "object",
            "required": ["source", "detail-type", "detail"],
            "properties": {
                "source": {"type": "string", "description": f"{DEFAULT_SOURCE} unless RESULT_EVENT_SOURCE says"},
                "detail-type": {"type": "string", "enum": [SUCCEEDED, FAILED]},
                "detail": {"$ref": "#/definitions/ResultDetail"},
            },
            "definitions": definitions | {"ResultDetail": detail},
        }
    )
    return schema


def _draft4(node: Any) -> Any:
    """pydantic writes 2020-12; draft 4 has no `const` and no `examples`: spell them in its terms."""
    if isinstance(node, list):
        return [_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _draft4(value) for key, value in node.items() if key != "examples"}
    if "const" in converted:
        converted["enum"] = [converted.pop("const")]
    return converted


def _requests_of(entries: list[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    """The entries in order, as few PutEvents requests as the entry count and size limits allow."""
    chunk: list[dict[str, str]] = []
    size = 0
    for entry in entries:
        entry_size = 14 + sum(len(entry[k].encode()) for k in ("Source", "DetailType", "Detail"))
        if chunk and (len(chunk) == EVENTS_PER_CALL or size + entry_size > EVENTS_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += entry_size
    if chunk:
        yield chunk


def _cut(text: str) -> str:
    return text if len(text) <= _LONGEST_TEXT else text[: _LONGEST_TEXT - 1] + "…"


def _aws_error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code if isinstance(code, str) else None


if __name__ == "__main__":  # `python -m llmobs_actions.results > schemas/result-event.v1.schema.json`
    import sys

    json.dump(result_event_json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
