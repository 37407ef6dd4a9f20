"""template.yaml as data: read CloudFormation YAML, resolve it for a set of parameters, and the values the
local stack builds its queues, rule, table, backup bucket and poller from (so the two cannot drift)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt, !Sub, ... as their long forms ({"Ref": ...}, {"Fn::GetAtt": [...]})."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    # !Condition is the one short form whose long form has no "Fn::" (CloudFormation's {"Condition": name}).
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=CloudFormationLoader)  # noqa: S506 (a SafeLoader subclass)


_NO_VALUE = object()


class Resolver:
    """Evaluates Ref (to parameters), Fn::If, Fn::Equals/Not/And/Or, Fn::FindInMap, Fn::Select and Fn::Split
    for given parameters.

    References to resources stay symbolic ({"Ref": "X"}, {"Fn::GetAtt": [...]}), so assertions can name them.
    """

    def __init__(
        self, template: dict[str, Any], overrides: dict[str, str] | None = None, stack_name: str = "llmobs-actions-dev"
    ) -> None:
        self.template = template
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
        } | (overrides or {})
        self.pseudo = {
            "AWS::StackName": stack_name,
            "AWS::Region": "us-east-1",
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
        }
        self.conditions = {name: self._truth(body) for name, body in template.get("Conditions", {}).items()}

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this parameter set creates, fully resolved."""
        return {
            name: self.resolve(resource)
            for name, resource in self.template["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref" and value == "AWS::NoValue":
                return _NO_VALUE
            if key == "Ref" and value in self.parameters:
                return self.parameters[value]
            if key == "Fn::If":
                condition, then, otherwise = value
                return self.resolve(then if self.conditions[condition] else otherwise)
            if key == "Fn::Sub" and isinstance(value, str):
                return self._substitute(value)
            if key == "Fn::FindInMap":
                mapping, first, second = (self.resolve(part) for part in value)
                return self.template["Mappings"][mapping][str(first)][second]
            if key == "Fn::Split":
                separator, text = (self.resolve(part) for part in value)
                return text.split(separator) if isinstance(text, str) else node
            if key == "Fn::Select":
                index, items = (self.resolve(part) for part in value)
                return items[int(index)] if isinstance(items, list) else node
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def _substitute(self, text: str) -> Any:
        known = self.parameters | self.pseudo
        substituted = re.sub(r"\$\{([^}]+)\}", lambda match: known.get(match.group(1), match.group(0)), text)
        # What refers to a resource (${Bucket.Arn}) stays symbolic, the parameters around it resolved.
        return {"Fn::Sub": substituted} if re.search(r"\$\{[^}]+\}", substituted) else substituted

    def _truth(self, body: Any) -> bool:
        ((key, value),) = body.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(v) for v in value)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(value[0])
        if key == "Fn::And":
            return all(self._truth(v) for v in value)
        if key == "Fn::Or":
            return any(self._truth(v) for v in value)
        if key == "Condition":
            return self._truth(self.template["Conditions"][value])
        raise ValueError(f"unsupported condition {key}")


@dataclass(frozen=True)
class StackValues:
    """What the local stack takes from template.yaml for one set of parameters."""

    queue_name: str
    dead_letter_queue_name: str
    queue_attributes: dict[str, str]
    dead_letter_queue_attributes: dict[str, str]
    max_receive_count: int
    maximum_message_size: int
    batch_size: int
    batching_window_seconds: int
    function_timeout_seconds: int
    async_maximum_retry_attempts: int  # EventInvokeConfig: Lambda's retries of an asynchronous invocation
    event_bus_name: str
    event_pattern: dict[str, Any]
    rule_retry_policy: dict[str, Any]
    table_key_schema: list[dict[str, str]]
    table_attribute_definitions: list[dict[str, str]]
    table_ttl_attribute: str
    function_environment: dict[str, str]  # the variables whose values the template spells out
    backup_prefix: str
    backup_bucket_name: str  # BackupBucketName: an existing bucket; "" when the stack creates (and names) one
    backup_bucket_versioning: str  # the created bucket's VersioningConfiguration Status; "" when none is created
    backup_bucket_encryption: dict[str, Any]  # its default encryption as the S3 API spells it; {} when none


def stack_values(stack_name: str = "llmobs-actions-dev", **parameters: str) -> StackValues:
    resolver = Resolver(load(TEMPLATE), parameters, stack_name)
    resources = resolver.resources()
    queue, dlq = resources["ActionsQueue"]["Properties"], resources["ActionsDeadLetterQueue"]["Properties"]
    function = resources["ActionsFunction"]["Properties"]
    source = function["Events"]["Actions"]["Properties"]
    rule = resources["ActionsRule"]["Properties"]
    table = resources["IdempotencyTable"]["Properties"]
    bucket = resources.get("BackupBucket", {}).get("Properties", {})
    return StackValues(
        queue_name=queue["QueueName"],
        dead_letter_queue_name=dlq["QueueName"],
        queue_attributes={
            "VisibilityTimeout": str(queue["VisibilityTimeout"]),
            "MessageRetentionPeriod": str(queue["MessageRetentionPeriod"]),
            "SqsManagedSseEnabled": str(queue["SqsManagedSseEnabled"]).lower(),
            "MaximumMessageSize": str(queue["MaximumMessageSize"]),
        },
        dead_letter_queue_attributes={
            "MessageRetentionPeriod": str(dlq["MessageRetentionPeriod"]),
            "SqsManagedSseEnabled": str(dlq["SqsManagedSseEnabled"]).lower(),
            "MaximumMessageSize": str(dlq["MaximumMessageSize"]),
        },
        max_receive_count=int(queue["RedrivePolicy"]["maxReceiveCount"]),
        maximum_message_size=int(dlq["MaximumMessageSize"]),
        batch_size=int(source["BatchSize"]),
        batching_window_seconds=int(source["MaximumBatchingWindowInSeconds"]),
        function_timeout_seconds=int(function["Timeout"]),
        async_maximum_retry_attempts=int(function["EventInvokeConfig"]["MaximumRetryAttempts"]),
        event_bus_name=rule["EventBusName"],
        event_pattern=rule["EventPattern"],
        rule_retry_policy=rule["Targets"][0]["RetryPolicy"],
        table_key_schema=table["KeySchema"],
        table_attribute_definitions=table["AttributeDefinitions"],
        table_ttl_attribute=table["TimeToLiveSpecification"]["AttributeName"],
        function_environment={k: v for k, v in function["Environment"]["Variables"].items() if isinstance(v, str)},
        backup_prefix=resolver.parameters["BackupPrefix"],
        backup_bucket_name=resolver.parameters["BackupBucketName"],
        backup_bucket_versioning=bucket.get("VersioningConfiguration", {}).get("Status", ""),
        backup_bucket_encryption=s3_api_encryption(bucket.get("BucketEncryption")),
    )


def s3_api_encryption(cloudformation: dict[str, Any] | None) -> dict[str, Any]:
    """AWS::S3::Bucket's BucketEncryption as PutBucketEncryption takes it."""
    if not cloudformation:
        return {}
    rules = [
        {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
        | ({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})
        for rule in cloudformation["ServerSideEncryptionConfiguration"]
    ]
    return {"Rules": rules}
