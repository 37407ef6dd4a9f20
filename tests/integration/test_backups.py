"""Backups outside Datadog, on the local stack: export_dataset, backup_datasets, import_dataset, and the export a
restore makes first. Every outcome is read in the bucket (what S3 holds), in the emulator (what Datadog
holds) and in the result event (what the producer learns); long work runs over several invocations.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from llmobs_actions import handler
from local.datadog_emulator import DatadogEmulator, Dataset, Fault
from local.poller import sqs_record
from tests.conftest import DATASET_ID, PROJECT_ID, Aws, FakeLambdaContext
from tests.integration.delivery import handle, published

PREFIX = "llmobs-actions/"


def records(count: int, size: int = 0) -> list[dict[str, Any]]:
    """Records as a dataset holds them; `size` bytes of incompressible text in each input, for big exports."""
    return [
        {
            "id": f"rec-{n:06d}",
            "input": {"question": f"question {n}", "context": secrets.token_hex(size // 2) if size else ""},
            "expected_output": f"answer {n}",
            "metadata": {"n": n},
        }
        for n in range(count)
    ]


def dataset_with(emulator: DatadogEmulator, name: str, held: list[dict[str, Any]]) -> Dataset:
    dataset = emulator.add_dataset(PROJECT_ID, name, records=0)
    dataset.replace_current(held, dataset.created_at)
    return dataset


def s3() -> Any:
    return boto3.client("s3")


def exported_records(aws: Aws, dataset: Dataset, version: int) -> list[dict[str, Any]]:
    key = f"{PREFIX}{PROJECT_ID}/{dataset.id}/v{version}/records.jsonl.gz"
    data = s3().get_object(Bucket=aws.bucket_name, Key=key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(data).splitlines() if line]


def manifest(aws: Aws, dataset: Dataset, version: int) -> dict[str, Any]:
    key = f"{PREFIX}{PROJECT_ID}/{dataset.id}/v{version}/manifest.json"
    document: dict[str, Any] = json.loads(s3().get_object(Bucket=aws.bucket_name, Key=key)["Body"].read())
    return document


def as_exported(record: dict[str, Any]) -> dict[str, Any]:
    """What an export keeps of a record: the records API has no tags field, so neither has the export."""
    return {field: record.get(field) for field in ("id", "input", "expected_output", "metadata")}


class ShortOfTime(FakeLambdaContext):
    """A Lambda context whose invocation runs short of time once the emulator has served `pages` record pages:
    long work must then stop and continue in a new invocation."""

    def __init__(self, emulator: DatadogEmulator, pages: int, path: str = "/records") -> None:
        super().__init__()
        self._emulator, self._pages, self._path = emulator, pages, path
        self._served_before = len(emulator.calls(path_contains=path))

    def get_remaining_time_in_millis(self) -> int:
        served = len(self._emulator.calls(path_contains=self._path)) - self._served_before
        return 60_000 if served < self._pages else 11_000  # under the 12 s an invocation keeps back


def run_to_the_end(aws: Aws, first: dict[str, Any], contexts: Iterator[FakeLambdaContext]) -> list[dict[str, Any]]:
    """Hand the message, then each continuation the function sends to the queue, to the function, as Lambda's
    event source mapping would; returns the continuation messages' attributes, in order."""
    handle(aws, next(contexts), first)
    continuations = []
    while messages := aws.sqs.receive_message(
        QueueUrl=aws.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"], MessageAttributeNames=["All"]
    ).get("Messages", []):
        [message] = messages
        continuations.append({k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()})
        handler.lambda_handler({"Records": [sqs_record(message, aws.queue_arn)]}, next(contexts))
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
        assert len(continuations) < 20, "the chain never ends"
    return continuations


def export(dataset: Dataset, **fields: object) -> dict[str, object]:
    return {"action": "export_dataset", "project_id": PROJECT_ID, "dataset_id": dataset.id} | fields


# --- export_dataset -------------------------------------------------------------------------------------


def test_an_export_writes_the_versions_records_and_a_manifest_that_tells_them_apart(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN a dataset of 2,500 records (three pages of the records API)
    held = records(2500)
    dataset = dataset_with(emulator, "golden-for-export", held)
    # WHEN it is exported
    assert handle(aws, context, export(dataset)) == {"batchItemFailures": []}
    # THEN the bucket holds every record once, as the records API gave it, and a manifest that matches
    version = dataset.current_version
    written = sorted(exported_records(aws, dataset, version), key=lambda r: r["id"])
    assert [as_exported(r) for r in written] == [as_exported(r) for r in held]
    told = manifest(aws, dataset, version)
    data = s3().get_object(Bucket=aws.bucket_name, Key=f"{PREFIX}{PROJECT_ID}/{dataset.id}/v{version}/records.jsonl.gz")
    assert told["sha256"] == hashlib.sha256(data["Body"].read()).hexdigest()
    assert (told["record_count"], told["version"], told["dataset_name"]) == (2500, version, "golden-for-export")
    assert (told["project_id"], told["project_name"], told["dataset_id"]) == (PROJECT_ID, "evals", dataset.id)
    assert told["format"] == "llmobs-actions.dataset-export.v1"
    [event] = published(aws)
    result = event["detail"]["result"]
    assert (
        result["manifest_uri"] == f"s3://{aws.bucket_name}/{PREFIX}{PROJECT_ID}/{dataset.id}/v{version}/manifest.json"
    )
    assert (result["record_count"], result["sha256"], result["already_there"]) == (2500, told["sha256"], False)


def test_a_version_already_in_the_bucket_with_the_same_digest_is_not_written_again(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    dataset = dataset_with(emulator, "exported-twice", records(50))
    handle(aws, context, export(dataset))
    published(aws)
    key = f"{PREFIX}{PROJECT_ID}/{dataset.id}/v{dataset.current_version}/records.jsonl.gz"

    handle(aws, context, export(dataset, idempotency_key="a second request"))

    versions = s3().list_object_versions(Bucket=aws.bucket_name, Prefix=key).get("Versions", [])
    assert len(versions) == 1, "the bucket is versioned: a second write would show"
    [event] = published(aws)
    assert event["detail"]["result"]["already_there"] is True


def test_a_long_export_continues_in_new_invocations_and_loses_or_repeats_no_record(
    aws: Aws, emulator: DatadogEmulator, function_env: None
) -> None:
    # GIVEN 3,000 records of 20 KB of random hex: a page of 1,000 compresses to a part of more than 8 MiB
    held = records(3000, size=20_000)
    dataset = dataset_with(emulator, "big", held)
    # WHEN every invocation runs short of time after one page of records
    contexts = (ShortOfTime(emulator, pages=1) for _ in range(20))  # each made when its invocation starts
    continuations = run_to_the_end(aws, export(dataset), contexts)
    # THEN it took several invocations, chained under one request, and every record is in the bucket once
    assert len(continuations) >= 2
    assert [c["continuation"] for c in continuations] == [str(n) for n in range(1, len(continuations) + 1)]
    assert all(c["source_message_id"] == continuations[0]["source_message_id"] for c in continuations)
    written = exported_records(aws, dataset, dataset.current_version)
    assert sorted(r["id"] for r in written) == [r["id"] for r in held]
    told = manifest(aws, dataset, dataset.current_version)
    key = f"{PREFIX}{PROJECT_ID}/{dataset.id}/v{dataset.current_version}/records.jsonl.gz"
    body = s3().get_object(Bucket=aws.bucket_name, Key=key)["Body"].read()
    assert (told["record_count"], told["sha256"]) == (3000, hashlib.sha256(body).hexdigest())
    # and the producer is told once, at the end
    [event] = published(aws)
    assert event["detail"]["result"]["record_count"] == 3000


def test_an_export_that_fails_half_way_resumes_after_its_last_part(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN an export whose third page of records meets a Datadog 500 (after two parts went to S3)
    held = records(3000, size=20_000)
    dataset = dataset_with(emulator, "interrupted", held)
    emulator.inject(Fault(status=500, times=1, path_contains="/records", skip=2))
    # WHEN it is retried (the same request: its key)
    request = export(dataset, idempotency_key="export-interrupted")
    assert handle(aws, context, request)["batchItemFailures"]
    pages_before = len(emulator.calls(path_contains="/records"))
    assert handle(aws, context, request, receive_count=2) == {"batchItemFailures": []}
    # THEN the retry read on from the last part (the third page only), and the bucket holds every record once
    assert len(emulator.calls(path_contains="/records")) - pages_before == 1
    written = exported_records(aws, dataset, dataset.current_version)
    assert sorted(r["id"] for r in written) == [r["id"] for r in held]


def test_an_export_without_a_bucket_is_a_configuration_failure(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKUP_BUCKET")
    handler.processor.cache_clear()
    response = handle(aws, context, export(emulator.live_dataset(DATASET_ID)))  # type: ignore[arg-type]
    assert response["batchItemFailures"], "retried: the bucket may be configured meanwhile"


# --- import_dataset ---------------------------------------------------------------------------------------


def exported_manifest_uri(aws: Aws, dataset: Dataset) -> str:
    return f"s3://{aws.bucket_name}/{PREFIX}{PROJECT_ID}/{dataset.id}/v{dataset.current_version}/manifest.json"


def import_of(uri: str, name: str, **fields: object) -> dict[str, object]:
    return {"action": "import_dataset", "project_id": PROJECT_ID, "source_uri": uri, "name": name} | fields


def test_an_import_makes_a_new_dataset_with_the_exports_records(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    held = records(120)
    source = dataset_with(emulator, "last-week", held)
    handle(aws, context, export(source))
    published(aws)

    handle(aws, context, import_of(exported_manifest_uri(aws, source), "restored {date}"))

    [made] = [d for d in emulator.datasets.values() if d.name.startswith("restored ")]
    assert sorted((as_exported(r) for r in made.records), key=lambda r: r["id"]) == [as_exported(r) for r in held]
    [event] = published(aws)
    assert event["detail"]["result"]["new_dataset_id"] == made.id
    assert event["detail"]["result"]["record_count"] == 120


def test_an_export_whose_records_do_not_match_its_manifest_is_refused_before_anything_is_made(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    source = dataset_with(emulator, "tampered", records(10))
    handle(aws, context, export(source))
    key = f"{PREFIX}{PROJECT_ID}/{source.id}/v{source.current_version}/records.jsonl.gz"
    s3().put_object(Bucket=aws.bucket_name, Key=key, Body=gzip.compress(b'{"id": "rec-x", "input": "other"}\n'))
    datasets_before = len(emulator.datasets)

    handle(aws, context, import_of(exported_manifest_uri(aws, source), "from a tampered export"))

    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "rejected"
    assert "sha256" in dead["attributes"]["error_message"]
    assert len(emulator.datasets) == datasets_before


def test_an_import_of_an_export_that_is_not_there_is_refused_with_its_uri(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    uri = f"s3://{aws.bucket_name}/{PREFIX}{PROJECT_ID}/no-such-dataset/v1/manifest.json"
    handle(aws, context, import_of(uri, "from nowhere"))
    [dead] = aws.dead_letters()
    assert (dead["attributes"]["error_class"], dead["attributes"]["error_message"]) == (
        "rejected",
        f"{uri} does not exist",
    )


def test_a_long_import_continues_and_a_lost_upload_answer_duplicates_nothing(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN an export of 12,000 records (three uploads), whose second upload is done but its answer lost
    held = records(12_000)
    source = dataset_with(emulator, "to-import", held)
    handle(aws, context, export(source))
    emulator.inject(Fault(status=502, times=1, path_contains="/records/upload", skip=1, after_work=True))
    body = import_of(exported_manifest_uri(aws, source), "imported", idempotency_key="import-to-import")
    # WHEN the import is retried, and each invocation runs short of time after two uploads
    handle(aws, context, body)
    contexts = (ShortOfTime(emulator, pages=2, path="/records/upload") for _ in range(20))
    run_to_the_end(aws, body, contexts)
    # THEN one dataset, every record once
    [made] = emulator.datasets_named("imported")
    assert sorted(r["id"] for r in made.records) == [r["id"] for r in held]


# --- backup_datasets and restore --------------------------------------------------------------------------


def test_a_nightly_backup_exports_what_the_bucket_lacks_the_soonest_to_expire_first(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    # GIVEN two datasets, each with an older version: one used 80 days ago, one used yesterday
    soon, later = dataset_with(emulator, "nightly-a", records(5)), dataset_with(emulator, "nightly-b", records(5))
    for dataset, used_days_ago in ((soon, 80), (later, 1)):
        emulator.use_version(dataset.id, dataset.current_version, at=_days_ago(used_days_ago))
        dataset.new_version(records(7), dataset.created_at)
    handle(aws, context, export(later))  # its current version is in the bucket already
    published(aws)
    read_before = len(emulator.calls("GET", "/records"))
    # WHEN the nightly backup runs for names starting with nightly-
    handle(aws, context, {"action": "backup_datasets", "project_id": PROJECT_ID, "name_prefix": "nightly-"})
    # THEN the three other versions are exported, the one closest to expiry first, the current one last
    result = published(aws)[0]["detail"]["result"]
    assert (result["exported"], result["already_there"], result["failed"]) == (3, 1, 0)
    read = [
        (call.path.split("/datasets/")[1].split("/")[0], int(call.query["filter[version]"][0]))
        for call in emulator.calls("GET", "/records")[read_before:]
    ]
    assert list(dict.fromkeys(read)) == [(soon.id, 1), (later.id, 1), (soon.id, 2)]
    for dataset, version in read:
        assert manifest(aws, emulator.datasets[dataset], version)["record_count"] == (5 if version == 1 else 7)


def test_a_restore_exports_the_version_it_replaces_first(
    aws: Aws, emulator: DatadogEmulator, function_env: None, context: FakeLambdaContext
) -> None:
    dataset = dataset_with(emulator, "rolled-back", records(4))
    good = dataset.current_version
    dataset.new_version(records(2), dataset.created_at)  # a mistaken update
    mistaken = dataset.current_version

    handle(aws, context, {"action": "restore_dataset_version", "project_id": PROJECT_ID, "dataset_id": dataset.id,
                          "version": good})  # fmt: skip

    assert len(exported_records(aws, dataset, mistaken)) == 2, "the version it replaced is kept in the bucket"
    assert len(emulator.live_dataset(dataset.id).records) == 4  # type: ignore[union-attr]
    result = published(aws)[0]["detail"]["result"]
    assert result["exported_version"] == mistaken


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds").replace("+00:00", "Z")


def test_a_direct_invocations_long_export_continues_in_the_actions_queue(
    aws: Aws, emulator: DatadogEmulator, function_env: None
) -> None:
    # GIVEN an export an EventBridge rule invokes the function with directly (no queue of its own)
    held = records(3000, size=20_000)
    dataset = dataset_with(emulator, "direct", held)
    event = {
        "id": "0d7e-direct-export",
        "detail-type": "LLMObs Action",
        "source": "llmobs.actions",
        "time": "2026-12-06T03:00:00Z",
        "detail": export(dataset),
    }
    # WHEN it runs short of time after one page
    outcome = handler.lambda_handler(event, ShortOfTime(emulator, pages=1))
    # THEN it says so, and the rest of the work goes on from the actions queue under the event's key
    assert outcome["status"] == "continued"
    contexts = (ShortOfTime(emulator, pages=1) for _ in range(20))
    while messages := aws.sqs.receive_message(
        QueueUrl=aws.queue_url, MaxNumberOfMessages=1, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", []):
        handler.lambda_handler({"Records": [sqs_record(messages[0], aws.queue_arn)]}, next(contexts))
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
    assert sorted(r["id"] for r in exported_records(aws, dataset, dataset.current_version)) == [r["id"] for r in held]


def test_a_chain_of_continuations_ends_before_lambda_would_stop_it_with_its_reason(
    aws: Aws, emulator: DatadogEmulator, function_env: None
) -> None:
    # GIVEN a continuation that is already the 13th of its chain, and work that is not done yet
    dataset = dataset_with(emulator, "endless", records(3000, size=20_000))
    attributes = {"continuation": {"DataType": "String", "StringValue": "13"}}
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(export(dataset)), MessageAttributes=attributes)
    [message] = aws.sqs.receive_message(QueueUrl=aws.queue_url, MessageAttributeNames=["All"], AttributeNames=["All"])[
        "Messages"
    ]
    # WHEN it runs short of time again
    handler.lambda_handler({"Records": [sqs_record(message, aws.queue_arn)]}, ShortOfTime(emulator, pages=1))
    # THEN it is dead-lettered, saying why, rather than continued into Lambda's recursion stop
    [dead] = aws.dead_letters()
    assert dead["attributes"]["error_class"] == "rejected"
    assert "14 invocations were not enough" in dead["attributes"]["error_message"]
    assert "FunctionTimeout" in dead["attributes"]["error_message"]
