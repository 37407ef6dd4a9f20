"""template.yaml: validated by SAM and cfn-lint, and the rules lint cannot check asserted on the translation."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from llmobs_actions.settings import ENVIRONMENT_VARIABLES, REQUIRED_ENVIRONMENT_VARIABLES
from tests.template.conftest import TEMPLATE, resolved, sam_environment

EXISTING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:datadog-keys-AbCdEf"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CUSTOMER_KEY = "arn:aws:kms:us-east-1:123456789012:key/9876fedc-ba98-7654-3210-fedcba987654"
EXISTING_BACKUP_BUCKET = "team-dataset-backups"
# Every way a deployment can look: defaults, an existing secret with its own KMS key, a nightly schedule,
# nightly backups to a bucket of one's own.
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "existing-secret-with-kms": {"DatadogSecretArn": EXISTING_SECRET, "DatadogSecretKmsKeyArn": KMS_KEY},
    "scheduled": {
        "ScheduleExpression": "cron(0 3 * * ? *)",
        "ScheduledAction": '{"action":"delete_experiments","experiment_ids":["e1"]}',
        "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:oncall",
    },
    "customer-key": {"KmsKeyArn": CUSTOMER_KEY, "ReservedConcurrency": "5"},
    "retention-only": {
        "RetentionScheduleExpression": "cron(30 3 * * ? *)",
        "RetentionScheduledAction": '{"action":"prune_datasets","project_id":"p","name_prefix":"golden-",'
        '"older_than_days":30}',
    },
    "backup-to-existing-bucket": {
        "BackupBucketName": EXISTING_BACKUP_BUCKET,
        "BackupPrefix": "exports/llmobs/",
        "BackupScheduleExpression": "cron(0 4 * * ? *)",
        "BackupScheduledAction": '{"action":"backup_datasets","project_id":"p"}',
    },
}
# For the dataset export actions: the bucket, the prefix, the queue a long export continues through.
BACKUP_VARIABLES = {"BACKUP_BUCKET", "BACKUP_PREFIX", "ACTIONS_QUEUE_URL"}


def run_sam(sam_bin: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (the SAM CLI of our own virtualenv)
        [str(sam_bin / "sam"), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=TEMPLATE.parent,
        env=sam_environment(tmp_path),
    )


def of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def statements(policy_holder: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s for policy in policy_holder["Properties"].get("Policies", []) for s in policy["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the SAM CLI's own checks -----------------------------------------------------------------


def test_sam_validate_accepts_the_template(sam_bin: Path, tmp_path: Path) -> None:
    """The translator catches what lint misses, e.g. an unknown property in an SQS `Events:` entry."""
    empty_config = tmp_path / "samconfig.toml"
    empty_config.write_text("version = 0.1\n")  # samconfig turns lint on; this run is the translator alone
    result = run_sam(sam_bin, tmp_path, "validate", "--config-file", str(empty_config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_validate_lint_accepts_the_template(sam_bin: Path, tmp_path: Path) -> None:
    result = run_sam(sam_bin, tmp_path, "validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


# --- the function ------------------------------------------------------------------------------


def test_the_function_runs_our_handler_on_python313_arm64_with_tracing(translated: dict[str, Any]) -> None:
    function = resolved(translated)["ActionsFunction"]["Properties"]
    assert (function["Runtime"], function["Architectures"]) == ("python3.13", ["arm64"])
    assert function["TracingConfig"] == {"Mode": "Active"}
    module_name, function_name = function["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module_name), function_name))
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "ActionsFunctionLogGroup"}}
    assert function["Role"] == {"Fn::GetAtt": ["ActionsFunctionRole", "Arn"]}


def test_memory_and_timeout_come_from_parameters(translated: dict[str, Any]) -> None:
    function = resolved(translated, FunctionMemorySize="512", FunctionTimeout="120")["ActionsFunction"]
    assert (function["Properties"]["MemorySize"], function["Properties"]["Timeout"]) == ("512", "120")


def test_every_variable_the_code_requires_is_set_and_every_variable_set_is_read(
    translated: dict[str, Any],
) -> None:
    variables = resolved(translated)["ActionsFunction"]["Properties"]["Environment"]["Variables"]
    assert set(REQUIRED_ENVIRONMENT_VARIABLES) <= set(variables)
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    assert set(variables) - powertools <= set(ENVIRONMENT_VARIABLES), "the template sets a variable nobody reads"
    assert set(variables) >= BACKUP_VARIABLES
    assert powertools <= set(variables)
    assert {"DD_SITE", "IDEMPOTENCY_TABLE"} <= set(variables)


def test_the_secret_is_never_a_literal_in_the_environment(translated: dict[str, Any]) -> None:
    for parameters in VARIANTS.values():
        variables = resolved(translated, **parameters)["ActionsFunction"]["Properties"]["Environment"]["Variables"]
        assert not any(re.search(r"key", name, re.IGNORECASE) for name in variables), "keys live in the secret only"
        assert variables["DD_SECRET_ID"] in ({"Ref": "DatadogSecret"}, EXISTING_SECRET)


def test_a_created_secret_holds_a_placeholder_never_a_key(translated: dict[str, Any]) -> None:
    secret = resolved(translated)["DatadogSecret"]["Properties"]
    assert secret["SecretString"] == '{"api_key": "", "app_key": ""}'
    assert "DatadogSecret" not in resolved(translated, DatadogSecretArn=EXISTING_SECRET)


# --- the SQS event source ----------------------------------------------------------------------


def test_the_event_source_reports_partial_failures_and_caps_concurrency(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    [mapping] = of_type(resolved(translated), "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["ActionsQueue", "Arn"]}
    assert properties["ScalingConfig"]["MaximumConcurrency"] == "2"
    assert properties["BatchSize"] == "10"
    concurrency = sam_template["Parameters"]["MaxConcurrency"]
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (2, 1000)


def test_visibility_is_at_least_six_function_timeouts_plus_the_batching_window(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    for timeout in sam_template["Parameters"]["FunctionTimeout"]["AllowedValues"]:
        resources = resolved(translated, FunctionTimeout=timeout)
        [mapping] = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        window = mapping["Properties"]["MaximumBatchingWindowInSeconds"]
        visibility = resources["ActionsQueue"]["Properties"]["VisibilityTimeout"]
        assert visibility >= 6 * int(timeout) + window, f"timeout {timeout}: visibility {visibility}"
        assert visibility <= 43_200  # SQS's maximum


def test_retryable_messages_reach_the_dlq_after_at_least_five_receives(
    translated: dict[str, Any], sam_template: dict[str, Any]
) -> None:
    redrive = resolved(translated)["ActionsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["ActionsDeadLetterQueue", "Arn"]}
    assert int(redrive["maxReceiveCount"]) >= 5
    assert sam_template["Parameters"]["MaxReceiveCount"]["MinValue"] >= 5


def test_queues_are_encrypted_and_the_dlq_keeps_messages_fourteen_days(translated: dict[str, Any]) -> None:
    resources = resolved(translated)
    for queue in of_type(resources, "AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    dlq = resources["ActionsDeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    allow = dlq["RedriveAllowPolicy"]
    assert allow["redrivePermission"] == "byQueue"
    # the ARN is spelled out (a GetAtt would be circular): it must name the queue ActionsQueue really gets
    queue_name = resources["ActionsQueue"]["Properties"]["QueueName"]
    assert allow["sourceQueueArns"] == [f"arn:aws:sqs:us-east-1:123456789012:{queue_name}"]


def test_direct_invocations_are_retried_then_dead_lettered(translated: dict[str, Any]) -> None:
    [config] = of_type(resolved(translated), "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    assert config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["ActionsDeadLetterQueue", "Arn"]
    }


# --- EventBridge ---------------------------------------------------------------------------------


def test_the_rule_forwards_matching_events_to_the_queue_with_retries_and_a_dlq(translated: dict[str, Any]) -> None:
    rule = resolved(translated, EventBusName="evals-bus")["ActionsRule"]["Properties"]
    assert rule["EventBusName"] == "evals-bus"
    assert rule["EventPattern"] == {"source": ["llmobs.actions"], "detail-type": ["LLMObs Action"]}
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ActionsQueue", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ActionsDeadLetterQueue", "Arn"]}


def test_only_the_rule_and_the_scheduler_role_are_let_into_the_queue(translated: dict[str, Any]) -> None:
    for name, parameters in VARIANTS.items():
        resources = resolved(translated, **parameters)
        policy = resources["ActionsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        allowed = [s for s in policy if s["Effect"] == "Allow"]
        expected = [{"Service": "events.amazonaws.com"}]
        if name in ("scheduled", "retention-only", "backup-to-existing-bucket"):
            expected.append({"AWS": {"Fn::GetAtt": ["SchedulerRole", "Arn"]}})
        assert [s["Principal"] for s in allowed] == expected
        assert allowed[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ActionsRule", "Arn"]}}}
        dlq_policy = resources["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        assert all("aws:SourceArn" in s["Condition"]["ArnEquals"] for s in dlq_policy if s["Effect"] == "Allow")


@pytest.mark.parametrize("queue", ["ActionsQueue", "ActionsDeadLetterQueue"])
def test_both_queues_refuse_requests_without_tls(translated: dict[str, Any], queue: str) -> None:
    policies = of_type(resolved(translated), "AWS::SQS::QueuePolicy").values()
    [policy] = [p for p in policies if p["Properties"]["Queues"] == [{"Ref": queue}]]
    [deny] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert (deny["Principal"], deny["Action"]) == ("*", "sqs:*")
    assert deny["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_schedule_exists_only_when_asked_for_with_retries_and_a_dlq(translated: dict[str, Any]) -> None:
    assert "ActionsSchedule" not in resolved(translated)
    schedule = resolved(translated, **VARIANTS["scheduled"])["ActionsSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["ActionsQueue", "Arn"]}
    assert target["Input"] == VARIANTS["scheduled"]["ScheduledAction"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ActionsDeadLetterQueue", "Arn"]}


def test_both_ends_of_the_lifecycle_run_from_one_stack(translated: dict[str, Any]) -> None:
    both = VARIANTS["scheduled"] | VARIANTS["retention-only"]
    resources = resolved(translated, **both)
    snapshot, retention = (resources[name]["Properties"] for name in ("ActionsSchedule", "RetentionSchedule"))
    assert (snapshot["ScheduleExpression"], retention["ScheduleExpression"]) == (
        "cron(0 3 * * ? *)",
        "cron(30 3 * * ? *)",
    )
    assert retention["Target"]["Input"] == VARIANTS["retention-only"]["RetentionScheduledAction"]
    assert retention["Target"]["Arn"] == snapshot["Target"]["Arn"] == {"Fn::GetAtt": ["ActionsQueue", "Arn"]}
    assert retention["Target"]["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert retention["Target"]["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ActionsDeadLetterQueue", "Arn"]}
    assert retention["ScheduleExpressionTimezone"] == snapshot["ScheduleExpressionTimezone"]

    alone = resolved(translated, **VARIANTS["retention-only"])
    assert ("RetentionSchedule" in alone, "ActionsSchedule" in alone, "SchedulerRole" in alone) == (True, False, True)
    assert "RetentionSchedule" not in resolved(translated)


def test_a_retention_schedule_without_an_action_is_refused_before_deploying(translated: dict[str, Any]) -> None:
    rule = translated["Rules"]["RetentionScheduleNeedsAnAction"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RetentionScheduleExpression"}, ""]}]}
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RetentionScheduledAction"}, ""]}]}


# --- idempotency table, alarms, outputs ----------------------------------------------------------


def test_the_idempotency_table_is_on_demand_with_ttl_and_point_in_time_recovery(translated: dict[str, Any]) -> None:
    table = resolved(translated)["IdempotencyTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_alarms_watch_the_dlq_the_function_the_queue_age_throttles_and_key_failures(translated: dict[str, Any]) -> None:
    for name, parameters in VARIANTS.items():
        alarms = of_type(resolved(translated, **parameters), "AWS::CloudWatch::Alarm")
        watched = {
            (a["Properties"]["Namespace"], a["Properties"]["MetricName"], _dimension(a, "error_class"))
            for a in alarms.values()
        }
        assert watched == {
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", None),
            ("AWS/Lambda", "Errors", None),
            ("AWS/Lambda", "Throttles", None),
            ("AWS/SQS", "ApproximateAgeOfOldestMessage", None),
            ("LLMObsActions", "ActionFailed", "auth"),
            ("LLMObsActions", "ActionFailed", "configuration"),
        }
        dlq_alarm = alarms["DeadLetterQueueAlarm"]["Properties"]
        assert (dlq_alarm["Threshold"], dlq_alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert dlq_alarm["TreatMissingData"] == "notBreaching"
        for alarm in alarms.values():
            assert "Look at:" in alarm["Properties"]["AlarmDescription"], "each alarm says what to look at"
            actions = alarm["Properties"].get("AlarmActions")
            assert actions == ([VARIANTS["scheduled"]["AlarmTopicArn"]] if name == "scheduled" else None)


def test_the_key_failure_alarms_watch_the_metric_the_function_emits(translated: dict[str, Any]) -> None:
    """The dimensions Powertools writes for ActionFailed (service + error_class), as the template sets them."""
    from llmobs_actions.observability import METRICS_NAMESPACE, SERVICE_NAME

    function = resolved(translated)["ActionsFunction"]["Properties"]["Environment"]["Variables"]
    alarm = resolved(translated)["AuthFailuresAlarm"]["Properties"]
    assert alarm["Namespace"] == function["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert _dimension({"Properties": alarm}, "service") == function["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME


def _dimension(alarm: dict[str, Any], name: str) -> str | None:
    return next((d["Value"] for d in alarm["Properties"]["Dimensions"] if d["Name"] == name), None)


def test_the_log_group_keeps_logs_as_long_as_asked(translated: dict[str, Any]) -> None:
    group = resolved(translated, LogRetentionDays="14")["ActionsFunctionLogGroup"]["Properties"]
    assert group["RetentionInDays"] == "14"


def test_outputs_name_what_producers_and_operators_need(translated: dict[str, Any]) -> None:
    assert {
        "ActionsQueueUrl",
        "ActionsQueueArn",
        "ActionsDeadLetterQueueUrl",
        "ActionsDeadLetterQueueArn",
        "ActionsFunctionName",
        "ActionsRuleArn",
        "IdempotencyTableName",
        "DatadogSecretArn",
    } <= set(translated["Outputs"])


# --- least privilege -----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_iam_grants_nothing_on_wildcards_but_xray(translated: dict[str, Any], variant: str) -> None:
    resources = resolved(translated, **VARIANTS[variant])
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], f"{name}: managed policies grant on '*'"
        for statement in statements(role):
            actions = as_list(statement["Action"])
            assert not any("*" in action for action in actions), f"{name}: wildcard action {actions}"
            if "*" in as_list(statement["Resource"]):
                # Neither X-Ray nor Step Functions' task callbacks have a resource type to grant them on.
                assert (name, statement.get("Sid")) in {
                    ("ActionsFunctionRole", "XRayTraces"),
                    ("ActionsFunctionRole", "TaskCallbacks"),
                }
                assert set(actions) <= {
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "states:SendTaskSuccess",
                    "states:SendTaskFailure",
                }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_function_role_grants_each_action_on_its_one_resource(translated: dict[str, Any], variant: str) -> None:
    resources = resolved(translated, **VARIANTS[variant])
    granted: dict[str, list[Any]] = {}
    for statement in statements(resources["ActionsFunctionRole"]):
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    secret = (
        [EXISTING_SECRET, f"{EXISTING_SECRET}-??????"]
        if "DatadogSecretArn" in VARIANTS[variant]
        else [{"Ref": "DatadogSecret"}]
    )
    queue, dlq = {"Fn::GetAtt": ["ActionsQueue", "Arn"]}, {"Fn::GetAtt": ["ActionsDeadLetterQueue", "Arn"]}
    table = {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    if "BackupBucketName" in VARIANTS[variant]:
        bucket: Any = f"arn:aws:s3:::{EXISTING_BACKUP_BUCKET}"
        exports: Any = f"{bucket}/exports/llmobs/*"
    else:
        bucket, exports = {"Fn::GetAtt": ["BackupBucket", "Arn"]}, {"Fn::Sub": "${BackupBucket.Arn}/llmobs-actions/*"}
    expected = {
        "logs:CreateLogStream": [{"Fn::GetAtt": ["ActionsFunctionLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["ActionsFunctionLogGroup", "Arn"]}],
        "sqs:ReceiveMessage": [queue],
        "sqs:DeleteMessage": [queue],
        "sqs:GetQueueAttributes": [queue, dlq],
        "sqs:ChangeMessageVisibility": [queue],
        "sqs:GetQueueUrl": [queue],
        "sqs:SendMessage": [dlq, queue],  # dead letters; a long export's continuation
        "secretsmanager:GetSecretValue": secret,
        "dynamodb:GetItem": [table],
        "dynamodb:PutItem": [table],
        "dynamodb:UpdateItem": [table],
        "dynamodb:DeleteItem": [table],
        "s3:PutObject": [exports],
        "s3:GetObject": [exports],
        "s3:AbortMultipartUpload": [exports],
        "s3:ListMultipartUploadParts": [exports],
        "s3:ListBucket": [bucket],  # under the prefix only (a condition: test_backup_bucket.py)
        "s3:ListBucketMultipartUploads": [bucket],
        "events:PutEvents": ["arn:aws:events:us-east-1:123456789012:event-bus/default"],
        "states:SendTaskSuccess": ["*"],
        "states:SendTaskFailure": ["*"],
        "xray:PutTraceSegments": ["*"],
        "xray:PutTelemetryRecords": ["*"],
    }
    if "DatadogSecretKmsKeyArn" in VARIANTS[variant]:
        expected["kms:Decrypt"] = [KMS_KEY]
    if "KmsKeyArn" in VARIANTS[variant]:
        expected["kms:Decrypt"] = [CUSTOMER_KEY]
        expected["kms:GenerateDataKey"] = [CUSTOMER_KEY]
    assert granted == expected


@pytest.mark.parametrize(
    ("given", "resources"),
    [
        (EXISTING_SECRET, [EXISTING_SECRET, f"{EXISTING_SECRET}-??????"]),
        (
            "arn:aws:secretsmanager:eu-west-1:210987654321:secret:team/datadog",  # partial, another account
            [
                "arn:aws:secretsmanager:eu-west-1:210987654321:secret:team/datadog",
                "arn:aws:secretsmanager:eu-west-1:210987654321:secret:team/datadog-??????",
            ],
        ),
        ("team/datadog", ["arn:aws:secretsmanager:us-east-1:123456789012:secret:team/datadog-??????"]),
    ],
    ids=["full-arn", "partial-arn", "name"],
)
def test_an_existing_secret_given_any_way_gets_an_iam_resource_that_matches_it(
    translated: dict[str, Any], given: str, resources: list[str]
) -> None:
    role = resolved(translated, DatadogSecretArn=given)["ActionsFunctionRole"]
    [statement] = [s for s in statements(role) if s.get("Sid") == "ReadDatadogKeys"]
    assert as_list(statement["Resource"]) == resources
    # AWS's rule: a full ARN ends in "-" and six characters; "-??????" matches exactly those
    assert all(r.startswith("arn:aws:secretsmanager:") for r in resources)


def test_a_reserved_concurrency_caps_every_invocation_when_asked_for(translated: dict[str, Any]) -> None:
    assert "ReservedConcurrentExecutions" not in resolved(translated)["ActionsFunction"]["Properties"]
    function = resolved(translated, ReservedConcurrency="5")["ActionsFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == "5"


@pytest.mark.parametrize("name", ["ActionsDeadLetterQueue", "IdempotencyTable", "DatadogSecret", "BackupBucket"])
def test_evidence_records_keys_and_backups_outlive_the_stack(translated: dict[str, Any], name: str) -> None:
    resource = resolved(translated)[name]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_a_customer_key_encrypts_queues_table_logs_secret_and_environment(translated: dict[str, Any]) -> None:
    resources = resolved(translated, KmsKeyArn=CUSTOMER_KEY)
    for queue in ("ActionsQueue", "ActionsDeadLetterQueue"):
        properties = resources[queue]["Properties"]
        assert properties["KmsMasterKeyId"] == CUSTOMER_KEY
        assert "SqsManagedSseEnabled" not in properties  # SQS takes one or the other
    assert resources["IdempotencyTable"]["Properties"]["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": CUSTOMER_KEY,
    }
    assert resources["ActionsFunctionLogGroup"]["Properties"]["KmsKeyId"] == CUSTOMER_KEY
    assert resources["DatadogSecret"]["Properties"]["KmsKeyId"] == CUSTOMER_KEY
    assert resources["ActionsFunction"]["Properties"]["KmsKeyArn"] == CUSTOMER_KEY
    scheduled = resolved(translated, KmsKeyArn=CUSTOMER_KEY, **VARIANTS["scheduled"])["SchedulerRole"]
    assert {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": CUSTOMER_KEY} in (
        statements(scheduled)
    )


def test_without_a_customer_key_nothing_names_one(translated: dict[str, Any]) -> None:
    resources = resolved(translated)
    for queue in ("ActionsQueue", "ActionsDeadLetterQueue"):
        assert resources[queue]["Properties"]["SqsManagedSseEnabled"] is True
        assert "KmsMasterKeyId" not in resources[queue]["Properties"]
    assert resources["IdempotencyTable"]["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    for name in ("ActionsFunctionLogGroup", "DatadogSecret"):
        assert "KmsKeyId" not in resources[name]["Properties"]
    assert "KmsKeyArn" not in resources["ActionsFunction"]["Properties"]


def test_the_scheduler_role_may_only_send_to_the_queues(translated: dict[str, Any]) -> None:
    role = resolved(translated, **VARIANTS["scheduled"])["SchedulerRole"]
    [statement] = statements(role)  # and, with a customer key, use that key (above)
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ActionsQueue", "Arn"]},
        {"Fn::GetAtt": ["ActionsDeadLetterQueue", "Arn"]},
    ]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]


def test_samconfig_environments_deploy_with_valid_parameters(sam_template: dict[str, Any]) -> None:
    config = tomllib.loads((TEMPLATE.parent / "samconfig.toml").read_text())
    assert config["default"]["validate"]["parameters"]["lint"] is True
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    for environment in ("default", "prod"):
        assert config[environment]["build"]["parameters"] == {"cached": True, "parallel": True}
        overrides = dict(
            re.findall(r'(\w+)="([^"]*)"', config[environment]["deploy"]["parameters"]["parameter_overrides"])
        )
        for name, value in overrides.items():
            spec = sam_template["Parameters"][name]  # KeyError: an override of a parameter that does not exist
            allowed = [str(v) for v in spec.get("AllowedValues", [])]
            assert not allowed or value in allowed, f"{environment}: {name}={value} not in {allowed}"
            if "MinValue" in spec:
                assert spec["MinValue"] <= int(value) <= spec.get("MaxValue", 10**9)


def test_result_events_go_to_the_chosen_bus_only_and_can_be_turned_off(translated: dict[str, Any]) -> None:
    on = resolved(translated, ResultEventBusName="evals-results")
    assert on["ActionsFunction"]["Properties"]["Environment"]["Variables"]["RESULT_EVENT_BUS"] == "evals-results"
    [publish] = [s for s in statements(on["ActionsFunctionRole"]) if s.get("Sid") == "PublishResults"]
    assert (publish["Action"], publish["Resource"]) == (
        "events:PutEvents",
        "arn:aws:events:us-east-1:123456789012:event-bus/evals-results",
    )
    assert {"ResultSchemaRegistry", "ResultEventSchema"} <= set(on)
    off = resolved(translated, ResultEventBusName="")
    assert "RESULT_EVENT_BUS" not in off["ActionsFunction"]["Properties"]["Environment"]["Variables"]
    assert not [s for s in statements(off["ActionsFunctionRole"]) if s.get("Sid") == "PublishResults"]
    assert "ResultEventSchema" not in off


def test_the_registry_holds_the_published_result_schema(translated: dict[str, Any]) -> None:
    from llmobs_actions.results import result_event_json_schema

    schema = resolved(translated)["ResultEventSchema"]["Properties"]
    assert schema["Type"] == "JSONSchemaDraft4"
    assert json.loads(schema["Content"]) == result_event_json_schema()
    assert json.loads((TEMPLATE.parent / "schemas" / "result-event.v1.schema.json").read_text()) == (
        result_event_json_schema()
    )


def test_the_template_refuses_a_rule_that_would_take_result_events(sam_template: dict[str, Any]) -> None:
    [assertion] = sam_template["Rules"]["ResultEventsNeverBecomeActions"]["Assertions"]
    contains = assertion["Assert"]["Fn::Not"][0]["Fn::Contains"]
    assert contains == [["LLMObs Action Succeeded", "LLMObs Action Failed"], {"Ref": "EventDetailType"}]
