"""Waiting for one message's result event: a temporary rule on the result bus feeding a temporary queue.

The rule matches the result events that carry one correlation id. EventBridge warns that a new rule
"might not immediately start matching" (PutRule), and a dry run can be announced within a second of
being sent: so before anything is sent, a probe event (its own source, never a result event's) must
come through the rule. Everything made here is removed on the way out.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from llmobs_actions.results import DEFAULT_SOURCE, FAILED, SUCCEEDED

PROBE_SOURCE = "llmobs-actions.cli"  # not a result event's source: no consumer of results sees a probe
PROBE_DETAIL_TYPE = "LLMObs Action Wait Probe"
_PROBE_EVERY_SECONDS = 1.0
_LONGEST_POLL_SECONDS = 20  # SQS's maximum long poll


class WatchError(Exception):
    """The watch could not be set up (the message has not been sent)."""


@dataclass
class ResultWatch:
    """`with ResultWatch(events, sqs, bus, correlation_id) as watch:` sets up, then `watch.wait(...)`."""

    events: Any
    sqs: Any
    bus: str
    correlation_id: str
    source: str = DEFAULT_SOURCE
    name: str = field(default_factory=lambda: f"llmobs-actions-wait-{uuid.uuid4().hex[:12]}")
    queue_url: str | None = None
    rule_arn: str | None = None
    _targeted: bool = False
    leftovers: list[str] = field(default_factory=list)  # what could not be removed, to say so

    def __enter__(self) -> ResultWatch:
        try:
            self._set_up()
        except BaseException:
            self._tear_down()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._tear_down()

    def pattern(self) -> dict[str, Any]:
        return {
            "source": [self.source, PROBE_SOURCE],
            "detail-type": [SUCCEEDED, FAILED, PROBE_DETAIL_TYPE],
            "detail": {"correlation_id": [self.correlation_id]},
        }

    def policy(self, queue_arn: str) -> dict[str, Any]:
        """Only EventBridge, and only for this rule, may send to the queue (else it delivers nothing)."""
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ResultRuleOnly",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.rule_arn}},
                }
            ],
        }

    def prove_live(self, timeout_seconds: float) -> None:
        """Publish probes until one comes through the rule; WatchError if none does in time."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            self.events.put_events(
                Entries=[
                    {
                        "Source": PROBE_SOURCE,
                        "DetailType": PROBE_DETAIL_TYPE,
                        "Detail": json.dumps({"correlation_id": self.correlation_id}),
                        "EventBusName": self.bus,
                    }
                ]
            )
            published = time.monotonic()
            while time.monotonic() - published < _PROBE_EVERY_SECONDS and time.monotonic() < deadline:
                if any(event.get("detail-type") == PROBE_DETAIL_TYPE for event in self._receive(1)):
                    return
        raise WatchError(
            f"the rule on bus {self.bus!r} did not deliver within {timeout_seconds:.0f} s "
            "(new EventBridge rules can take a moment): nothing was sent, try again"
        )

    def wait(self, timeout_seconds: float, message_id: str | None = None) -> dict[str, Any] | None:
        """The first result event for the correlation id (and `message_id`, when known), or None in time."""
        deadline = time.monotonic() + timeout_seconds
        while (left := deadline - time.monotonic()) > 0:
            for event in self._receive(max(1, min(_LONGEST_POLL_SECONDS, int(left)))):
                detail = event.get("detail")
                if event.get("detail-type") not in (SUCCEEDED, FAILED) or not isinstance(detail, dict):
                    continue  # a late probe
                if message_id is None or detail.get("message_id") == message_id:
                    return event
        return None

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        found = []
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            try:
                found.append(json.loads(message["Body"]))
            except ValueError:
                continue  # not EventBridge's: nothing else can send here
        return found

    def _set_up(self) -> None:
        self.queue_url = self.sqs.create_queue(
            QueueName=self.name,
            Attributes={"MessageRetentionPeriod": "3600", "SqsManagedSseEnabled": "true"},
        )["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.rule_arn = self.events.put_rule(
            Name=self.name,
            EventBusName=self.bus,
            EventPattern=json.dumps(self.pattern()),
            Description="llmobs-actions send --wait: one message's outcome (removed when it ends)",
        )["RuleArn"]
        policy = json.dumps(self.policy(queue_arn))
        self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": policy})
        answer = self.events.put_targets(
            Rule=self.name, EventBusName=self.bus, Targets=[{"Id": "wait-queue", "Arn": queue_arn}]
        )
        if answer.get("FailedEntryCount"):
            raise WatchError(f"EventBridge refused the rule's target: {answer.get('FailedEntries')}")
        self._targeted = True

    def _tear_down(self) -> None:
        steps: list[tuple[str, Callable[[], object]]] = []
        if self._targeted:
            steps.append(
                (
                    f"targets of rule {self.name}",
                    lambda: self.events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=["wait-queue"]),
                )
            )
        if self.rule_arn:
            steps.append((f"rule {self.name}", lambda: self.events.delete_rule(Name=self.name, EventBusName=self.bus)))
        if self.queue_url:
            steps.append((f"queue {self.queue_url}", lambda: self.sqs.delete_queue(QueueUrl=self.queue_url)))
        for what, step in steps:
            try:
                step()
            except Exception:  # each step on its own: one failure must not leave the others behind
                self.leftovers.append(what)
