"""The local stack's AWS is as strict as AWS on the rules the function relies on (local/strict_aws.py).

moto alone accepts each of these requests; the front refuses them with AWS's own error code, so a test
that passes on the local stack cannot pass only because moto is lenient.
"""

from __future__ import annotations

import contextlib
import json
import time

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from local.servers import local_threads, thread
from local.stack import LocalAws, create_resources, reset_aws
from local.strict_aws import AwsFault
from tests.conftest import Aws


def attributes(**values: str) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


def refusal(call: object) -> str:
    with pytest.raises(ClientError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value.response["Error"]["Code"])


def test_a_control_character_in_a_body_is_refused_as_aws_does(aws: Aws, local_aws: LocalAws) -> None:
    code = refusal(lambda: aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody='{"action":"\x01x"}'))
    assert code == "InvalidMessageContents"
    # moto on its own would have taken it
    moto = boto3.client("sqs", endpoint_url=local_aws.front.moto_endpoint)
    assert moto.send_message(QueueUrl=aws.dlq_url, MessageBody='{"action":"\x01x"}')["MessageId"]


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1f", "\ufffe", "\ud800"])
def test_characters_outside_xml_are_refused_in_attribute_values(aws: Aws, character: str) -> None:
    code = refusal(
        lambda: aws.sqs.send_message(
            QueueUrl=aws.dlq_url, MessageBody="ok", MessageAttributes=attributes(reason=f"bad {character} here")
        )
    )
    assert code == "InvalidParameterValue"


def test_tabs_newlines_and_astral_characters_are_accepted(aws: Aws) -> None:
    text = "line one\n\tline two\r\n emoji \U0001f600 and \ue000"
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=text, MessageAttributes=attributes(reason=text))
    [message] = aws.dead_letters()
    assert message["body"] == text
    assert message["attributes"]["reason"] == text


def test_body_plus_attributes_over_the_queue_limit_is_refused(aws: Aws) -> None:
    limit = aws.values.maximum_message_size
    body = "x" * (limit - 100)
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=body)  # the body alone fits
    code = refusal(
        lambda: aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=body, MessageAttributes=attributes(r="y" * 100))
    )
    assert code == "InvalidParameterValue"


def test_more_than_ten_attributes_and_reserved_names_are_refused(aws: Aws) -> None:
    eleven = attributes(**{f"a{n}": "v" for n in range(11)})
    assert refusal(lambda: aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody="b", MessageAttributes=eleven)) == (
        "InvalidParameterValue"
    )
    for name in ("AWS.trace", "amazon.x", ".dot", "dot.", "a..b", "sp ace"):
        code = refusal(
            lambda name=name: aws.sqs.send_message(
                QueueUrl=aws.dlq_url, MessageBody="b", MessageAttributes=attributes(**{name: "v"})
            )
        )
        assert code == "InvalidParameterValue", name


def test_an_empty_body_is_refused(aws: Aws) -> None:
    assert refusal(lambda: aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody="")) == "MissingParameter"


def test_a_visibility_over_twelve_hours_is_refused(aws: Aws) -> None:
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="b")
    [message] = aws.sqs.receive_message(QueueUrl=aws.queue_url)["Messages"]
    code = refusal(
        lambda: aws.sqs.change_message_visibility(
            QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=43_201
        )
    )
    assert code == "InvalidParameterValue"


def test_a_time_scale_shortens_visibility_delays(aws: Aws, local_aws: LocalAws) -> None:
    local_aws.front.time_scale = 60  # a minute passes in a second
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="b")
    [message] = aws.sqs.receive_message(QueueUrl=aws.queue_url)["Messages"]
    aws.sqs.change_message_visibility(
        QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=120
    )
    again = aws.sqs.receive_message(QueueUrl=aws.queue_url, WaitTimeSeconds=5).get("Messages", [])
    assert [m["Body"] for m in again] == ["b"]  # back after 2 s, not 2 minutes


def entry(detail: str, detail_type: str = "LLMObs Action Succeeded") -> dict[str, str]:
    return {"Source": "llmobs.actions", "DetailType": detail_type, "Detail": detail, "EventBusName": "default"}


def test_a_put_events_entry_over_256_kb_is_refused_as_eventbridge_does(aws: Aws, local_aws: LocalAws) -> None:
    events = boto3.client("events")
    # Source and DetailType count too: this Detail alone fits, the entry does not
    detail = '{"x":"' + "y" * (262_144 - 30) + '"}'
    assert refusal(lambda: events.put_events(Entries=[entry(detail)])) == "ValidationException"
    moto = boto3.client("events", endpoint_url=local_aws.front.moto_endpoint)
    assert moto.put_events(Entries=[entry(detail)])["FailedEntryCount"] == 0  # moto takes it

    fitting = '{"x":"' + "y" * (262_144 - 100) + '"}'
    assert events.put_events(Entries=[entry(fitting)])["FailedEntryCount"] == 0


def test_more_than_ten_entries_are_refused(aws: Aws) -> None:
    events = boto3.client("events")
    assert refusal(lambda: events.put_events(Entries=[entry("{}")] * 11)) == "ValidationException"


def test_a_detail_that_is_not_a_json_object_fails_its_entry_only(aws: Aws) -> None:
    answer = boto3.client("events").put_events(Entries=[entry('{"ok":1}'), entry("[1, 2]"), entry("not json")])
    assert answer["FailedEntryCount"] == 2
    assert [e.get("ErrorCode") for e in answer["Entries"]] == [None, "MalformedDetail", "MalformedDetail"]
    assert answer["Entries"][0]["EventId"]


def test_task_tokens_are_answered_as_step_functions_does(aws: Aws, local_aws: LocalAws) -> None:
    states = boto3.client("stepfunctions")
    tokens = local_aws.front.task_tokens
    waiting, expired = tokens.issue(timeout_seconds=60), tokens.issue(timeout_seconds=0)

    assert refusal(lambda: states.send_task_success(taskToken="AQB-never-issued", output="{}")) == "InvalidToken"
    assert refusal(lambda: states.send_task_success(taskToken=expired, output="{}")) == "TaskTimedOut"
    assert refusal(lambda: states.send_task_success(taskToken=waiting, output="not json")) == "InvalidOutput"
    assert refusal(lambda: states.send_task_failure(taskToken=waiting, error="e" * 257)) == "ValidationException"

    states.send_task_success(taskToken=waiting, output='{"new_dataset_id":"d"}')
    assert tokens.task(waiting).output == {"new_dataset_id": "d"}
    # a task answered once is over: a second answer is refused
    assert refusal(lambda: states.send_task_failure(taskToken=waiting, error="late")) == "TaskTimedOut"
    # moto's own Step Functions takes any token and records nothing
    moto = boto3.client("stepfunctions", endpoint_url=local_aws.front.moto_endpoint)
    moto.send_task_success(taskToken="AQB-never-issued", output="{}")


def test_a_new_rule_takes_a_moment_to_match_as_eventbridge_warns(aws: Aws, local_aws: LocalAws) -> None:
    local_aws.front.rule_settle_seconds = 1.5
    events, sqs = boto3.client("events"), aws.sqs
    queue_url = sqs.create_queue(QueueName="settling")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="settling", EventPattern='{"source": ["settle.test"]}')
    events.put_targets(Rule="settling", Targets=[{"Id": "q", "Arn": queue_arn}])

    def publish_and_receive(text: str) -> list[str]:
        probe = {"Source": "settle.test", "DetailType": "t", "Detail": json.dumps({"n": text})}
        assert events.put_events(Entries=[probe])["FailedEntryCount"] == 0
        received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"])["detail"]["n"] for m in received]

    assert publish_and_receive("at once") == []  # PutRule: "might not immediately start matching"
    time.sleep(1.5)
    assert publish_and_receive("a moment later") == ["a moment later"]


def test_a_reset_ends_every_move_task_settling_rule_and_hung_call(aws: Aws, local_aws: LocalAws) -> None:
    """What one test starts never reaches the next: a reset ends it before moto forgets its queues."""
    front = local_aws.front
    # GIVEN a slow move task with messages left to move, a rule still settling and a call hanging on a fault
    for number in range(5):
        aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=f"slow {number}")
    aws.sqs.start_message_move_task(SourceArn=aws.dlq_arn, DestinationArn=aws.queue_arn, MaxNumberOfMessagesPerSecond=1)
    front.rule_settle_seconds = 60
    events = boto3.client("events")
    events.put_rule(Name="settling", EventPattern='{"source": ["settle.test"]}')
    events.put_targets(Rule="settling", Targets=[{"Id": "q", "Arn": aws.queue_arn}])
    front.inject(AwsFault(target="AmazonSQS.GetQueueUrl", hang_seconds=60))
    hung = boto3.client("sqs", config=Config(read_timeout=90, retries={"max_attempts": 1}))

    def hang() -> None:
        with contextlib.suppress(Exception):  # whatever it ends with, it must end
            hung.get_queue_url(QueueName="x")

    call = thread(hang, "probe/hung-call")
    deadline = time.monotonic() + 10
    while not front.calls["AmazonSQS.GetQueueUrl"] and time.monotonic() < deadline:
        time.sleep(0.01)

    # WHEN the local stack is reset, and the next test makes queues of the same names
    reset_aws(aws.endpoint)
    started = time.monotonic()
    fresh = create_resources(aws.endpoint, visibility_timeout=1, front=front)

    # THEN nothing of the first test is running, and nothing of it reaches the second's queues
    call.join(timeout=5)
    assert not call.is_alive(), "the hung call outlived the reset"
    assert time.monotonic() - started < 5
    assert [t.name for t in local_threads() if "move-task" in t.name or "rule-settling" in t.name] == []
    assert fresh.sqs.receive_message(QueueUrl=fresh.queue_url, WaitTimeSeconds=2).get("Messages", []) == []


def test_a_conditional_write_is_atomic_as_dynamodb_makes_it(aws: Aws) -> None:
    """Of writers racing to take one item under the same condition, exactly one wins (moto alone checks and
    writes without a lock, and now and then lets two through)."""
    dynamodb = boto3.client("dynamodb")
    for trial in range(20):
        key = {"id": {"S": f"race-{trial}"}}
        dynamodb.put_item(TableName=aws.table_name, Item=key | {"status": {"S": "free"}})
        winners: list[int] = []

        def take(writer: int, key: dict[str, dict[str, str]] = key, winners: list[int] = winners) -> None:
            with contextlib.suppress(ClientError):
                boto3.client("dynamodb").update_item(
                    TableName=aws.table_name,
                    Key=key,
                    UpdateExpression="SET #status = :taken",
                    ConditionExpression="#status = :free",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={":taken": {"S": "taken"}, ":free": {"S": "free"}},
                )
                winners.append(writer)

        writers = [thread(take, "probe/writer", n) for n in range(6)]
        for writer in writers:
            writer.join(timeout=10)
        assert len(winners) == 1, f"trial {trial}: {len(winners)} writers took the item"


def test_put_events_entries_over_256_kb_together_are_refused(aws: Aws, local_aws: LocalAws) -> None:
    events = boto3.client("events")
    half = '{"x":"' + "y" * 140_000 + '"}'  # each entry fits; the two together do not
    assert refusal(lambda: events.put_events(Entries=[entry(half), entry(half)])) == "ValidationException"
    moto = boto3.client("events", endpoint_url=local_aws.front.moto_endpoint)
    assert moto.put_events(Entries=[entry(half), entry(half)])["FailedEntryCount"] == 0  # moto takes it


@pytest.mark.parametrize("rate", [0, 501])
def test_a_move_task_rate_sqs_cannot_keep_is_refused(rate: int, aws: Aws) -> None:
    code = refusal(
        lambda: aws.sqs.start_message_move_task(
            SourceArn=aws.dlq_arn, DestinationArn=aws.queue_arn, MaxNumberOfMessagesPerSecond=rate
        )
    )
    assert code == "InvalidParameterValue"


def test_a_call_whose_answer_is_lost_has_done_its_work(aws: Aws, local_aws: LocalAws) -> None:
    """`after_work`: moto does the call, then the caller gets the fault's error, or no answer at all."""
    once = boto3.client("sqs", config=Config(retries={"total_max_attempts": 1}))
    local_aws.front.inject(AwsFault(target="AmazonSQS.SendMessage", code="InternalError", status=500, after_work=True))
    assert refusal(lambda: once.send_message(QueueUrl=aws.dlq_url, MessageBody="sent once")) == "InternalError"
    local_aws.front.inject(AwsFault(target="AmazonSQS.SendMessage", after_work=True))  # the connection closes
    with pytest.raises(ConnectionClosedError):
        once.send_message(QueueUrl=aws.dlq_url, MessageBody="sent twice")
    assert sorted(m["body"] for m in aws.dead_letters()) == ["sent once", "sent twice"]


def test_a_chunked_request_body_is_read_whole(aws: Aws) -> None:
    """A body sent with Transfer-Encoding: chunked (no Content-Length) reaches moto whole."""
    document = json.dumps({"QueueUrl": aws.dlq_url, "MessageBody": "in two chunks"}).encode()
    headers = {
        "X-Amz-Target": "AmazonSQS.SendMessage",
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/sqs/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64,
    }
    with urllib3.PoolManager() as pool:
        answer = pool.request(
            "POST", aws.endpoint, body=iter([document[:10], document[10:]]), headers=headers, chunked=True
        )
    assert answer.status == 200, answer.data
    assert [m["body"] for m in aws.dead_letters()] == ["in two chunks"]
