"""The translated template deployed into moto's CloudFormation, and the real `sam build`."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import warnings
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from llmobs_actions.cli import main
from llmobs_actions.results import DEFAULT_SOURCE, RESULT_DETAIL_TYPES
from local.template import Resolver
from tests.conftest import Aws
from tests.template.conftest import TEMPLATE, sam_environment
from tests.template.test_template import CUSTOMER_KEY

STACK = "llmobs-actions-cfn"  # not the local stack's name: both live in one moto


def deploy(translated: dict[str, Any], parameters: dict[str, str]) -> dict[str, dict[str, str]]:
    """Create the stack in moto; returns {logical id: {type, physical id}}."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="llmobs-actions-code")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as code:
        code.writestr("llmobs_actions/__init__.py", "")
    s3.put_object(Bucket="llmobs-actions-code", Key="code.zip", Body=archive.getvalue())
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(translated),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {
        r["LogicalResourceId"]: {"type": r["ResourceType"], "id": r.get("PhysicalResourceId", "")}
        for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }


def test_the_stack_deploys_and_wires_queue_dlq_table_and_rule(aws: Aws, translated: dict[str, Any]) -> None:
    """moto creates the queues, table, roles, log group, function, event source mapping and rule.

    moto's CloudFormation skips (with a warning) AWS::SQS::QueuePolicy, AWS::S3::BucketPolicy,
    AWS::SecretsManager::Secret, AWS::CloudWatch::Alarm, AWS::Scheduler::Schedule and
    AWS::Lambda::EventInvokeConfig; those are asserted on the translated template instead (test_template.py,
    test_backup_bucket.py). It also ignores arm64, the table's TTL and RedriveAllowPolicy.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns for each resource type it skips (listed above)
        created = deploy(translated, {"FunctionTimeout": "60", "MaxReceiveCount": "7"})

    sqs = boto3.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=f"{STACK}-actions")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{STACK}-actions-dlq")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert queue["VisibilityTimeout"] == "365"
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 7}
    assert (queue["SqsManagedSseEnabled"], dlq["SqsManagedSseEnabled"]) == ("true", "true")
    assert dlq["MessageRetentionPeriod"] == "1209600"

    table = boto3.client("dynamodb").describe_table(TableName=created["IdempotencyTable"]["id"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"

    events = boto3.client("events")
    rule = events.describe_rule(Name=created["ActionsRule"]["id"])
    assert json.loads(rule["EventPattern"]) == {"source": ["llmobs.actions"], "detail-type": ["LLMObs Action"]}
    [target] = events.list_targets_by_rule(Rule=created["ActionsRule"]["id"])["Targets"]
    assert target["Arn"] == queue["QueueArn"]
    assert target["DeadLetterConfig"] == {"Arn": dlq["QueueArn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 10

    function = boto3.client("lambda").get_function(FunctionName=created["ActionsFunction"]["id"])["Configuration"]
    assert function["Handler"] == "llmobs_actions.handler.lambda_handler"
    assert function["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"].endswith(f"/{STACK}-actions-dlq")
    assert function["Environment"]["Variables"]["IDEMPOTENCY_TABLE"] == created["IdempotencyTable"]["id"]


@pytest.mark.parametrize(
    "parameters",
    [{"KmsKeyArn": CUSTOMER_KEY}, {"BackupBucketName": "team-dataset-backups", "BackupPrefix": "exports/"}],
    ids=["created-with-customer-key", "existing"],
)
def test_the_backup_bucket_deploys_and_the_function_is_pointed_at_it(
    aws: Aws, translated: dict[str, Any], parameters: dict[str, str]
) -> None:
    """moto creates the bucket with its BucketEncryption (the customer key's branch of the Fn::If) and ignores
    VersioningConfiguration, PublicAccessBlockConfiguration, OwnershipControls and LifecycleConfiguration;
    those, and the bucket policy it skips, are asserted on the translated template (test_backup_bucket.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns for each resource type it skips, and when it reads outputs
        created = deploy(translated, {"FunctionTimeout": "60", **parameters})
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        }

    s3 = boto3.client("s3")
    if "BackupBucketName" in parameters:
        assert "BackupBucket" not in created
        bucket, prefix = parameters["BackupBucketName"], parameters["BackupPrefix"]
    else:
        bucket, prefix = created["BackupBucket"]["id"], "llmobs-actions/"
        assert bucket.startswith(STACK), "named by CloudFormation"
        [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": CUSTOMER_KEY}

    function = boto3.client("lambda").get_function(FunctionName=created["ActionsFunction"]["id"])["Configuration"]
    variables = function["Environment"]["Variables"]
    queue_url = outputs["ActionsQueueUrl"]  # the queue's Ref, as the environment's
    assert outputs["BackupBucketName"] == bucket
    assert (variables["BACKUP_BUCKET"], variables["BACKUP_PREFIX"], variables["ACTIONS_QUEUE_URL"]) == (
        bucket,
        prefix,
        queue_url,
    )
    role = created["ActionsFunctionRole"]["id"]
    policy = boto3.client("iam").get_role_policy(RoleName=role, PolicyName="actions-function")
    granted = str(policy["PolicyDocument"])  # moto gives the resolved document as Python's repr of it
    assert f"arn:aws:s3:::{bucket}/{prefix}*" in granted
    assert f"'s3:prefix': '{prefix}*'" in granted


def test_env_exports_the_deployed_stacks_queues_and_bus_for_the_command(
    aws: Aws, translated: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto warns for each resource type it skips, and when it reads outputs
        deploy(translated, {"FunctionTimeout": "60"})
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        }
        assert main(["env", "--stack-name", STACK]) == 0
    exported = dict(line.removeprefix("export ").split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert exported == {
        "LLMOBS_ACTIONS_QUEUE_URL": outputs["ActionsQueueUrl"],
        "QUEUE_URL": outputs["ActionsQueueUrl"],
        "LLMOBS_ACTIONS_DLQ_URL": outputs["ActionsDeadLetterQueueUrl"],
        "DLQ_URL": outputs["ActionsDeadLetterQueueUrl"],
        "LLMOBS_ACTIONS_RESULT_BUS": outputs["ResultEventBusName"],
    }
    assert main(["env", "--stack-name", "no-such-stack"]) == 2
    [said] = capsys.readouterr().err.splitlines()
    assert said.startswith("llmobs-actions: CloudFormation ValidationError (DescribeStacks)")


def _python313() -> str | None:
    """sam build needs the runtime's interpreter on PATH; pyenv machines have it out of the way."""
    candidates = [
        shutil.which("python3.13"),
        *sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.13*/bin/python3.13")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
        if probe.returncode == 0:
            return candidate
    return None


@pytest.mark.slow
def test_sam_build_packages_the_function_for_arm64(sam_bin: Path, tmp_path: Path) -> None:
    python313 = _python313()
    if python313 is None:
        pytest.skip("sam build needs a python3.13 interpreter (the function's runtime) and none is installed here")
    environment = sam_environment(tmp_path) | {"PATH": f"{Path(python313).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(  # noqa: S603
        [str(sam_bin / "sam"), "build", "--build-dir", str(tmp_path / "build"), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        check=False,
        cwd=TEMPLATE.parent,
        env=environment,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    artifact = tmp_path / "build" / "ActionsFunction"
    assert (artifact / "llmobs_actions" / "handler.py").exists()
    assert (artifact / "aws_lambda_powertools").is_dir()
    assert list(artifact.glob("pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so")), "arm64 wheels"
    assert not (artifact / "tests").exists(), "only src/ is packaged"
    assert not (artifact / "local").exists(), "only src/ is packaged"

    # Byte code for every module, for the runtime's interpreter, used without looking at the source:
    # Lambda's /var/task is read-only, so what a cold start compiles is never kept.
    magic = subprocess.run(  # noqa: S603
        [python313, "-c", "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sources = [p for p in artifact.rglob("*.py") if p.parent.name != "bin"]
    missing = [p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.cpython-313.pyc").exists()]
    assert len(sources) > 500, len(sources)
    assert not missing, missing[:5]
    handler = (artifact / "llmobs_actions" / "__pycache__" / "handler.cpython-313.pyc").read_bytes()
    assert handler[:4].hex() == magic, "compiled by python3.13"
    assert int.from_bytes(handler[4:8], "little") == 0b01, "hash-based, unchecked: the source is never read"


def test_the_templates_rule_never_forwards_a_result_event_into_the_actions_queue(
    aws: Aws, translated: dict[str, Any]
) -> None:
    """With the defaults the function publishes its results on the bus its own rule listens to. The rule,
    as the translated template defines it, runs in moto's EventBridge (deploying the whole stack would
    have moto hand the queue's messages to the function in Docker, which is not here)."""
    resolver = Resolver(translated)
    rule = resolver.resources()["ActionsRule"]["Properties"]
    outputs = {name: resolver.resolve(output["Value"]) for name, output in translated["Outputs"].items()}
    detail_types = [text.strip() for text in outputs["ResultDetailTypes"].split(",")]
    assert outputs["ResultEventBusName"] == rule["EventBusName"] == "default", "one bus for actions and results"
    assert (outputs["ResultEventSource"], set(detail_types)) == (DEFAULT_SOURCE, RESULT_DETAIL_TYPES)

    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue_url = sqs.create_queue(QueueName="rule-under-test")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="actions-rule", EventBusName="default", EventPattern=json.dumps(rule["EventPattern"]))
    events.put_targets(Rule="actions-rule", EventBusName="default", Targets=[{"Id": "queue", "Arn": queue_arn}])

    def put(source: str, detail_type: str, detail: dict[str, Any]) -> None:
        entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": "default"}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    for detail_type in detail_types:
        put(DEFAULT_SOURCE, detail_type, {"message_id": "m", "action": "clone_dataset", "result": {"name": "n"}})
    action_source, action_type = resolver.parameters["EventSource"], resolver.parameters["EventDetailType"]
    put(action_source, action_type, {"action": "delete_experiments", "experiment_ids": ["e"]})

    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["detail-type"] for m in received] == [action_type]
    assert action_source == DEFAULT_SOURCE, "the same source: only the detail-type keeps results out"
