"""Names become ids: an action given project_name or dataset_name gets the ids they stand for, before anything
else (its idempotency record is about what the names named now)."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from llmobs_actions.actions.base import Tools
from llmobs_actions.attempts import Attempt
from llmobs_actions.failures import NameResolutionError
from llmobs_actions.observability import logger

M = TypeVar("M", bound=BaseModel)


def resolve(action: M, attempt: Attempt, tools: Tools) -> tuple[M, dict[str, str]]:
    """The action with the ids its project_name and dataset_name stand for, and those ids.

    Exact names only (filter[name] narrows the listing; the name decides). A name that matches no live
    project or dataset, or several, cannot say what is meant: NameResolutionError (rejected).
    """
    resolved: dict[str, str] = {}
    datadog = tools.datadog
    project_name = getattr(action, "project_name", None)
    if project_name is not None and getattr(action, "project_id", None) is None:
        projects = tools.calls.call(
            attempt, lambda keys, timeout: datadog.find_projects_by_name(keys, project_name, read_timeout=timeout)
        )
        resolved["project_id"] = _the_one("project", project_name, [p.id for p in projects], "")
    dataset_name = getattr(action, "dataset_name", None)
    if dataset_name is not None and getattr(action, "dataset_id", None) is None:
        project_id = resolved.get("project_id") or str(getattr(action, "project_id", ""))
        datasets = tools.calls.call(
            attempt,
            lambda keys, timeout: datadog.find_datasets_by_name(keys, project_id, dataset_name, read_timeout=timeout),
        )
        resolved["dataset_id"] = _the_one("dataset", dataset_name, [d.id for d in datasets], project_id)
    if not resolved:
        return action, resolved
    logger.info("names resolved", extra={"resolved": resolved})
    return action.model_copy(update=resolved), resolved


def _the_one(kind: str, name: str, ids: list[str], project_id: str) -> str:
    where = f" in project {project_id}" if project_id else ""
    if not ids:
        raise NameResolutionError(f"no {kind} named {name[:200]!r}{where}")
    if len(ids) > 1:
        raise NameResolutionError(
            f"{len(ids)} {kind}s are named {name[:200]!r}{where}; give {kind}_id to say which one is meant"
        )
    return ids[0]
