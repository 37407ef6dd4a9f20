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

S3 (REST-XML, path-style addressing; a request is S3's when its SigV4 credential scope names "s3") is
answered in S3's own error document (`<Error><Code>..</Code><Message>..</Message><RequestId>..</RequestId>`).
Each call is named after its API operation ("S3.UploadPart", "S3.CompleteMultipartUpload", ... from the
method, the path and the query, as botocore's S3 model routes them), for `calls`, `refused` and `faults`
alike. The front reads `Transfer-Encoding: chunked` bodies and decodes `Content-Encoding: aws-chunked`
payloads (botocore's trailing checksums over HTTPS), checks them, and hands moto the plain payload with the
trailer's checksum as a header. The rules, from the S3 API reference ("Error responses", "PutObject",
"UploadPart", "CompleteMultipartUpload", "Checking object integrity") and "Amazon S3 multipart upload limits":
- Content-MD5, when sent, is base64 of 16 bytes (else 400 InvalidDigest) and the body's MD5 (else 400
  BadDigest); an x-amz-checksum-crc32 / -crc32c / -crc64nvme / -sha1 / -sha256 header or aws-chunked
  trailer, when sent, is valid base64 of its size (else 400 InvalidRequest) and the payload's checksum (else
  400 BadDigest, "The CRC32 you specified did not match the calculated checksum."); one such header at most.
  moto takes wrong digests and echoes them as the object's checksum.
- PutObject and UploadPart declare their length (Content-Length, or x-amz-decoded-content-length for
  aws-chunked; else 411 MissingContentLength) of at most 5 GiB (else 400 EntityTooLarge, refused on the
  declared length before the body is read: no 100 Continue is sent for it); an aws-chunked payload is as
  long as it declared (else 400 IncompleteBody).
- UploadPart's part number is an integer 1 to 10,000 (else 400 InvalidArgument; moto says NoSuchUpload
  for 0).
- CompleteMultipartUpload lists parts in ascending order (else 400 InvalidPartOrder: moto takes any order
  and assembles the object in it), each one uploaded with that ETag (else 400 InvalidPart), each but the
  last at least 5 MiB (else 400 EntityTooSmall, whatever moto's S3_UPLOAD_PART_MIN_SIZE says); an upload
  created with a ChecksumAlgorithm (COMPOSITE) names each part's checksum (else 400 InvalidRequest), and
  a part checksum named must be the part's (else 400 InvalidPart). UploadPart into such an upload answers
  the part's checksum as S3 does, sent or not (moto answers it only when sent).
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import hashlib
import itertools
import json
import math
import re
import secrets
import threading
import time
import urllib.parse
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import boto3
import botocore.session
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

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
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "expect"}

S3_MAX_PART_NUMBER = 10_000
S3_MIN_PART_BYTES = 5 * 1024 * 1024  # every part but the last ("Amazon S3 multipart upload limits")
S3_MAX_UPLOAD_BYTES = 5 * 1024**3  # one PutObject, one UploadPart
# x-amz-checksum-<algorithm> -> the digest's size in bytes
S3_CHECKSUM_BYTES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
_S3_UPLOADS = frozenset({"S3.PutObject", "S3.UploadPart"})
_S3_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class Refused(Exception):
    """What AWS would answer instead of doing the request."""

    def __init__(self, code: str, message: str, status: int = 400, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.details = details or {}  # S3's further error elements (ArgumentName, ProposedSize, ...)


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
    - `body_contains`: only calls whose request holds this text (one UpdateItem among others, say);
    - `after_work`: the call reaches moto (the work is done), `hang_seconds` pass, then its answer is lost:
      answered `code` (HTTP `status`) instead, or without `code` the connection closes unanswered.

    S3 operations are targets too, named as `StrictAws.calls` counts them ("S3.UploadPart", ...); their
    `code` is answered in S3's XML error document (`answer` is for JSON targets only).
    """

    target: str
    code: str | None = None
    status: int = 400
    times: int = 1
    hang_seconds: float = 0.0
    message: str = "fault injected by the local stack"
    answer: dict[str, Any] | None = None
    body_contains: str | None = None
    after_work: bool = False


@dataclass
class S3Request:
    """An S3 request as the front checks it and moto gets it: the payload without aws-chunked framing."""

    headers: dict[str, str]  # what moto gets
    body: bytes
    checksums: dict[str, str] = field(default_factory=dict)  # "crc32" ... -> base64, from a header or trailer


@dataclass
class S3Upload:
    """A multipart upload created with a ChecksumAlgorithm, as CreateMultipartUpload named it."""

    algorithm: str  # "crc32", "sha256", ...
    composite: bool  # ChecksumType COMPOSITE: CompleteMultipartUpload must name each part's checksum


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
        # A missing object answered as to a caller without bucket-wide s3:ListBucket (the function's role): 403.
        self.missing_object_is_403 = True
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
        self._moto_s3 = boto3.client(
            "s3",
            config=Config(max_pool_connections=64, s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
            endpoint_url=self.moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's, not a secret)
        )
        self._uploads: dict[str, S3Upload] = {}  # upload ID -> its checksum algorithm, if it was created with one
        self._part_checksums: dict[tuple[str, int], dict[str, str]] = {}  # (upload ID, part) -> algorithm -> base64
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
            self._uploads.clear()
            self._part_checksums.clear()
            self.time_scale = 1.0
            self.empty_short_polls = 0
            self.rule_settle_seconds = 0.0
            self.missing_object_is_403 = True
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

    # -- S3 ------------------------------------------------------------------------------------------
    def check_s3_length(self, target: str, headers: Mapping[str, str]) -> None:
        """Refuse, from the headers alone (before the body is read), an upload S3 would not take."""
        if target not in _S3_UPLOADS:
            return
        declared = _header(headers, "x-amz-decoded-content-length")
        if declared is None and not _aws_chunked(headers):
            declared = _header(headers, "Content-Length")  # a chunked transfer without a declared length has none
        if declared is None or not declared.strip().isdigit():
            raise Refused("MissingContentLength", "You must provide the Content-Length HTTP header.", 411)
        if int(declared) > S3_MAX_UPLOAD_BYTES:
            raise Refused(
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed object size.",
                details={"ProposedSize": str(int(declared)), "MaxSizeAllowed": str(S3_MAX_UPLOAD_BYTES)},
            )

    def decode_s3(self, headers: dict[str, str], body: bytes) -> S3Request:
        """The request as moto is to get it: an aws-chunked payload decoded, its trailer's checksum a header."""
        forwarded = dict(headers)
        checksums = _checksum_headers(headers)
        if not _aws_chunked(headers):
            return S3Request(forwarded, body, checksums)
        encodings = [e.strip() for e in (_header(headers, "Content-Encoding") or "").split(",") if e.strip()]
        payload, trailers = _decode_aws_chunked(body)
        declared = _header(headers, "x-amz-decoded-content-length")
        if declared is not None and declared.strip() != str(len(payload)):
            raise Refused(
                "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header."
            )
        for name in (n.strip().lower() for n in (_header(headers, "x-amz-trailer") or "").split(",") if n.strip()):
            if name not in trailers:
                raise Refused(
                    "MalformedTrailerError",
                    "The request contained trailing data that was not well-formed or did not conform to our "
                    "published schema.",
                )
        for name, value in trailers.items():
            algorithm = name.removeprefix("x-amz-checksum-")
            if name.startswith("x-amz-checksum-") and algorithm in S3_CHECKSUM_BYTES:
                if algorithm not in checksums and checksums:
                    raise _multiple_checksums()
                checksums[algorithm] = value
        gone = {"x-amz-decoded-content-length", "x-amz-trailer", "content-encoding", "x-amz-content-sha256"}
        forwarded = {k: v for k, v in forwarded.items() if k.lower() not in gone}
        if kept := [e for e in encodings if e.lower() != "aws-chunked"]:
            forwarded["Content-Encoding"] = ",".join(kept)
        forwarded["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        for algorithm, value in checksums.items():
            if _header(forwarded, f"x-amz-checksum-{algorithm}") is None:
                forwarded[f"x-amz-checksum-{algorithm}"] = value
        return S3Request(forwarded, payload, checksums)

    def check_s3(self, target: str, path: str, request: S3Request) -> None:
        """Raise Refused for what S3 refuses (see the module's docstring)."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query, keep_blank_values=True)
        if target in ("S3.UploadPart", "S3.UploadPartCopy"):
            _part_number(query)
        _check_content_md5(request.headers, request.body)
        if target != "S3.CompleteMultipartUpload":  # there, x-amz-checksum-* is the whole object's
            _check_checksums(request)
        if target == "S3.CompleteMultipartUpload":
            self._check_complete(path, query, request.body)

    def _check_complete(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        try:
            document = ElementTree.fromstring(body)  # noqa: S314 (the local stack's own clients' requests)
        except ElementTree.ParseError:
            return  # moto answers MalformedXML
        listed: list[tuple[int, dict[str, str]]] = []
        for part in document:
            if _local_name(part.tag) == "Part":
                fields = {_local_name(element.tag): (element.text or "").strip() for element in part}
                if not fields.get("PartNumber", "").isdigit():
                    return  # moto answers
                listed.append((int(fields["PartNumber"]), fields))
        numbers = [number for number, _ in listed]
        if any(later <= earlier for earlier, later in itertools.pairwise(numbers)):
            raise Refused(
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts list must be specified in order by part "
                "number.",
            )
        upload_id = (query.get("uploadId") or [""])[0]
        bucket, key = _bucket_and_key(path)
        uploaded = self._moto_parts(bucket, key, upload_id)
        if not listed or uploaded is None:
            return  # moto answers MalformedXML, NoSuchUpload
        with self._lock:
            upload = self._uploads.get(upload_id)
            recorded = {number: dict(self._part_checksums.get((upload_id, number), {})) for number in numbers}
        invalid_part = Refused(
            "InvalidPart",
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the "
            "specified entity tag may not have matched the part's entity tag.",
        )
        for number, fields in listed:
            found = uploaded.get(number)
            if found is None or found[0] != fields.get("ETag", "").strip('"').lower():
                raise invalid_part
            if upload is not None and upload.composite and not fields.get(f"Checksum{upload.algorithm.upper()}"):
                raise Refused(
                    "InvalidRequest",
                    f"The upload was created using a {upload.algorithm} checksum. The complete request must include "
                    f"the checksum for each part. It was missing for part {number} in the request.",
                )
            for algorithm, known in recorded[number].items():
                given = fields.get(f"Checksum{algorithm.upper()}")
                if given and given != known:
                    raise invalid_part
        for number, _ in listed[:-1]:
            etag, size = uploaded[number]
            if size < S3_MIN_PART_BYTES:
                raise Refused(
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                    details={
                        "ProposedSize": str(size),
                        "MinSizeAllowed": str(S3_MIN_PART_BYTES),
                        "PartNumber": str(number),
                        "ETag": etag,
                    },
                )

    def _moto_parts(self, bucket: str, key: str, upload_id: str) -> dict[int, tuple[str, int]] | None:
        """The parts moto holds for an upload: number -> (ETag without quotes, size); None if it knows no such."""
        parts: dict[int, tuple[str, int]] = {}
        try:
            for page in self._moto_s3.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id):
                for part in page.get("Parts", []):
                    parts[int(part["PartNumber"])] = (str(part["ETag"]).strip('"').lower(), int(part["Size"]))
        except ClientError:
            return None
        return parts

    def s3_answered(
        self, target: str, path: str, request: S3Request, answer: urllib3.BaseHTTPResponse
    ) -> dict[str, str]:
        """Note what a successful call created; return the headers S3 answers that moto's answer lacks."""
        if answer.status >= 300:
            return {}
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query, keep_blank_values=True)
        upload_id = (query.get("uploadId") or [""])[0]
        if target == "S3.CreateMultipartUpload":
            algorithm = (_header(request.headers, "x-amz-checksum-algorithm") or "").lower()
            kind = (_header(request.headers, "x-amz-checksum-type") or "").upper()
            created = re.search(rb"<UploadId>([^<]+)</UploadId>", answer.data)
            if algorithm and created:
                composite = (kind or ("FULL_OBJECT" if algorithm == "crc64nvme" else "COMPOSITE")) == "COMPOSITE"
                with self._lock:
                    self._uploads[created.group(1).decode()] = S3Upload(algorithm, composite)
        elif target == "S3.UploadPart":
            checksums = dict(request.checksums)
            with self._lock:
                upload = self._uploads.get(upload_id)
            extra: dict[str, str] = {}
            if upload is not None and upload.algorithm in S3_CHECKSUM_BYTES:
                if upload.algorithm not in checksums:
                    checksums[upload.algorithm] = base64.b64encode(s3_checksum(upload.algorithm, request.body)).decode()
                if answer.headers.get(f"x-amz-checksum-{upload.algorithm}") is None:
                    extra[f"x-amz-checksum-{upload.algorithm}"] = checksums[upload.algorithm]
            with self._lock:
                self._part_checksums[(upload_id, _part_number(query))] = checksums
            return extra
        elif target in ("S3.CompleteMultipartUpload", "S3.AbortMultipartUpload"):
            with self._lock:
                self._uploads.pop(upload_id, None)
                for done in [k for k in self._part_checksums if k[0] == upload_id]:
                    del self._part_checksums[done]
        return {}

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


# -- S3 ---------------------------------------------------------------------------------------------------
def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _aws_chunked(headers: Mapping[str, str]) -> bool:
    encodings = (_header(headers, "Content-Encoding") or "").lower().split(",")
    streaming = (_header(headers, "x-amz-content-sha256") or "").upper().startswith("STREAMING-")
    return streaming or "aws-chunked" in (e.strip() for e in encodings)


def is_s3(headers: Mapping[str, str], path: str) -> bool:
    """Whether a request is S3's: its SigV4 credential scope (header or presigned query) names the service."""
    authorization = _header(headers, "Authorization") or ""
    if authorization.startswith("AWS "):  # SigV2: S3 alone still takes it
        return True
    scope = _S3_CREDENTIAL.search(authorization)
    if scope is None:
        credential = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("X-Amz-Credential", [""])[0]
        scope = _S3_CREDENTIAL.search(f"Credential={credential}")
    return scope is not None and scope.group(1) == "s3"


@dataclass(frozen=True)
class _S3Route:
    operation: str
    method: str
    scope: str  # "service" (GET /), "bucket" or "object"
    literal: tuple[tuple[str, str], ...]  # the query the operation's URI names, e.g. ("list-type", "2")
    query: frozenset[str]  # required query parameters
    headers: frozenset[str]  # required headers
    deprecated: bool

    def matches(self, method: str, scope: str, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> bool:
        return (
            self.method == method
            and self.scope == scope
            and all(name in query and (not value or value in query[name]) for name, value in self.literal)
            and all(name in query for name in self.query)
            and all(_header(headers, name) is not None for name in self.headers)
        )

    def rank(self) -> tuple[int, bool, int]:
        return len(self.literal) + len(self.query) + len(self.headers), not self.deprecated, -len(self.operation)


@functools.cache
def _s3_routes() -> tuple[_S3Route, ...]:
    """S3's operations as botocore's model routes them: method, path, the query and headers each requires."""
    model = botocore.session.get_session().get_service_model("s3")
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        path, _, literal = str(operation.http["requestUri"]).partition("?")
        if path == "/":
            scope = "service"
        elif path.startswith("/{Bucket}"):
            scope = "object" if "{Key+}" in path else "bucket"
        else:
            continue  # WriteGetObjectResponse, on a host of its own
        shape = operation.input_shape
        query: set[str] = set()
        headers: set[str] = set()
        for member in shape.required_members if shape is not None else []:
            serialization = shape.members[member].serialization
            if serialization.get("location") == "querystring":
                query.add(serialization["name"])
            elif serialization.get("location") == "header":
                headers.add(serialization["name"].lower())
        pairs = tuple((k, v) for k, _, v in (pair.partition("=") for pair in literal.split("&") if pair))
        routes.append(
            _S3Route(
                name,
                str(operation.http["method"]),
                scope,
                pairs,
                frozenset(query),
                frozenset(headers),
                bool(operation.deprecated),
            )
        )
    return tuple(routes)


def s3_operation(method: str, path: str, headers: Mapping[str, str]) -> str:
    """The S3 operation a path-style request is: "PutObject", "UploadPart", "CompleteMultipartUpload", ...

    From the method, whether the path names a bucket and a key, and the query and headers the operation
    requires (`?uploads`: CreateMultipartUpload; PUT `?partNumber=&uploadId=`: UploadPart; POST
    `?uploadId=`: CompleteMultipartUpload; DELETE: AbortMultipartUpload; GET: ListParts); the most specific
    operation wins.
    """
    split = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
    bucket, key = _bucket_and_key(path)
    scope = "object" if key else "bucket" if bucket else "service"
    candidates = [route for route in _s3_routes() if route.matches(method, scope, query, headers)]
    if not candidates:
        return f"{method.capitalize()}{scope.capitalize()}"  # no such operation: S3 answers it, as moto will
    return max(candidates, key=_S3Route.rank).operation


def _bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = urllib.parse.urlsplit(path).path.lstrip("/").partition("/")
    return urllib.parse.unquote(bucket), urllib.parse.unquote(key)


def _read_chunked(stream: BinaryIO) -> bytes:
    """An HTTP/1.1 `Transfer-Encoding: chunked` body (its trailer fields, if any, dropped)."""
    body = bytearray()
    while True:
        line = stream.readline(65_537)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise Refused("IncompleteBody", "The request body terminated unexpectedly") from None
        if size == 0:
            break
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(3).strip():
            raise Refused("IncompleteBody", "The request body terminated unexpectedly")
        body += chunk
    while stream.readline(65_537).strip():
        pass
    return bytes(body)


def _decode_aws_chunked(body: bytes) -> tuple[bytes, dict[str, str]]:
    """An aws-chunked payload ("<hex size>[;chunk-signature=..]\\r\\n<data>\\r\\n" ... "0\\r\\n" trailers
    "\\r\\n"): the data, and the trailers by lower-case name."""
    malformed = Refused("IncompleteBody", "The request body terminated unexpectedly")
    data = bytearray()
    view = memoryview(body)
    position = 0
    while True:
        end = body.find(b"\r\n", position)
        if end < 0:
            raise malformed
        try:
            size = int(body[position:end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise malformed from None
        position = end + 2
        if size == 0:
            break
        if position + size + 2 > len(body) or body[position + size : position + size + 2] != b"\r\n":
            raise malformed
        data += view[position : position + size]
        position += size + 2
    trailers: dict[str, str] = {}
    for line in body[position:].split(b"\r\n"):
        if line.strip():
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise malformed
            trailers[name.strip().lower()] = value.strip()
    return bytes(data), trailers


def _reflected_crc_table(polynomial: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ polynomial if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _reflected_crc_table(0x82F63B78)  # Castagnoli, reflected
_CRC64NVME_TABLE = _reflected_crc_table(0x9A6C9329AC4BC9B5)  # CRC-64/NVME, reflected


def _reflected_crc(data: bytes, table: tuple[int, ...], ones: int) -> int:
    """A table-driven CRC in pure Python (~10 MB/s: only clients that ask for CRC32C or CRC64NVME pay it)."""
    crc = ones
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ ones


def s3_checksum(algorithm: str, data: bytes) -> bytes:
    """The digest S3 computes for x-amz-checksum-<algorithm> (raw bytes, big-endian for the CRCs)."""
    if algorithm == "crc32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algorithm == "crc32c":
        return _reflected_crc(data, _CRC32C_TABLE, 0xFFFFFFFF).to_bytes(4, "big")
    if algorithm == "crc64nvme":
        return _reflected_crc(data, _CRC64NVME_TABLE, 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
    return hashlib.new(algorithm, data, usedforsecurity=False).digest()


def _multiple_checksums() -> Refused:
    return Refused(
        "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
    )


def _checksum_headers(headers: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for name, value in headers.items():
        algorithm = name.lower().removeprefix("x-amz-checksum-")
        if name.lower().startswith("x-amz-checksum-") and algorithm in S3_CHECKSUM_BYTES:
            found[algorithm] = value.strip()
    if len(found) > 1:
        raise _multiple_checksums()
    return found


def _check_checksums(request: S3Request) -> None:
    for algorithm, value in request.checksums.items():
        try:
            claimed = base64.b64decode(value, validate=True)
        except binascii.Error:
            claimed = b""
        if len(claimed) != S3_CHECKSUM_BYTES[algorithm]:
            raise Refused("InvalidRequest", f"Value for x-amz-checksum-{algorithm} header is invalid.")
        if s3_checksum(algorithm, request.body) != claimed:
            raise Refused("BadDigest", f"The {algorithm.upper()} you specified did not match the calculated checksum.")


def _check_content_md5(headers: Mapping[str, str], body: bytes) -> None:
    value = _header(headers, "Content-MD5")
    if value is None:
        return
    try:
        claimed = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        claimed = b""
    if len(claimed) != 16:
        raise Refused("InvalidDigest", "The Content-MD5 you specified is not valid.")
    calculated = hashlib.md5(body, usedforsecurity=False).digest()
    if calculated != claimed:
        raise Refused(
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
            details={"ExpectedDigest": claimed.hex(), "CalculatedDigest": base64.b64encode(calculated).decode()},
        )


def _part_number(query: Mapping[str, list[str]]) -> int:
    text = (query.get("partNumber") or [""])[0]
    if not text.isdigit() or not 1 <= int(text) <= S3_MAX_PART_NUMBER:
        raise Refused(
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive",
            details={"ArgumentName": "partNumber", "ArgumentValue": text},
        )
    return int(text)


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # without the namespace, "{http://s3.amazonaws.com/doc/2006-03-01/}Part"


def s3_error_document(refusal: Refused, request_id: str) -> bytes:
    """S3's REST error response body."""
    elements = {"Code": refusal.code, "Message": refusal.message, **refusal.details, "RequestId": request_id}
    inner = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in elements.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()


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

    def _target(self) -> tuple[str, bool]:
        """The call's name (X-Amz-Target, or "S3.<operation>") and whether it is S3's."""
        target = self.headers.get("X-Amz-Target", "")
        if target or self.path.startswith("/moto-api/") or not is_s3(self.headers, self.path):
            return target, False
        return f"S3.{s3_operation(self.command, self.path, self.headers)}", True

    def handle_expect_100(self) -> bool:
        """An upload S3 refuses on its declared length gets the refusal instead of a 100 Continue: the client
        never sends its body."""
        target, s3 = self._target()
        if s3:
            try:
                self.owner.check_s3_length(target, self.headers)
            except Refused:
                return True  # _handle answers the refusal
        return super().handle_expect_100()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _read_chunked(self.rfile)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        front = self.owner
        target, s3 = self._target()
        if target:
            with front._lock:
                front.calls[target] += 1
        if self.path.startswith("/moto-api/reset"):
            front.reset()
        headers = dict(self.headers.items())
        try:
            if s3:
                front.check_s3_length(target, headers)
            body = self._read_body()
        except Refused as refusal:  # the body is not read, or not readable: the connection cannot go on
            self.close_connection = True
            with front._lock:
                front.refused.append((target, refusal.code))
            self._refuse(target, refusal)
            return
        request: S3Request | None = None
        fault: AwsFault | None = None
        try:
            if s3:
                request = front.decode_s3(headers, body)
                headers, body = request.headers, request.body
            fault = front.take_fault(target, body) if target else None
            if fault is not None:
                generation, ended = front.generation, front._reset_happened
                if not fault.after_work and (ended.wait(fault.hang_seconds) or front.generation != generation):
                    # moto was reset meanwhile: this call belongs to no one
                    self.close_connection = True
                    return
                if fault.code is not None and not fault.after_work:
                    raise Refused(fault.code, fault.message, fault.status)
                if fault.answer is not None and not fault.after_work:
                    self._reply(fault.answer)
                    return
            if request is not None:
                front.check_s3(target, self.path, request)
            if target in _TASK_TARGETS:
                operation = target.split(".", 1)[1]
                self._reply(front.task_tokens.answer(operation, json.loads(body or b"{}")))
                return
            if target == "AWSEvents.PutTargets" and (held := front.held_back(self.path, headers, body)):
                self._reply(held)
                return
            if target in _MOVE_TASK_TARGETS:
                self._reply(front.move_tasks(target, json.loads(body or b"{}")))
                return
            if (target.startswith("AmazonSQS.") or target == "AWSEvents.PutEvents") and body:
                document = front.check(target, json.loads(body))
                if target == "AWSEvents.PutEvents" and any(_malformed_detail(e) for e in document["Entries"]):
                    self._reply(front.put_events_in_part(self.path, headers, document))
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
                answer = front.forward(self.command, self.path, headers, body)
        else:
            answer = front.forward(self.command, self.path, headers, body)
        if target == "AWSEvents.PutRule" and answer.status == 200:
            front.settle_rule(json.loads(body))
        extra = front.s3_answered(target, self.path, request, answer) if request is not None else {}
        if target in ("S3.GetObject", "S3.HeadObject") and answer.status == 404 and front.missing_object_is_403:
            # "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403" (GetObject,
            # HeadObject): the function's role may list only its prefix, so a missing key is never said to be one.
            self._refuse_s3(Refused("AccessDenied", "Access Denied", 403))
            with front._lock:
                front.refused.append((target, "AccessDenied"))
            return
        if fault is not None and fault.after_work:
            self._lose_answer(target, fault)
            return
        self.send_response(answer.status)
        length = str(len(answer.data))
        for name, value in answer.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
            elif name.lower() == "content-length" and self.command == "HEAD":
                length = value  # a HEAD's answer has no body, and says how long the GET's would be
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.data)

    def _lose_answer(self, target: str, fault: AwsFault) -> None:
        """The work is done; after `hang_seconds` the caller gets `code` instead, or no answer at all."""
        front = self.owner
        generation, ended = front.generation, front._reset_happened
        if ended.wait(fault.hang_seconds) or front.generation != generation or fault.code is None:
            self.close_connection = True  # the connection closes unanswered
            return
        with front._lock:
            front.refused.append((target, fault.code))
        self._refuse(target, Refused(fault.code, fault.message, fault.status))

    def _reply(self, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _refuse(self, target: str, refusal: Refused) -> None:
        if target.startswith("S3."):
            self._refuse_s3(refusal)
            return
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

    def _refuse_s3(self, refusal: Refused) -> None:
        request_id = secrets.token_hex(8).upper()
        payload = s3_error_document(refusal, request_id)
        self.send_response(refusal.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", request_id)
        self.send_header("x-amz-id-2", base64.b64encode(secrets.token_bytes(48)).decode())
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":  # an error to a HEAD is its status alone
            self.wfile.write(payload)
