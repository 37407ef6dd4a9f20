"""backup_datasets: the schedule's action. Every version of a project's datasets (optionally those named with a
prefix) that Datadog still keeps and the bucket does not hold yet is exported, the soonest to expire first:
a previous version 90 days after its last use, the current one 3 years after it became current."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from llmobs_actions.actions.base import Action, Tools
from llmobs_actions.actions.exports import RESERVE_SECONDS, bucket_of, export_version
from llmobs_actions.attempts import ActionResult, Attempt, ContinueLater
from llmobs_actions.contract import BackupDatasets
from llmobs_actions.datadog import DatadogHTTPError, DatadogKeys, DatasetSummary, DatasetVersion
from llmobs_actions.failures import BackupRejectedError
from llmobs_actions.messages import parse_timestamp
from llmobs_actions.observability import logger

# Datadog's retention: a previous version 90 days after its last use, the active one 3 years.
PREVIOUS_VERSION_KEPT = timedelta(days=90)
CURRENT_VERSION_KEPT = timedelta(days=3 * 365)
# Versions one run exports at most: the plan is kept on the key between invocations (DynamoDB items hold
# 400 KB); the rest waits for the next run, and the result says how many.
MAX_PLANNED = 1_000
LISTED_FAILURES = 20


class BackupDatasetsAction(Action):
    name = "backup_datasets"
    model = BackupDatasets
    first_operation = "list_datasets"

    def run(self, action: BackupDatasets, attempt: Attempt, tools: Tools) -> ActionResult:
        bucket_of(tools)
        state: dict[str, Any] = dict(attempt.checkpoint or {})
        if "plan" not in state:
            state = self._plan(action, attempt, tools)
            attempt.progress.checkpoint = state
        if action.dry_run:
            planned = [{"dataset_id": d, "version": v} for d, _, v, _ in state["plan"][:LISTED_FAILURES]]
            return ActionResult(
                f"dry run: would export {len(state['plan'])} dataset version(s)",
                {"dry_run": True, "to_export": len(state["plan"]), "planned": planned} | _counts(state),
            )
        while state["plan"]:
            if attempt.seconds_left() < RESERVE_SECONDS:
                raise ContinueLater(state, f"{state['exported']} version(s) exported, {len(state['plan'])} to go")
            dataset_id, dataset_name, version, current = state["plan"][0]
            rest = state["plan"]

            def within(export: dict[str, Any], rest: list[Any] = rest, base: dict[str, Any] = state) -> dict[str, Any]:
                return base | {"plan": rest, "export": export}

            earlier = state.get("export")
            try:
                exported = export_version(
                    (action.project, str(state.get("project_name") or "")),
                    (dataset_id, dataset_name),
                    version,
                    current,
                    attempt,
                    tools,
                    earlier if earlier and earlier.get("version") == version else None,
                    within,
                )
                state[("exported" if exported.written else "already_there")] += 1
                state["records_exported"] += int(exported.manifest["record_count"]) if exported.written else 0
            except (DatadogHTTPError, BackupRejectedError) as error:
                if isinstance(error, DatadogHTTPError) and error.status not in (400, 404):
                    raise  # throttled, unavailable: the run resumes here later
                # Gone meanwhile (expired, deleted), or refused: the others still go.
                logger.warning("a dataset version could not be exported", extra={"dataset_id": dataset_id})
                state["failed"] += 1
                if len(state["failures"]) < LISTED_FAILURES:
                    failure = {"dataset_id": dataset_id, "version": version, "reason": str(error)[:300]}
                    state["failures"] = [*state["failures"], failure]
            state = state | {"plan": state["plan"][1:], "export": None}
            attempt.progress.checkpoint = state
        summary = f"{state['exported']} exported, {state['already_there']} already there, {state['failed']} failed"
        return ActionResult(summary, _counts(state) | {"failures": state["failures"]})

    def metrics(self, details: Mapping[str, object]) -> dict[str, float]:
        return {
            name: float(value)
            for name, key in (("VersionsExported", "exported"), ("VersionsBackupFailed", "failed"))
            if isinstance(value := details.get(key), int)
        }

    def _plan(self, action: BackupDatasets, attempt: Attempt, tools: Tools) -> dict[str, Any]:
        """Every version to export, the soonest to expire first, and those the bucket has already."""
        bucket = bucket_of(tools)
        datasets: list[DatasetSummary] = tools.calls.every_page(
            attempt,
            lambda cursor, keys, timeout: tools.datadog.list_datasets(
                keys, action.project, cursor, read_timeout=timeout
            ),
        )
        prefix = action.name_prefix
        planned: list[tuple[datetime, list[Any]]] = []
        already = 0
        now = datetime.now(UTC)
        for dataset in datasets:
            if prefix is not None and not dataset.name.startswith(prefix):
                continue
            current = dataset.current_version or 0
            versions = tools.calls.call(attempt, partial(_versions, tools, action.project, dataset.id))
            there = bucket.exported_versions(action.project, dataset.id, attempt.seconds_left())
            for version in versions:
                if version.number in there:
                    already += 1
                    continue
                if version.number == current:
                    expires = now + CURRENT_VERSION_KEPT
                else:  # never used: its 90 days may be running already; first, to be safe
                    used = parse_timestamp(version.last_used)
                    expires = used + PREVIOUS_VERSION_KEPT if used else now
                planned.append((expires, [dataset.id, dataset.name, version.number, current]))
        planned.sort(key=lambda pair: pair[0])
        logger.info("backup planned", extra={"to_export": len(planned), "already_there": already})
        project_name = tools.calls.call(
            attempt, lambda keys, timeout: tools.datadog.project_name(keys, action.project, read_timeout=timeout)
        )
        return {
            "project_name": project_name,
            "plan": [entry for _, entry in planned[:MAX_PLANNED]],
            "not_this_run": max(0, len(planned) - MAX_PLANNED),
            "exported": 0,
            "already_there": already,
            "failed": 0,
            "failures": [],
            "records_exported": 0,
            "export": None,
        }


def _versions(
    tools: Tools, project_id: str, dataset_id: str, keys: DatadogKeys, timeout: float | None
) -> list[DatasetVersion]:
    return tools.datadog.dataset_versions(keys, project_id, dataset_id, read_timeout=timeout)


def _counts(state: Mapping[str, Any]) -> dict[str, object]:
    return {key: state[key] for key in ("exported", "already_there", "failed", "records_exported", "not_this_run")}
