"""import_dataset: an export's records into a new dataset of a project, its digest and count checked before
anything is made, across as many invocations as it takes.

The records go in through UploadLLMObsDatasetRecords, a chunk of CSV rows at a time, each row with its
record's `id` and `overwrite=true`: the one write path whose spec says what a repeated id does (it replaces
the record), so a chunk sent again after a lost answer or a retry half-way duplicates nothing. batch_update's
`insert_records` would add a second copy of every record of a chunk it was not told went in. Exactly one
dataset per key, as for a clone: the dataset an earlier attempt made is adopted (adoption.py), and the
checkpoint names it once made.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from llmobs_actions.actions.adoption import earlier_clone
from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.exports import RECORD_FIELDS, RESERVE_SECONDS, bucket_of, check_export, digest_and_count
from llmobs_actions.attempts import ActionResult, Attempt, ContinueLater, Intent
from llmobs_actions.backups import MANIFEST_OBJECT, record_lines
from llmobs_actions.contract import ImportDataset
from llmobs_actions.datadog import DatadogKeys
from llmobs_actions.failures import BackupRejectedError
from llmobs_actions.observability import logger
from llmobs_actions.templates import render

# Records per upload: about 10 MB of CSV at 2 KB a record; every upload may make a dataset version.
UPLOAD_RECORDS = 5_000


class ImportDatasetAction(Action):
    name = "import_dataset"
    model = ImportDataset
    first_operation = "create_dataset"

    def prepare(self, action: ImportDataset, attempt: Attempt, tools: Tools) -> ImportDataset:
        moment = attempt.event_time or datetime.now(UTC)
        name = render(action.name, moment, lambda: "")
        description = render(action.description, moment, lambda: "") if action.description else action.description
        return action.model_copy(update={"name": name, "description": description})

    def intent(self, action: ImportDataset) -> Intent:
        return Intent(action.project, action.name)

    def run(self, action: ImportDataset, attempt: Attempt, tools: Tools) -> ActionResult:
        bucket = bucket_of(tools)
        source_bucket, manifest_key = action.bucket_and_key
        checkpoint: dict[str, Any] = dict(attempt.checkpoint or {})
        if source_bucket == bucket.name:  # ours: asked by listing (a missing key is a 403 to a GetObject)
            manifest = bucket.exported(manifest_key.removesuffix(MANIFEST_OBJECT), attempt.seconds_left())
        else:
            manifest = bucket.manifest(manifest_key, attempt.seconds_left(), source_bucket)
        if manifest is None:
            raise BackupRejectedError(f"{action.source_uri} does not exist")
        records_key = manifest_key.removesuffix("manifest.json") + str(manifest.get("records_object"))
        records_uri = bucket.uri(records_key, source_bucket)
        if not checkpoint.get("verified"):
            sha256, count = digest_and_count(bucket, records_key, attempt, source_bucket)
            check_export(manifest, sha256, count, records_uri)
        total = int(manifest["record_count"])
        if action.dry_run:
            logger.info("dry run: would import an export", extra={"source_uri": action.source_uri, "records": total})
            return ActionResult(
                f"dry run: would import {total} records as {action.name!r}",
                {"dry_run": True, "name": action.name, "record_count": total, "source_uri": action.source_uri},
            )
        if "dataset_id" not in checkpoint:
            checkpoint = {
                "dataset_id": self._dataset(action, attempt, tools),
                "done": 0,
                "created": 0,
                "verified": True,
            }
            attempt.progress.checkpoint = checkpoint
        dataset_id = str(checkpoint["dataset_id"])
        done, created = int(checkpoint["done"]), int(checkpoint["created"])
        lines = record_lines(bucket.read(records_key, attempt.seconds_left, source_bucket))
        for chunk in _chunks(lines, done):
            if attempt.seconds_left() < RESERVE_SECONDS:
                raise ContinueLater(checkpoint, f"{done} of {total} records imported into {dataset_id}")
            rows = _csv(chunk)
            created += tools.calls.call(attempt, partial(_upload, tools, action.project, dataset_id, rows))
            done += len(chunk)
            checkpoint = checkpoint | {"done": done, "created": created}
            attempt.progress.checkpoint = checkpoint
        if done != total:
            raise BackupRejectedError(f"{records_uri}: {done} records read, the manifest says {total}")
        logger.info("export imported", extra={"new_dataset_id": dataset_id, "record_count": done})
        return ActionResult(
            f"imported {done} records as {dataset_id}",
            {
                "new_dataset_id": dataset_id,
                "name": action.name,
                "record_count": done,
                "source_uri": action.source_uri,
                "source_version": manifest.get("version"),
            },
        )

    def metrics(self, details: Mapping[str, object]) -> dict[str, float]:
        count = details.get("record_count")
        return {"RecordsImported": float(count)} if isinstance(count, int) else {}

    def _dataset(self, action: ImportDataset, attempt: Attempt, tools: Tools) -> str:
        """The new dataset: the one an earlier attempt under the key made (its answer lost), else a new one."""
        adopted = earlier_clone(attempt, tools)
        if adopted is not None:
            logger.info("adopted the dataset an earlier attempt created", extra={"new_dataset_id": adopted.id})
            return adopted.id
        made = tools.calls.call(
            attempt,
            lambda keys, timeout: tools.datadog.create_dataset(
                keys, action.project, action.name, action.description, read_timeout=timeout
            ),
        )
        attempt.progress.changed = True
        return made.id


def _upload(
    tools: Tools, project_id: str, dataset_id: str, rows: bytes, keys: DatadogKeys, timeout: float | None
) -> int:
    return tools.datadog.upload_records(keys, project_id, dataset_id, rows, read_timeout=timeout)


def _chunks(lines: Iterator[bytes], skip: int) -> Iterator[list[dict[str, Any]]]:
    """The export's records after the first `skip` (imported already), UPLOAD_RECORDS at a time."""
    chunk: list[dict[str, Any]] = []
    for number, line in enumerate(lines):
        if number < skip:
            continue
        record = json.loads(line)
        chunk.append(record if isinstance(record, dict) else {"input": record})
        if len(chunk) == UPLOAD_RECORDS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _csv(records: list[dict[str, Any]]) -> bytes:
    """The upload's CSV: a column per record field, the id as it is and every other cell its JSON text (a string
    keeps its quotes), so a record reads back as it was written; an empty cell is null."""
    out = io.BytesIO()
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")  # encoded as written: no second copy of the rows
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(RECORD_FIELDS)
    for record in records:
        writer.writerow(
            str(record.get("id") or "")  # an id is text: written as it is
            if field == "id"
            else ("" if record.get(field) is None else json.dumps(record[field], separators=(",", ":")))
            for field in RECORD_FIELDS
        )
    text.flush()
    rows = out.getvalue()
    text.detach()
    return rows
