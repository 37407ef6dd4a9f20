"""A front for moto that refuses what AWS refuses.

moto accepts requests the real services reject: control characters in SQS bodies and attributes, a
message whose body plus attributes is over the queue's MaximumMessageSize (moto counts the body's
characters only), more than ten attributes, attribute names AWS reserves. Every AWS call of the local
stack goes through this front (tests, the demo, the bench, and the function in its own process, which
inherits AWS_ENDPOINT_URL): what AWS would accept is forwarded to moto unchanged, what AWS would
refuse is answered with AWS's own error code, in the JSON protocol botocore speaks.

The rules, from the services' own documentation:
- SQS "Amazon SQS message quotas": a body and String attribute values hold only the XML characters
  #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF; a body has at least one
  character; at most 10 message attributes; body plus every attribute's name, data type and value
  must fit the queue's MaximumMessageSize.
- SQS "SendMessage", "MessageAttributeValue": attribute names are at most 256 of A-Z a-z 0-9 _ - .,
  never start with "AWS." or "Amazon.", never start or end with "." nor hold "..".
- SQS "ChangeMessageVisibility": 0 to 43,200 seconds.
- EventBridge "PutEvents" and "Calculating PutEvents event entry size": at most 10 entries; an entry's
  size (14 bytes for Time, the UTF-8 bytes of Source, DetailType, Detail and each of Resources) is at
  most 256 KB, and so is the request's total ("The total entry size must be less than 256KB"), else the
  whole request is refused; a Detail that is not a JSON object fails its entry with `MalformedDetail`
  (moto takes all three).
- SQS "StartMessageMoveTask": MaxNumberOfMessagesPerSecond is a whole number of at most 500.

DynamoDB "Condition expressions": a conditional write is atomic, its check and its change one step. moto
checks, then writes, without a lock: two concurrent UpdateItems on one item can both pass a condition only
one of them may (seen: 1 in 30 tries with four at once). The front makes DynamoDB's writes one at a time.

Two switches serve tests: `faults` break one operation on purpose (an error answer, or a hang), and
`time_scale` runs SQS visibility on a faster clock, so an hour of back-off takes 15 s at 240 (each delay
rounded up to SQS's whole seconds: a scaled wait is never shorter than the real one, scaled).

moto has no message move tasks; the front plays them (StartMessageMoveTask, ListMessageMoveTasks,
CancelMessageMoveTask) as the SQS API reference describes: bodies and attributes moved unchanged, at
most one active task per source queue, an optional rate, progress counts.

EventBridge "PutRule": "incoming events might not immediately start matching to new or updated
rules"; moto's match at once. With `rule_settle_seconds` > 0 the front plays that delay: a new rule's
targets reach moto only that long after PutRule (ListTargetsByRule shows none meanwhile).

moto's Step Functions takes SendTaskSuccess and SendTaskFailure with any token and records nothing;
the front answers them from `task_tokens` (local/task_tokens.py), which issues tokens and says
InvalidToken, TaskTimedOut or InvalidOutput as Step Functions does.
"""

from __future__ import annotations

import collections
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
import urllib3
from botocore.config import Config

from local.servers import PREFIX, LocalHandler, LocalServer, thread
from local.task_tokens import TaskRefused, TaskTokens

# Everything SQS refuses in a body or a String attribute value (the complement of its allowed set).
SQS_ILLEGAL_CHARACTER = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
SQS_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")
SQS_MAX_ATTRIBUTES = 10
SQS_MAX_VISIBILITY_SECONDS = 43_200
SQS_DEFAULT_MAXIMUM_MESSAGE_SIZE = 262_144
_ALLOWED = "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
_MOVE_TASK_TARGETS = frozenset(
    {"AmazonSQS.StartMessageMoveTask", "AmazonSQS.ListMessageMoveTasks", "AmazonSQS.CancelMessageMoveTask"}
)
_TASK_TARGETS = frozenset({"AWSStepFunctions.SendTaskSuccess", "AWSStepFunctions.SendTaskFailure"})
_DYNAMODB_WRITES = frozenset(
    f"DynamoDB_20120810.{operation}"
    for operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
)
EVENTS_MAX_ENTRIES = 10
EVENTS_MAX_ENTRY_BYTES = 262_144
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class Refused(Exception):
    """What AWS would answer instead of doing the request."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class EmptyAnswer(Exception):
    """A short poll that found nothing, whatever the queue holds."""


@dataclass
class AwsFault:
    """A misbehaviour for the next `times` calls of one operation, e.g. target "DynamoDB_20120810.UpdateItem".

    - `code`: answer this AWS error (HTTP `status`) without forwarding the call;
    - `hang_seconds`: sit on the call this long first (a hanging service; the client's read timeout
      fires before the answer comes), then answer `code` or forward it;
    - `answer`: reply this document (HTTP 200) without forwarding, e.g. a PutEvents answer with
      FailedEntryCount 1;
    - `body_contains`: only calls whose request holds this text (one UpdateItem among others, say).
    """

    target: str
    code: str | None = None
    status: int = 400
    times: int = 1
    hang_seconds: float = 0.0
    message: str = "fault injected by the local stack"
    answer: dict[str, Any] | None = None
    body_contains: str | None = None


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str
    to_move: int
    rate: int | None
    moved: int = 0
    status: str = "RUNNING"
    started: int = 0
    cancelled: bool = False

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "TaskHandle": self.handle,
            "Status": self.status,
            "SourceArn": self.source_arn,
            "DestinationArn": self.destination_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started,
        }
        if self.rate:
            result["MaxNumberOfMessagesPerSecond"] = self.rate
        return result


class StrictAws:
    """Listens on 127.0.0.1 (a free port) and forwards to moto at `moto_endpoint` what AWS would accept."""

    def __init__(self, moto_endpoint: str) -> None:
        self.moto_endpoint = moto_endpoint.rstrip("/")
        self.time_scale = 1.0  # > 1: SQS visibility delays pass that many times faster
        # SQS's short polls sample a subset of its servers and may answer nothing while messages wait
        # (SQS developer guide, "short and long polling"): the next this many short polls answer empty.
        self.empty_short_polls = 0
        self.rule_settle_seconds = 0.0  # > 0: a new rule matches nothing for that long
        self._settling: dict[tuple[str, str], float] = {}  # (bus, rule) -> when it starts matching
        self.refused: list[tuple[str, str]] = []  # (target, error code) of every call refused
        self.calls: collections.Counter[str] = collections.Counter()  # requests by X-Amz-Target, as AWS bills them
        self._faults: list[AwsFault] = []
        self._lock = threading.Lock()
        self._dynamodb_writes = threading.Lock()  # each conditional write atomic, as DynamoDB's are
        self._sizes: dict[str, int] = {}  # queue URL -> MaximumMessageSize
        self._move_tasks: list[MoveTask] = []
        self.task_tokens = TaskTokens()
        self.generation = 0  # counts resets: a call hung across one must not reach the next test's moto
        self._pool = urllib3.PoolManager(maxsize=64, retries=False, timeout=urllib3.Timeout(connect=5, read=60))
        self._moto = boto3.client(
            "sqs",
            config=Config(max_pool_connections=64),  # as many as the front's own threads
            endpoint_url=self.moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's, not a secret)
        )
        # What a test started and a reset ends: move tasks, rules still settling, calls hanging on a fault.
        self._activity: list[threading.Thread | threading.Timer] = []
        self._reset_happened = threading.Event()  # replaced at each reset; set: this generation is over
        front = self

        class Handler(_FrontHandler):
            owner = front

        self._server = LocalServer("aws-front", Handler).start()

    @property
    def endpoint(self) -> str:
        return self._server.url

    def inject(self, fault: AwsFault) -> None:
        with self._lock:
            self._faults.append(fault)

    def reset(self) -> None:
        """Forget every fault, switch and cache, and end everything the last test started before moto is reset:
        a move task still moving would otherwise move into the next test's queue of the same name."""
        self.end_activity()
        with self._lock:
            self.generation += 1
            self._faults.clear()
            self._sizes.clear()
            self._move_tasks.clear()
            self.refused.clear()
            self.calls.clear()
            self.task_tokens.clear()
            self.time_scale = 1.0
            self.empty_short_polls = 0
            self.rule_settle_seconds = 0.0
            self._settling.clear()

    def end_activity(self) -> None:
        """Cancel move tasks, rules still settling and calls hanging on a fault, and wait until they ended."""
        with self._lock:
            for task in self._move_tasks:
                task.cancelled = True
            activity, self._activity = self._activity, []
            ended, self._reset_happened = self._reset_happened, threading.Event()
        ended.set()  # wakes every call hanging on a fault, and every move task between two messages
        for started in activity:
            if isinstance(started, threading.Timer):
                started.cancel()
            started.join(timeout=10)

    def stop(self) -> None:
        self.end_activity()
        self._server.stop()

    # -- what a call turns into -------------------------------------------------------------------
    def take_fault(self, target: str, body: bytes = b"") -> AwsFault | None:
        with self._lock:
            for fault in self._faults:
                wanted = fault.body_contains is None or fault.body_contains.encode() in body
                if fault.target == target and fault.times > 0 and wanted:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def check(self, target: str, document: Any) -> Any:
        """Raise Refused for what AWS refuses; return the request to forward (rewritten for time_scale)."""
        if not isinstance(document, dict):
            return document
        if target == "AmazonSQS.SendMessage":
            self._check_message(document, self.maximum_message_size(document.get("QueueUrl")))
        elif target == "AmazonSQS.SendMessageBatch":
            limit = self.maximum_message_size(document.get("QueueUrl"))
            for entry in document.get("Entries") or []:
                self._check_message(entry, limit)
        elif target == "AmazonSQS.ChangeMessageVisibility":
            document["VisibilityTimeout"] = self._visibility(document.get("VisibilityTimeout"))
        elif target == "AmazonSQS.ChangeMessageVisibilityBatch":
            for entry in document.get("Entries") or []:
                entry["VisibilityTimeout"] = self._visibility(entry.get("VisibilityTimeout"))
        elif target == "AmazonSQS.ReceiveMessage" and not document.get("WaitTimeSeconds"):
            with self._lock:
                if self.empty_short_polls > 0:
                    self.empty_short_polls -= 1
                    raise EmptyAnswer()
        elif target in ("AmazonSQS.SetQueueAttributes", "AmazonSQS.DeleteQueue", "AmazonSQS.CreateQueue"):
            with self._lock:
                self._sizes.clear()
        elif target == "AWSEvents.PutEvents":
            _check_put_events(document)
            with self._lock:
                self.calls["AWSEvents.PutEvents entries"] += len(document.get("Entries") or [])
        return document

    def maximum_message_size(self, queue_url: object) -> int:
        if not isinstance(queue_url, str):
            return SQS_DEFAULT_MAXIMUM_MESSAGE_SIZE
        with self._lock:
            known = self._sizes.get(queue_url)
        if known is not None:
            return known
        try:
            attributes = self._moto.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MaximumMessageSize"])
            size = int(attributes["Attributes"]["MaximumMessageSize"])
        except Exception:  # an unknown queue: moto answers the forwarded call with its own error
            return SQS_DEFAULT_MAXIMUM_MESSAGE_SIZE
        with self._lock:
            self._sizes[queue_url] = size
        return size

    def _check_message(self, message: dict[str, Any], limit: int) -> None:
        body = message.get("MessageBody")
        if not isinstance(body, str) or body == "":
            raise Refused("MissingParameter", "The request must contain the parameter MessageBody.")
        illegal = SQS_ILLEGAL_CHARACTER.search(body)
        if illegal:
            raise Refused(
                "InvalidMessageContents",
                f"Invalid binary character '#x{ord(illegal.group()):X}' was found in the message body, "
                f"the set of allowed characters is {_ALLOWED}",
            )
        attributes = message.get("MessageAttributes") or {}
        if len(attributes) > SQS_MAX_ATTRIBUTES:
            raise Refused(
                "InvalidParameterValue",
                f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [{SQS_MAX_ATTRIBUTES}].",
            )
        size = len(body.encode("utf-8", "surrogatepass"))
        for name, value in attributes.items():
            _check_attribute_name(name)
            data_type = str(value.get("DataType", ""))
            text = value.get("StringValue")
            if isinstance(text, str):
                bad = SQS_ILLEGAL_CHARACTER.search(text)
                if bad:
                    raise Refused(
                        "InvalidParameterValue",
                        f"Message (user) attribute '{name}' value contains invalid binary character "
                        f"'#x{ord(bad.group()):X}'. You must use only the following supported characters: {_ALLOWED}.",
                    )
                if text == "":
                    raise Refused(
                        "InvalidParameterValue",
                        f"Message (user) attribute '{name}' must contain a non-empty value of type '{data_type}'.",
                    )
                size += len(text.encode("utf-8", "surrogatepass"))
            elif isinstance(value.get("BinaryValue"), str):
                size += len(value["BinaryValue"]) * 3 // 4  # base64 in the JSON protocol
            size += len(name.encode()) + len(data_type.encode())
        if size > limit:
            raise Refused(
                "InvalidParameterValue",
                f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.",
            )

    def _visibility(self, value: object) -> object:
        if not isinstance(value, int) or isinstance(value, bool):
            return value
        if not 0 <= value <= SQS_MAX_VISIBILITY_SECONDS:
            raise Refused(
                "InvalidParameterValue",
                f"Value {value} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and "
                f"{SQS_MAX_VISIBILITY_SECONDS}.",
            )
        return math.ceil(value / self.time_scale) if self.time_scale > 1 else value

    # -- message move tasks, which moto lacks ----------------------------------------------------------
    def move_tasks(self, target: str, document: dict[str, Any]) -> dict[str, Any]:
        if target == "AmazonSQS.StartMessageMoveTask":
            return self._start_move_task(document)
        if target == "AmazonSQS.ListMessageMoveTasks":
            with self._lock:
                tasks = [t for t in reversed(self._move_tasks) if t.source_arn == document.get("SourceArn")]
            return {"Results": [t.as_result() for t in tasks[: int(document.get("MaxResults") or 1)]]}
        with self._lock:  # CancelMessageMoveTask
            task = next((t for t in self._move_tasks if t.handle == document.get("TaskHandle")), None)
            if task is None or task.status != "RUNNING":
                raise Refused("ResourceNotFoundException", "The specified task handle is not valid.")
            task.cancelled = True
            return {"ApproximateNumberOfMessagesMoved": task.moved}

    def _start_move_task(self, document: dict[str, Any]) -> dict[str, Any]:
        source, destination = str(document.get("SourceArn", "")), str(document.get("DestinationArn", ""))
        if not destination:
            raise Refused("InvalidParameterValue", "DestinationArn is required by this local stand-in.")
        with self._lock:
            if any(t.source_arn == source and t.status == "RUNNING" for t in self._move_tasks):
                raise Refused(
                    "UnsupportedOperation",
                    "There is already a task running. Only one active task is allowed for a source queue arn "
                    "at a given time.",
                )
        rate = document.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and (not isinstance(rate, int) or not 1 <= rate <= 500):
            raise Refused(
                "InvalidParameterValue",
                f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: must be 1 to 500.",
            )
        source_url = self._url_of(source)
        waiting = self._moto.get_queue_attributes(QueueUrl=source_url, AttributeNames=["ApproximateNumberOfMessages"])
        task = MoveTask(
            handle=f"local-{time.time_ns()}",
            source_arn=source,
            destination_arn=destination,
            to_move=int(waiting["Attributes"]["ApproximateNumberOfMessages"]),
            rate=int(rate) if rate else None,
            started=int(time.time() * 1000),
        )
        destination_url = self._url_of(destination)
        with self._lock:
            self._move_tasks.append(task)
            ended = self._reset_happened
            self._activity.append(thread(self._move, "aws-front/move-task", task, source_url, destination_url, ended))
        return {"TaskHandle": task.handle}

    def _move(self, task: MoveTask, source_url: str, destination_url: str, ended: threading.Event) -> None:
        try:
            while not task.cancelled and task.moved < task.to_move:
                received = self._moto.receive_message(
                    QueueUrl=source_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
                ).get("Messages", [])
                if not received:
                    break
                for message in received:
                    if task.cancelled:
                        break  # what was received and not moved comes back when its visibility runs out
                    attributes = {
                        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
                        for name, value in message.get("MessageAttributes", {}).items()
                    }
                    self._moto.send_message(
                        QueueUrl=destination_url,
                        MessageBody=message["Body"],
                        **({"MessageAttributes": attributes} if attributes else {}),
                    )
                    self._moto.delete_message(QueueUrl=source_url, ReceiptHandle=message["ReceiptHandle"])
                    task.moved += 1
                    if task.rate:
                        ended.wait(1 / task.rate)
            task.status = "CANCELLED" if task.cancelled else "COMPLETED"
        except Exception:  # a queue deleted under it, say
            task.status = "FAILED"

    def settle_rule(self, request: dict[str, Any]) -> None:
        """Note when a rule just put starts matching: `rule_settle_seconds` from now."""
        if self.rule_settle_seconds > 0:
            with self._lock:
                self._settling[_rule_key(request)] = time.monotonic() + self.rule_settle_seconds

    def held_back(self, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
        """PutTargets on a rule still settling: moto gets the targets when it is over (moto matches even a
        disabled rule, so a rule without targets is how it matches nothing); the caller, AWS's answer."""
        request = json.loads(body)
        with self._lock:
            until = self._settling.get(_rule_key(request), 0.0)
        if until <= time.monotonic():
            return None
        generation = self.generation

        def take_effect() -> None:
            if self.generation == generation:  # not after a reset: that rule belongs to no one now
                self.forward("POST", path, headers, body)

        timer = threading.Timer(until - time.monotonic(), take_effect)
        timer.name, timer.daemon = f"{PREFIX}aws-front/rule-settling", True
        with self._lock:
            self._activity.append(timer)
        timer.start()
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def _url_of(self, arn: str) -> str:
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise Refused("InvalidParameterValue", f"Value {arn} for parameter SourceArn is invalid.")
        return f"{self.moto_endpoint}/{parts[4]}/{parts[5]}"

    def put_events_in_part(self, path: str, headers: dict[str, str], document: dict[str, Any]) -> dict[str, Any]:
        """PutEvents where some Details are malformed: those entries fail, the others go to moto, in order."""
        entries = document["Entries"]
        good = [entry for entry in entries if not _malformed_detail(entry)]
        forwarded: list[dict[str, Any]] = []
        if good:
            answer = self.forward("POST", path, headers, json.dumps(document | {"Entries": good}).encode())
            forwarded = json.loads(answer.data).get("Entries", [])
        results = []
        for entry in entries:
            if _malformed_detail(entry):
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
            else:
                results.append(forwarded.pop(0) if forwarded else {})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> urllib3.BaseHTTPResponse:
        kept = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
        return self._pool.request(
            method,
            f"{self.moto_endpoint}{path}",
            body=body or None,
            headers=kept,
            redirect=False,
            preload_content=True,
            decode_content=False,
        )


def _rule_key(request: dict[str, Any]) -> tuple[str, str]:
    bus = str(request.get("EventBusName") or "default")
    return bus.rsplit("/", 1)[-1], str(request.get("Name") or request.get("Rule"))


def _check_put_events(document: dict[str, Any]) -> None:
    entries = document.get("Entries") or []
    if not 1 <= len(entries) <= EVENTS_MAX_ENTRIES:
        raise Refused("ValidationException", "1 validation error detected: Entries must have 1 to 10 members")
    sizes = [_entry_size(entry) for entry in entries]
    if max(sizes) > EVENTS_MAX_ENTRY_BYTES or sum(sizes) > EVENTS_MAX_ENTRY_BYTES:
        raise Refused("ValidationException", "Total size of the entries in the request is over the limit.")


def _entry_size(entry: dict[str, Any]) -> int:
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name) or "").encode())
    return size + sum(len(str(resource).encode()) for resource in entry.get("Resources") or [])


def _malformed_detail(entry: dict[str, Any]) -> bool:
    try:
        return not isinstance(json.loads(entry.get("Detail") or ""), dict)
    except ValueError:
        return True


def _check_attribute_name(name: str) -> None:
    reserved = name.lower().startswith(("aws.", "amazon."))
    if not SQS_ATTRIBUTE_NAME.match(name) or reserved or name.startswith(".") or name.endswith(".") or ".." in name:
        raise Refused("InvalidParameterValue", f"Message (user) attribute name '{name}' is invalid.")


class _FrontHandler(LocalHandler):
    owner: StrictAws

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        front = self.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        if target:
            with front._lock:
                front.calls[target] += 1
        if self.path.startswith("/moto-api/reset"):
            front.reset()
        try:
            fault = front.take_fault(target, body) if target else None
            if fault is not None:
                generation, ended = front.generation, front._reset_happened
                if ended.wait(fault.hang_seconds) or front.generation != generation:
                    # moto was reset meanwhile: this call belongs to no one
                    self.close_connection = True
                    return
                if fault.code is not None:
                    raise Refused(fault.code, fault.message, fault.status)
                if fault.answer is not None:
                    self._reply(fault.answer)
                    return
            if target in _TASK_TARGETS:
                operation = target.split(".", 1)[1]
                self._reply(front.task_tokens.answer(operation, json.loads(body or b"{}")))
                return
            if target == "AWSEvents.PutTargets" and (held := front.held_back(self.path, dict(self.headers), body)):
                self._reply(held)
                return
            if target in _MOVE_TASK_TARGETS:
                self._reply(front.move_tasks(target, json.loads(body or b"{}")))
                return
            if (target.startswith("AmazonSQS.") or target == "AWSEvents.PutEvents") and body:
                document = front.check(target, json.loads(body))
                if target == "AWSEvents.PutEvents" and any(_malformed_detail(e) for e in document["Entries"]):
                    self._reply(front.put_events_in_part(self.path, dict(self.headers.items()), document))
                    return
                body = json.dumps(document).encode()
        except TaskRefused as refusal:
            with front._lock:
                front.refused.append((target, refusal.code))
            self._refuse(target, Refused(refusal.code, refusal.message))
            return
        except EmptyAnswer:
            self._reply({})
            return
        except Refused as refusal:
            with front._lock:
                front.refused.append((target, refusal.code))
            self._refuse(target, refusal)
            return
        if target in _DYNAMODB_WRITES:
            with front._dynamodb_writes:
                answer = front.forward(self.command, self.path, dict(self.headers.items()), body)
        else:
            answer = front.forward(self.command, self.path, dict(self.headers.items()), body)
        if target == "AWSEvents.PutRule" and answer.status == 200:
            front.settle_rule(json.loads(body))
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.data)

    def _reply(self, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _refuse(self, target: str, refusal: Refused) -> None:
        service = {
            "AmazonSQS": "com.amazonaws.sqs",
            "DynamoDB_20120810": "com.amazonaws.dynamodb.v20120810",
            "secretsmanager": "com.amazonaws.secretsmanager",
            "AWSEvents": "com.amazonaws.events",
            "AWSStepFunctions": "com.amazonaws.stepfunctions",
        }.get(target.split(".")[0], "com.amazonaws")
        payload = json.dumps({"__type": f"{service}#{refusal.code}", "message": refusal.message}).encode()
        self.send_response(refusal.status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("X-Amzn-Errortype", f"{service}#{refusal.code}")
        self.send_header("x-amzn-query-error", f"{refusal.code};Sender")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
