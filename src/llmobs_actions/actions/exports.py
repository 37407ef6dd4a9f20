"""Exporting one dataset version to the backup bucket, page by page into an S3 multipart upload, across as many
invocations as it takes: what export_dataset, backup_datasets and restore_dataset_version share.

Memory stays flat: a page of records is compressed as it arrives, and a part goes to S3 as soon as its gzip
member reaches PART_BYTES, at a page boundary. The checkpoint saved when an invocation runs short of time
is where the last part ended: the upload id, the parts so far, the cursor of the next page, the count. A
continuation resumes there, so no record is lost or written twice; the pages read since the last part are
read again.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from llmobs_actions.actions.base import Tools
from llmobs_actions.attempts import Attempt, ContinueLater
from llmobs_actions.backups import FORMAT, MANIFEST_OBJECT, PART_BYTES, RECORDS_OBJECT, Bucket, Part, record_lines
from llmobs_actions.datadog import DatadogKeys
from llmobs_actions.failures import BackupNotConfiguredError, BackupRejectedError
from llmobs_actions.observability import logger

# Time an invocation keeps back when it decides whether to read one more page: the page, a part's upload,
# the checkpoint and the continuation message all fit in it.
RESERVE_SECONDS = 12.0
# The fields of a record an export keeps, as the records API names them.
RECORD_FIELDS = ("id", "input", "expected_output", "metadata", "tags")


@dataclass(frozen=True)
class Exported:
    """An export in the bucket: where, what, and whether this attempt wrote it."""

    manifest: dict[str, Any]
    manifest_uri: str
    records_uri: str
    written: bool  # False: the same version was in the bucket already, with the same digest

    def details(self) -> dict[str, object]:
        return {
            "manifest_uri": self.manifest_uri,
            "records_uri": self.records_uri,
            "version": self.manifest["version"],
            "record_count": self.manifest["record_count"],
            "sha256": self.manifest["sha256"],
            "already_there": not self.written,
        }


def bucket_of(tools: Tools) -> Bucket:
    if tools.bucket is None:
        raise BackupNotConfiguredError("no backup bucket: BACKUP_BUCKET is not set (the template's BackupBucketName)")
    return tools.bucket


def export_version(
    project: tuple[str, str],
    dataset: tuple[str, str],
    version: int,
    current_version: int,
    attempt: Attempt,
    tools: Tools,
    checkpoint: Mapping[str, Any] | None,
    within: Callable[[dict[str, Any]], dict[str, Any]] = lambda checkpoint: checkpoint,
) -> Exported:
    """Export `version` of the dataset (id, name), resuming at `checkpoint` (this version's, or None).
    Raises ContinueLater, with the next checkpoint, when the invocation runs short of time; `within` puts this
    export's checkpoint into the caller's (a backup of many versions keeps its list beside it)."""
    bucket = bucket_of(tools)
    folder = bucket.folder(project[0], dataset[0], version)
    records_key, manifest_key = folder + RECORDS_OBJECT, folder + MANIFEST_OBJECT
    existing = None
    if checkpoint is None:
        existing = bucket.exported(folder, attempt.seconds_left())
        if existing is not None and version < current_version:  # a previous version never changes again
            return Exported(existing, bucket.uri(manifest_key), bucket.uri(records_key), written=False)
        checkpoint = {
            "version": version,
            "upload_id": bucket.start_upload(records_key, attempt.seconds_left()),
            "parts": [],
            "cursor": None,
            "records": 0,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "invocations": 1,
        }
        attempt.progress.checkpoint = within(checkpoint)
        digest: Any = hashlib.sha256()  # the records object, hashed as it is written, when it is written at once
    else:
        checkpoint = dict(checkpoint) | {"invocations": int(checkpoint.get("invocations", 1)) + 1}
        digest = None  # hashlib's state cannot be kept across invocations: read back once complete
    upload_id = str(checkpoint["upload_id"])
    parts = [Part(int(number), str(etag)) for number, etag in checkpoint["parts"]]
    cursor, count = checkpoint["cursor"], int(checkpoint["records"])
    member, member_bytes, in_member = zlib.compressobj(6, zlib.DEFLATED, 31), [], 0
    while True:
        if attempt.seconds_left() < RESERVE_SECONDS:
            done = f"{count} records of version {version} exported so far, in {len(parts)} part(s)"
            raise ContinueLater(within(checkpoint | {"parts": [[p.number, p.etag] for p in parts]}), done)
        records, cursor = tools.calls.call(attempt, partial(_page, tools, project[0], dataset[0], version, cursor))
        for record in records:
            line = json.dumps({field: record.get(field) for field in RECORD_FIELDS}, separators=(",", ":"))
            member_bytes.append(member.compress(line.encode() + b"\n"))
            in_member += 1
        if cursor is not None and sum(len(chunk) for chunk in member_bytes) < PART_BYTES:
            continue  # a part other than the last must reach S3's minimum: read on
        member_bytes.append(member.flush())
        data = b"".join(member_bytes)
        member_bytes.clear()  # one part-sized buffer in memory, not three
        if digest is not None:
            digest.update(data)
        parts.append(bucket.upload_part(records_key, upload_id, len(parts) + 1, data, attempt.seconds_left()))
        del data  # not kept while the next part fills
        count += in_member
        checkpoint |= {"parts": [[p.number, p.etag] for p in parts], "cursor": cursor, "records": count}
        attempt.progress.checkpoint = within(checkpoint)  # a failure from here on resumes after this part
        member, member_bytes, in_member = zlib.compressobj(6, zlib.DEFLATED, 31), [], 0
        if cursor is None:
            break
    sha256 = digest.hexdigest() if digest is not None else None
    if sha256 is not None and existing is not None and existing.get("sha256") == sha256:
        bucket.abort(records_key, upload_id, attempt.seconds_left())  # the same records are there: keep them
        logger.info("export already in the bucket", extra={"manifest_uri": bucket.uri(manifest_key)})
        return Exported(existing, bucket.uri(manifest_key), bucket.uri(records_key), written=False)
    bucket.complete(records_key, upload_id, parts, attempt.seconds_left())
    if sha256 is None:
        sha256, _ = digest_and_count(bucket, records_key, attempt)
    manifest = {
        "format": FORMAT,
        "site": bucket.site,
        "project_id": project[0],
        "project_name": project[1],
        "dataset_id": dataset[0],
        "dataset_name": dataset[1],
        "version": version,
        "record_count": count,
        "records_object": RECORDS_OBJECT,
        "sha256": sha256,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "invocations": checkpoint["invocations"],
    }
    bucket.put_manifest(manifest_key, manifest, attempt.seconds_left())
    logger.info(
        "dataset version exported",
        extra={"manifest_uri": bucket.uri(manifest_key), "record_count": count, "parts": len(parts)},
    )
    return Exported(manifest, bucket.uri(manifest_key), bucket.uri(records_key), written=True)


def _page(
    tools: Tools,
    project_id: str,
    dataset_id: str,
    version: int,
    cursor: str | None,
    keys: DatadogKeys,
    timeout: float | None,
) -> tuple[list[dict[str, object]], str | None]:
    return tools.datadog.list_records(keys, project_id, dataset_id, version, cursor, read_timeout=timeout)


def digest_and_count(bucket: Bucket, key: str, attempt: Attempt, source_bucket: str | None = None) -> tuple[str, int]:
    """The sha256 of an export's records object and its count of records, read as it arrives."""
    digest, count = hashlib.sha256(), 0

    def hashed(chunks: Any) -> Any:
        for chunk in chunks:
            digest.update(chunk)
            yield chunk

    for _ in record_lines(hashed(bucket.read(key, attempt.seconds_left, source_bucket))):
        count += 1
    return digest.hexdigest(), count


def check_export(manifest: Mapping[str, Any], sha256: str, count: int, uri: str) -> None:
    if manifest.get("sha256") != sha256:
        raise BackupRejectedError(f"{uri}: the records object's sha256 is {sha256}, the manifest says otherwise")
    if manifest.get("record_count") != count:
        raise BackupRejectedError(
            f"{uri}: the records object holds {count} records, the manifest says {manifest.get('record_count')}"
        )
