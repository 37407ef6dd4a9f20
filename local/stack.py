"""The local stack: moto in server mode plus the Datadog emulator, with the resources the function expects."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from llmobs_actions.results import DEFAULT_SOURCE as RESULT_SOURCE
from llmobs_actions.results import RESULT_DETAIL_TYPES
from local import moto_speedups
from local.datadog_emulator import DatadogEmulator
from local.seeded_ids import DATASET_ID, EXPERIMENT_IDS, PROJECT_ID
from local.strict_aws import StrictAws
from local.template import StackValues, stack_values

REGION = "us-east-1"
SECRET_ID = "llmobs-actions/datadog"
# Distinctive, so a leak would be recognisable in any output.
API_KEY = "emulator-api-key-3f9a1c77e2"
APP_KEY = "emulator-app-key-b52e0d9461"

AWS_TEST_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class AwsResources:
    endpoint: str
    values: StackValues
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    table_name: str
    rule_name: str
    sqs: Any
    secrets: Any
    front: StrictAws | None = None  # to break a service on purpose, or speed up SQS's clock
    results_queue_url: str | None = None  # where a producer's rule on the result bus delivers result events
    bucket_name: str = ""  # the backup bucket: dataset exports go under values.backup_prefix in it

    def result_events(self) -> list[dict[str, Any]]:
        """The result events delivered so far (each read once), oldest first."""
        found: list[dict[str, Any]] = []
        while self.results_queue_url and (
            messages := self.sqs.receive_message(QueueUrl=self.results_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
        ):
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.results_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return sorted(found, key=lambda event: str(event.get("detail", {}).get("finished_at")))

    def dead_letters(self) -> list[dict[str, Any]]:
        """Everything in the DLQ, attributes flattened to strings; the messages stay in the queue."""
        found: dict[str, dict[str, Any]] = {}
        handles: list[str] = []
        while True:  # hide what was read, so that each receive brings new messages, until none are left
            received = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
            ).get("Messages", [])
            if not received:
                break
            for message in received:
                attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
                found[message["MessageId"]] = {
                    "id": message["MessageId"],
                    "body": message["Body"],
                    "attributes": attributes,
                }
                handles.append(message["ReceiptHandle"])
        for start in range(0, len(handles), 10):  # and show them again
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.dlq_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for n, h in enumerate(handles[start : start + 10])
                ],
            )
        return list(found.values())


class _MotoProcess:
    """moto's server in a process of its own: its CPU and GIL are then not the measured function's."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._process = subprocess.Popen(  # noqa: S603 (this interpreter, moto's server module)
            [sys.executable, "-m", "local.moto_speedups", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=Path(__file__).resolve().parent.parent,  # where `local` is importable
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto's server did not start")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


@dataclass
class LocalAws:
    """moto, and the front every client talks to: it refuses what AWS refuses (local/strict_aws.py)."""

    moto: ThreadedMotoServer | _MotoProcess
    front: StrictAws

    @property
    def endpoint(self) -> str:
        return self.front.endpoint

    def stop(self) -> None:
        self.front.stop()
        self.moto.stop()


def start_aws(own_process: bool = False) -> LocalAws:
    """moto in server mode (in a process of its own if asked) behind the strict front."""
    if own_process:
        process = _MotoProcess()
        return LocalAws(process, StrictAws(f"http://127.0.0.1:{process.port}"))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto_speedups.apply()
    threaded = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    threaded.start()
    host, port = threaded.get_host_and_port()
    return LocalAws(threaded, StrictAws(f"http://{host}:{port}"))


def reset_aws(endpoint: str) -> None:
    """Empty moto (through the front, which then forgets its faults and caches too)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).read()


def create_resources(
    endpoint: str, visibility_timeout: int | None = None, front: StrictAws | None = None, **parameters: str
) -> AwsResources:
    """The queue, DLQ, EventBridge rule, idempotency table, backup bucket and secret, built from template.yaml's
    own values.

    `visibility_timeout` overrides the template's (6 x the function timeout): local runs that retry
    would otherwise wait minutes. AWS_ENDPOINT_URL must point at moto.
    """
    values = stack_values(**parameters)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName=values.dead_letter_queue_name, Attributes=values.dead_letter_queue_attributes)[
        "QueueUrl"
    ]
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_attributes = values.queue_attributes | {
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": values.max_receive_count}),
    }
    if visibility_timeout is not None:
        queue_attributes["VisibilityTimeout"] = str(visibility_timeout)
    queue_url = sqs.create_queue(QueueName=values.queue_name, Attributes=queue_attributes)["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)

    events = boto3.client("events", region_name=REGION)
    rule_name = f"{values.queue_name}-rule"
    events.put_rule(Name=rule_name, EventBusName=values.event_bus_name, EventPattern=json.dumps(values.event_pattern))
    events.put_targets(
        Rule=rule_name,
        EventBusName=values.event_bus_name,
        Targets=[
            {
                "Id": "ActionsQueue",
                "Arn": queue_arn,
                "RetryPolicy": values.rule_retry_policy,
                "DeadLetterConfig": {"Arn": dlq_arn},
            }
        ],
    )

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    table_name = f"{values.queue_name}-idempotency"
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=values.table_key_schema,
        AttributeDefinitions=values.table_attribute_definitions,
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"AttributeName": values.table_ttl_attribute, "Enabled": True}
    )

    secrets = boto3.client("secretsmanager", region_name=REGION)
    secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps({"api_key": API_KEY, "app_key": APP_KEY}))
    results = _result_listener(sqs, events, values)
    bucket_name = _backup_bucket(values)
    return AwsResources(
        endpoint,
        values,
        queue_url,
        queue_arn,
        dlq_url,
        dlq_arn,
        table_name,
        rule_name,
        sqs,
        secrets,
        front,
        results,
        bucket_name,
    )


def _backup_bucket(values: StackValues) -> str:
    """The bucket the template creates (versioned and encrypted as it says), under a fixed local name; or, given
    BackupBucketName, a plain bucket of that name standing in for the existing one."""
    s3 = boto3.client("s3", region_name=REGION)
    name = values.backup_bucket_name or f"{values.queue_name}-backups"
    s3.create_bucket(Bucket=name)
    if values.backup_bucket_versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": values.backup_bucket_versioning})
    if values.backup_bucket_encryption:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=values.backup_bucket_encryption)
    return name


def _result_listener(sqs: Any, events: Any, values: StackValues) -> str | None:
    """What a producer that wants its results sets up: a rule on the result bus feeding a queue of its own."""
    bus = values.function_environment.get("RESULT_EVENT_BUS")
    if not bus:
        return None
    url = str(sqs.create_queue(QueueName=f"{values.queue_name}-results")["QueueUrl"])
    pattern = {"source": [RESULT_SOURCE], "detail-type": list(RESULT_DETAIL_TYPES)}
    events.put_rule(Name=f"{values.queue_name}-results", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=f"{values.queue_name}-results",
        EventBusName=bus,
        Targets=[{"Id": "results", "Arn": _queue_arn(sqs, url)}],
    )
    return url


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def seed(emulator: DatadogEmulator) -> None:
    """The project, dataset and experiments the files in events/ name."""
    emulator.add_project("evals", project_id=PROJECT_ID)
    emulator.add_dataset(PROJECT_ID, "golden", records=5, dataset_id=DATASET_ID)
    for number, experiment_id in enumerate(EXPERIMENT_IDS):
        emulator.add_experiment(PROJECT_ID, DATASET_ID, f"run-{number}", experiment_id=experiment_id)


def function_environment(resources: AwsResources, emulator: DatadogEmulator) -> dict[str, str]:
    """The environment the SAM template gives the function, pointed at the local stack."""
    return resources.values.function_environment | {
        "DD_API_URL": emulator.url,
        "DD_SECRET_ID": SECRET_ID,
        "DEAD_LETTER_QUEUE_URL": resources.dlq_url,
        "IDEMPOTENCY_TABLE": resources.table_name,
        "BACKUP_BUCKET": resources.bucket_name,  # BACKUP_PREFIX is the template's own, in values
        "ACTIONS_QUEUE_URL": resources.queue_url,
        "DD_READ_TIMEOUT_SECONDS": "2",  # short, so that timeouts are quick to provoke locally
        "DD_CONNECT_TIMEOUT_SECONDS": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
        # Step Functions' task callbacks reach the front's recording stand-in (local/task_tokens.py): moto's
        # takes any token and records nothing. Named on its own so that the wiring is plain to see.
        "AWS_ENDPOINT_URL_SFN": resources.endpoint,
    }


@contextmanager
def local_stack(
    visibility_timeout: int | None = 2, moto_in_own_process: bool = False
) -> Iterator[tuple[AwsResources, DatadogEmulator]]:
    """Start everything, point this process's AWS clients and the function at it, and tear it down after."""
    local_aws = start_aws(moto_in_own_process)
    endpoint = local_aws.endpoint
    reset_aws(endpoint)  # moto's state lives in the process, not the server: start from nothing
    saved = dict(os.environ)
    os.environ.update(AWS_TEST_ENVIRONMENT | {"AWS_ENDPOINT_URL": endpoint})
    try:
        with DatadogEmulator(api_key=API_KEY, app_key=APP_KEY) as emulator:
            seed(emulator)
            resources = create_resources(endpoint, visibility_timeout=visibility_timeout, front=local_aws.front)
            os.environ.update(function_environment(resources, emulator))
            yield resources, emulator
    finally:
        os.environ.clear()
        os.environ.update(saved)
        local_aws.stop()
