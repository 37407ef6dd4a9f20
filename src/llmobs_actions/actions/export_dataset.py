"""export_dataset: one version of a dataset (default: its current one) to the backup bucket, as gzipped JSON
Lines and a manifest, across as many invocations as it takes (exports.py)."""

from __future__ import annotations

from collections.abc import Mapping

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.exports import bucket_of, export_version
from llmobs_actions.attempts import ActionResult, Attempt
from llmobs_actions.contract import ExportDataset
from llmobs_actions.datadog import DatadogHTTPError, DatasetSummary, RateLimit
from llmobs_actions.observability import logger


class ExportDatasetAction(Action):
    name = "export_dataset"
    model = ExportDataset
    first_operation = "get_dataset"

    def run(self, action: ExportDataset, attempt: Attempt, tools: Tools) -> ActionResult:
        bucket = bucket_of(tools)
        dataset = live_dataset(action.project, action.dataset, attempt, tools)
        current = dataset.current_version or 0
        started = attempt.checkpoint.get("version") if attempt.checkpoint else None
        # What an earlier invocation started is finished, even if the dataset got a new version meanwhile.
        version = action.version if action.version is not None else started if isinstance(started, int) else current
        if version > current:
            raise DatadogHTTPError(
                "list_records", 400, f"version {version} is beyond the current version ({current})", RateLimit()
            )
        folder = bucket.folder(action.project, action.dataset, version)
        if action.dry_run:
            logger.info("dry run: would export a dataset version", extra={"to": bucket.uri(folder)})
            return ActionResult(
                f"dry run: would export version {version} of {action.dataset} to {bucket.uri(folder)}",
                {"dry_run": True, "version": version, "to": bucket.uri(folder)},
            )
        checkpoint = _this_versions(attempt.checkpoint, version)
        project_name = tools.calls.call(
            attempt, lambda keys, timeout: tools.datadog.project_name(keys, action.project, read_timeout=timeout)
        )
        exported = export_version(
            (action.project, project_name or ""),
            (action.dataset, dataset.name),
            version,
            current,
            attempt,
            tools,
            checkpoint,
        )
        said = "exported" if exported.written else "already in the bucket:"
        return ActionResult(
            f"{said} version {version} of {action.dataset} ({exported.manifest_uri})", exported.details()
        )

    def metrics(self, details: Mapping[str, object]) -> dict[str, float]:
        written = not details.get("already_there")
        count = details.get("record_count")
        return {"RecordsExported": float(count)} if written and isinstance(count, int) else {}


def live_dataset(project_id: str, dataset_id: str, attempt: Attempt, tools: Tools) -> DatasetSummary:
    found = tools.calls.call(
        attempt, lambda keys, timeout: tools.datadog.dataset(keys, project_id, dataset_id, read_timeout=timeout)
    )
    if found is None:
        raise DatadogHTTPError(
            "get_dataset", 404, f"dataset {dataset_id} not found in project {project_id}", RateLimit()
        )
    return found


def _this_versions(checkpoint: Mapping[str, object] | None, version: int) -> Mapping[str, object] | None:
    """An earlier invocation's checkpoint, if it was exporting this version (the current one may have moved)."""
    return checkpoint if checkpoint is not None and checkpoint.get("version") == version else None
