"""What reaches the dead-letter queue: every reason SQS-legal and within SQS's size limit, the body unchanged,
and a message's last receive dead-lettered by the function with its reason rather than moved bare by SQS."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from llmobs_actions import queues
from llmobs_actions.aws_clients import AwsClients, Deadline
from llmobs_actions.queues import Queues
from local.datadog_emulator import DatadogEmulator, Fault
from local.poller import Poller
from tests.conftest import Aws, clone_action


def send(aws: Aws, body: str) -> str:
    return str(aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=body)["MessageId"])


def test_a_control_character_in_the_action_tag_still_reaches_the_dlq_with_its_reason(aws: Aws, poller: Poller) -> None:
    # GIVEN a body that is legal for SQS (JSON escapes the character) whose action tag is a control character
    body = json.dumps({"action": "\u0001x", "experiment_ids": ["e1"]})
    message_id = send(aws, body)

    # WHEN it is processed: SQS refuses that character raw in an attribute value
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it is in the DLQ after one receive, unchanged, its reason with the character escaped
    assert poller.deliveries[message_id].receives == 1
    [dead] = aws.dead_letters()
    assert dead["body"] == body
    assert dead["attributes"]["error_class"] == "invalid"
    assert "\\u0001x" in dead["attributes"]["error_message"]
    assert "\x01" not in dead["attributes"]["error_message"]


def test_a_body_near_the_size_limit_reaches_the_dlq_byte_identical_with_a_shortened_reason(
    aws: Aws, poller: Poller
) -> None:
    # GIVEN an invalid message whose body alone leaves too little room for the whole reason
    limit = aws.values.maximum_message_size
    padding = "x" * (limit - 400)
    body = json.dumps({"action": "clone_dataset", "project_id": "p", "dataset_id": "d", "name": "n", padding: 1})
    assert len(body.encode()) < limit
    message_id = send(aws, body)

    # WHEN it is processed
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN the DLQ has it unchanged, with its class and a reason cut to fit
    assert poller.deliveries[message_id].receives == 1
    [dead] = aws.dead_letters()
    assert dead["body"] == body
    reason = dead["attributes"]
    assert reason["error_class"] == "invalid"
    assert reason["source_message_id"] == message_id
    assert reason["error_message"]
    size = len(body.encode()) + sum(len(k) + len("String") + len(v.encode()) for k, v in reason.items())
    assert size <= limit


def test_a_retryable_failure_on_the_last_receive_is_dead_lettered_with_its_reason(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN Datadog answers 503 until the message's receives run out
    emulator.inject(Fault(status=503, times=100, path_contains="/clone"))
    message_id = send(aws, json.dumps(clone_action(name="out of tries")))

    # WHEN it has been received maxReceiveCount times
    assert poller.run_until_empty(timeout_seconds=40)

    # THEN the function dead-lettered it on that last receive, saying why, and SQS did not move it
    delivery = poller.deliveries[message_id]
    assert delivery.receives == aws.values.max_receive_count
    assert delivery.deleted, "handled: the function dead-lettered it"
    [dead] = aws.dead_letters()
    assert dead["id"] != message_id, "a message the function sent, not the original moved by SQS"
    assert dead["attributes"]["error_class"] == "transient"
    assert dead["attributes"]["retries_exhausted"].startswith(f"receive {aws.values.max_receive_count} of")


def test_a_message_its_queue_would_expire_before_another_try_is_dead_lettered_now(
    aws: Aws, emulator: DatadogEmulator, poller: Poller
) -> None:
    # GIVEN a queue that keeps messages only 5 minutes: no retry would come back before it expires them
    aws.sqs.set_queue_attributes(QueueUrl=aws.queue_url, Attributes={"MessageRetentionPeriod": "300"})
    emulator.inject(Fault(status=503, times=1, path_contains="/clone"))
    message_id = send(aws, json.dumps(clone_action(name="expiring")))

    # WHEN its first try fails with a retryable error
    assert poller.run_until_empty(timeout_seconds=20)

    # THEN it is in the DLQ with the reason, rather than silently deleted by the retention later
    assert poller.deliveries[message_id].receives == 1
    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "transient"
    assert "300 s" in dead["attributes"]["retries_exhausted"]


def test_what_a_queue_says_of_its_messages_is_read_again_after_a_stack_update(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm sandbox keeps a queue's redrive policy for FACTS_MAX_AGE_SECONDS only: a MaxReceiveCount raised
    by a stack update must not keep dead-lettering messages early for the sandbox's whole life."""
    clock = [1000.0]
    monkeypatch.setattr(queues, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    facts = Queues(aws.dlq_url, AwsClients())
    assert facts.facts(aws.queue_arn, Deadline.none()).max_receive_count == aws.values.max_receive_count

    # WHEN the stack raises MaxReceiveCount
    policy = {"deadLetterTargetArn": aws.dlq_arn, "maxReceiveCount": 9}
    aws.sqs.set_queue_attributes(QueueUrl=aws.queue_url, Attributes={"RedrivePolicy": json.dumps(policy)})

    # THEN a warm sandbox sees it once its copy is FACTS_MAX_AGE_SECONDS old, not before (one read, not one a message)
    clock[0] += queues.FACTS_MAX_AGE_SECONDS - 1
    assert facts.facts(aws.queue_arn, Deadline.none()).max_receive_count == aws.values.max_receive_count
    clock[0] += 2
    assert facts.facts(aws.queue_arn, Deadline.none()).max_receive_count == 9
