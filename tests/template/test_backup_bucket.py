"""The backup bucket dataset exports go to: created versioned, encrypted, private, TLS-only and retained (or an
existing one named), the function granted its prefix only, a third schedule for the nightly backup, and the
local stack's bucket built from the same values."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from local.datadog_emulator import DatadogEmulator
from local.stack import create_resources, function_environment, reset_aws
from local.template import TEMPLATE, load, s3_api_encryption, stack_values
from tests.conftest import Aws
from tests.template.conftest import resolved
from tests.template.test_template import CUSTOMER_KEY, as_list, statements

EXISTING_BUCKET = "team-dataset-backups"
BUCKET_ARN = {"Fn::GetAtt": ["BackupBucket", "Arn"]}
BACKUP_SCHEDULE = {
    "BackupScheduleExpression": "cron(0 4 * * ? *)",
    "BackupScheduledAction": '{"action":"backup_datasets","project_id":"p",'
    '"idempotency_key":"backup-<aws.scheduler.scheduled-time>","event_time":"<aws.scheduler.scheduled-time>"}',
}
S3_GRANTS = {
    "WriteAndReadExports": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
    "ListExports": ["s3:ListBucket"],
    "ListUnfinishedExports": ["s3:ListBucketMultipartUploads"],
}


def _bucket(translated: dict[str, Any], **parameters: str) -> dict[str, Any]:
    resource: dict[str, Any] = resolved(translated, **parameters)["BackupBucket"]
    return resource


def _by_sid(translated: dict[str, Any], **parameters: str) -> dict[str, dict[str, Any]]:
    role = resolved(translated, **parameters)["ActionsFunctionRole"]
    return {s["Sid"]: s for s in statements(role) if "Sid" in s}


# --- the bucket the stack creates ----------------------------------------------------------------


def test_the_bucket_is_versioned_private_owner_enforced_and_outlives_the_stack(translated: dict[str, Any]) -> None:
    bucket = _bucket(translated)
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = bucket["Properties"]
    assert "BucketName" not in properties, "CloudFormation names it: bucket names are global"
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_without_a_customer_key_the_bucket_is_encrypted_with_s3_managed_keys(translated: dict[str, Any]) -> None:
    encryption = _bucket(translated)["Properties"]["BucketEncryption"]
    [rule] = encryption["ServerSideEncryptionConfiguration"]
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}


def test_a_customer_key_encrypts_the_bucket_with_a_bucket_key_and_the_role_may_use_it(
    translated: dict[str, Any],
) -> None:
    encryption = _bucket(translated, KmsKeyArn=CUSTOMER_KEY)["Properties"]["BucketEncryption"]
    assert encryption == {
        "ServerSideEncryptionConfiguration": [
            {
                "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": CUSTOMER_KEY},
                "BucketKeyEnabled": True,
            }
        ]
    }
    # SSE-KMS: PutObject and CreateMultipartUpload need GenerateDataKey, GetObject and UploadPart Decrypt
    use_key = _by_sid(translated, KmsKeyArn=CUSTOMER_KEY)["UseCustomerKey"]
    assert (set(use_key["Action"]), use_key["Resource"]) == ({"kms:Decrypt", "kms:GenerateDataKey"}, CUSTOMER_KEY)


def test_exports_move_to_glacier_instant_retrieval_and_unfinished_uploads_are_aborted(
    translated: dict[str, Any],
) -> None:
    [rule] = _bucket(translated, BackupTransitionDays="45")["Properties"]["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["Prefix"]) == ("Enabled", "llmobs-actions/")
    assert rule["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": "45"}]
    assert rule["NoncurrentVersionTransitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": "45"}]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert not {"ExpirationInDays", "NoncurrentVersionExpiration"} & set(rule), "backups are never deleted"
    other = _bucket(translated, BackupPrefix="exports/llmobs/")["Properties"]["LifecycleConfiguration"]["Rules"][0]
    assert other["Prefix"] == "exports/llmobs/"
    assert other["Transitions"][0]["TransitionInDays"] == "30"  # the default


def test_the_bucket_refuses_requests_without_tls(translated: dict[str, Any]) -> None:
    policy = resolved(translated)["BackupBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "BackupBucket"}
    [deny] = policy["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Resource"] == [BUCKET_ARN, {"Fn::Sub": "${BackupBucket.Arn}/*"}]  # the bucket and every object
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_bucket_is_the_outputs_and_the_backups_parameter_groups(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    output = translated["Outputs"]["BackupBucketName"]["Value"]
    assert output == {"Fn::If": ["CreateBackupBucket", {"Ref": "BackupBucket"}, {"Ref": "BackupBucketName"}]}
    groups = sam_template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(sam_template["Parameters"]), "every parameter in one group, once"


# --- an existing bucket ----------------------------------------------------------------------------


def test_an_existing_bucket_is_used_as_it_is_named(translated: dict[str, Any]) -> None:
    resources = resolved(translated, BackupBucketName=EXISTING_BUCKET, KmsKeyArn=CUSTOMER_KEY)
    assert not {"BackupBucket", "BackupBucketPolicy"} & set(resources), "not ours to configure"
    variables = resources["ActionsFunction"]["Properties"]["Environment"]["Variables"]
    assert (variables["BACKUP_BUCKET"], variables["BACKUP_PREFIX"]) == (EXISTING_BUCKET, "llmobs-actions/")
    granted = {s["Sid"]: s for s in statements(resources["ActionsFunctionRole"]) if "Sid" in s}
    assert granted["WriteAndReadExports"]["Resource"] == f"arn:aws:s3:::{EXISTING_BUCKET}/llmobs-actions/*"
    assert granted["ListExports"]["Resource"] == f"arn:aws:s3:::{EXISTING_BUCKET}"
    assert granted["ListUnfinishedExports"]["Resource"] == f"arn:aws:s3:::{EXISTING_BUCKET}"


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("", True),
        (EXISTING_BUCKET, True),
        ("backups.example.com", True),
        ("ab", False),
        ("Team-Backups", False),
        ("-backups", False),
        ("backups-", False),
        ("arn:aws:s3:::team-backups", False),
        ("b" * 64, False),
    ],
)
def test_the_bucket_name_parameter_takes_s3_bucket_names_only(
    sam_template: dict[str, Any], name: str, allowed: bool
) -> None:
    spec = sam_template["Parameters"]["BackupBucketName"]
    assert bool(re.fullmatch(spec["AllowedPattern"], name)) is allowed
    assert spec["Default"] == ""


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [
        ("llmobs-actions/", True),
        ("exports/llmobs_actions/", True),
        ("llmobs-actions", False),  # no trailing "/"
        ("/llmobs-actions/", False),  # a leading "/"
        ("exports//llmobs/", False),
        ("", False),
        ("/", False),
        ("exports/*/", False),  # IAM would read it as a wildcard
        ("exports/?/", False),
        ("has space/", False),
    ],
)
def test_the_prefix_ends_with_a_slash_never_starts_with_one_and_holds_no_wildcard(
    sam_template: dict[str, Any], prefix: str, allowed: bool
) -> None:
    spec = sam_template["Parameters"]["BackupPrefix"]
    fits = bool(re.fullmatch(spec["AllowedPattern"], prefix)) and spec["MinLength"] <= len(prefix) <= spec["MaxLength"]
    assert fits is allowed
    assert spec["Default"] == "llmobs-actions/"
    assert re.fullmatch(spec["AllowedPattern"], spec["Default"])


def test_the_transition_is_at_least_a_day(sam_template: dict[str, Any]) -> None:
    spec = sam_template["Parameters"]["BackupTransitionDays"]
    assert (spec["Type"], spec["Default"], spec["MinValue"]) == ("Number", 30, 1)


# --- the function ---------------------------------------------------------------------------------


def test_the_function_is_told_the_bucket_the_prefix_and_the_queue_continuations_go_to(
    translated: dict[str, Any],
) -> None:
    variables = resolved(translated, BackupPrefix="exports/")["ActionsFunction"]["Properties"]["Environment"]
    assert variables["Variables"]["BACKUP_BUCKET"] == {"Ref": "BackupBucket"}
    assert variables["Variables"]["BACKUP_PREFIX"] == "exports/"
    assert variables["Variables"]["ACTIONS_QUEUE_URL"] == {"Ref": "ActionsQueue"}


@pytest.mark.parametrize("parameters", [{}, {"BackupBucketName": EXISTING_BUCKET}], ids=["created", "existing"])
def test_the_role_reaches_the_bucket_under_the_prefix_only(
    translated: dict[str, Any], parameters: dict[str, str]
) -> None:
    granted = _by_sid(translated, BackupPrefix="exports/llmobs/", **parameters)
    bucket = f"arn:aws:s3:::{EXISTING_BUCKET}" if parameters else BUCKET_ARN
    objects = f"{bucket}/exports/llmobs/*" if parameters else {"Fn::Sub": "${BackupBucket.Arn}/exports/llmobs/*"}
    s3_statements = [s for s in granted.values() if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert {s["Sid"]: as_list(s["Action"]) for s in s3_statements} == S3_GRANTS, "no other S3 action, no s3:*"
    assert granted["WriteAndReadExports"]["Resource"] == objects
    assert granted["ListExports"]["Resource"] == bucket
    assert granted["ListExports"]["Condition"] == {"StringLike": {"s3:prefix": "exports/llmobs/*"}}
    # No s3:prefix condition key exists for ListBucketMultipartUploads: one would deny every call.
    assert granted["ListUnfinishedExports"]["Resource"] == bucket
    assert "Condition" not in granted["ListUnfinishedExports"]
    for statement in s3_statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in as_list(statement["Resource"])


def test_the_role_may_send_continuations_to_the_actions_queue_only(translated: dict[str, Any]) -> None:
    continuation = _by_sid(translated)["ContinueLongExports"]
    assert continuation["Action"] == "sqs:SendMessage"
    assert continuation["Resource"] == {"Fn::GetAtt": ["ActionsQueue", "Arn"]}


# --- the backup schedule --------------------------------------------------------------------------


def test_the_backup_schedule_exists_only_when_asked_for_and_shares_the_scheduler_role(
    translated: dict[str, Any],
) -> None:
    assert "BackupSchedule" not in resolved(translated)
    resources = resolved(translated, **BACKUP_SCHEDULE)
    assert ("SchedulerRole" in resources, "ActionsSchedule" in resources, "RetentionSchedule" in resources) == (
        True,
        False,
        False,
    )
    schedule = resources["BackupSchedule"]["Properties"]
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == ("cron(0 4 * * ? *)", "UTC")
    target = schedule["Target"]
    assert target["Input"] == BACKUP_SCHEDULE["BackupScheduledAction"]
    assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert target["Arn"] == {"Fn::GetAtt": ["ActionsQueue", "Arn"]}
    queue_policy = resources["ActionsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {"AWS": {"Fn::GetAtt": ["SchedulerRole", "Arn"]}} in [s["Principal"] for s in queue_policy]


def test_the_three_schedules_are_alike_but_for_what_they_send(translated: dict[str, Any]) -> None:
    resources = resolved(
        translated,
        ScheduleExpression="cron(0 3 * * ? *)",
        ScheduledAction='{"action":"clone_dataset"}',
        RetentionScheduleExpression="cron(30 3 * * ? *)",
        RetentionScheduledAction='{"action":"prune_datasets"}',
        ScheduleTimezone="Europe/Paris",
        **BACKUP_SCHEDULE,
    )
    schedules = [resources[name]["Properties"] for name in ("ActionsSchedule", "RetentionSchedule", "BackupSchedule")]

    def shape(schedule: dict[str, Any]) -> dict[str, Any]:
        target = {k: v for k, v in schedule["Target"].items() if k != "Input"}
        rest = {k: v for k, v in schedule.items() if k not in ("Description", "ScheduleExpression", "Target")}
        return rest | {"Target": target}

    assert shape(schedules[0]) == shape(schedules[1]) == shape(schedules[2])
    assert schedules[2]["ScheduleExpressionTimezone"] == "Europe/Paris"
    sam = load(TEMPLATE)
    assert sam["Resources"]["BackupSchedule"]["Metadata"] == sam["Resources"]["RetentionSchedule"]["Metadata"]


def test_a_backup_schedule_without_an_action_is_refused_before_deploying(translated: dict[str, Any]) -> None:
    rule = translated["Rules"]["BackupScheduleNeedsAnAction"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BackupScheduleExpression"}, ""]}]}
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BackupScheduledAction"}, ""]}]}


# --- the local stack ------------------------------------------------------------------------------


def test_the_local_bucket_is_versioned_and_encrypted_as_the_template_says(
    aws: Aws, emulator: DatadogEmulator, translated: dict[str, Any]
) -> None:
    properties = _bucket(translated)["Properties"]
    s3 = boto3.client("s3")
    assert aws.bucket_name == f"{aws.values.queue_name}-backups"
    versioning = s3.get_bucket_versioning(Bucket=aws.bucket_name)
    assert versioning["Status"] == properties["VersioningConfiguration"]["Status"]
    [rule] = s3.get_bucket_encryption(Bucket=aws.bucket_name)["ServerSideEncryptionConfiguration"]["Rules"]
    expected = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == expected["ServerSideEncryptionByDefault"]

    environment = function_environment(aws, emulator)
    assert environment["BACKUP_BUCKET"] == aws.bucket_name
    assert environment["BACKUP_PREFIX"] == load(TEMPLATE)["Parameters"]["BackupPrefix"]["Default"]
    assert environment["BACKUP_PREFIX"] == aws.values.backup_prefix
    assert environment["ACTIONS_QUEUE_URL"] == aws.queue_url


def test_with_an_existing_bucket_named_the_local_stack_plays_that_bucket(aws: Aws) -> None:
    reset_aws(aws.endpoint)
    resources = create_resources(aws.endpoint, visibility_timeout=1, BackupBucketName=EXISTING_BUCKET)
    assert resources.bucket_name == EXISTING_BUCKET
    assert boto3.client("s3").head_bucket(Bucket=EXISTING_BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (resources.values.backup_bucket_versioning, resources.values.backup_bucket_encryption) == ("", {})


def test_the_local_values_follow_the_template_for_a_customer_key_and_another_prefix(
    translated: dict[str, Any],
) -> None:
    # stack_values() itself builds queues with SQS-managed SSE only: the conversion is checked on its own
    encryption = _bucket(translated, KmsKeyArn=CUSTOMER_KEY)["Properties"]["BucketEncryption"]
    assert s3_api_encryption(encryption) == {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": CUSTOMER_KEY},
                "BucketKeyEnabled": True,
            }
        ]
    }
    values = stack_values(BackupPrefix="exports/")
    assert (values.backup_prefix, values.function_environment["BACKUP_PREFIX"]) == ("exports/", "exports/")
