"""The dataset endpoints behind backups and imports: a dataset and its versions, a version's records page by
page, a new dataset, and uploading records (multipart CSV, answered as Server-Sent Events)."""

from __future__ import annotations

import uuid

from llmobs_actions.datadog.answers import (
    DatadogKeys,
    DatasetSummary,
    DatasetVersion,
    _attributes_of,
    _dataset_summaries,
    _items,
    _json_or_text,
    _next_cursor,
    _text,
)
from llmobs_actions.datadog.errors import DatadogHTTPError, DatadogNoAnswerError
from llmobs_actions.datadog.rate_budget import RateLimit
from llmobs_actions.datadog.transport import Transport, segment

# UploadLLMObsDatasetRecords alone lives under v2 of the API's path.
UPLOAD_PREFIX = "/api/v2/llm-obs/v2"
# Records asked for a page: the spec sets no maximum, so Datadog may answer fewer; the cursor says when it ends.
RECORDS_PAGE = 1000


class DatasetRecords(Transport):
    def project_name(self, keys: DatadogKeys, project_id: str, *, read_timeout: float | None = None) -> str | None:
        """The name of project `project_id` (ListLLMObsProjects by filter[id]), or None."""
        query = {"filter[id]": project_id}
        answer = self._call("list_projects", "GET", "/projects", keys, query=query, read_timeout=read_timeout)
        for item in _items(answer.body):
            if item.get("id") == project_id:
                return _text(_attributes_of(item), "name")
        return None

    def dataset(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, *, read_timeout: float | None = None
    ) -> DatasetSummary | None:
        """The live dataset `dataset_id` of the project (its name and current version), or None."""
        path, query = f"/{segment(project_id)}/datasets", {"filter[id]": dataset_id}
        answer = self._call("get_dataset", "GET", path, keys, query=query, read_timeout=read_timeout)
        return next((d for d in _dataset_summaries(answer.body) if d.id == dataset_id), None)

    def dataset_versions(
        self, keys: DatadogKeys, project_id: str, dataset_id: str, *, read_timeout: float | None = None
    ) -> list[DatasetVersion]:
        """ListLLMObsDatasetVersions: the versions Datadog still keeps, with when each was last used."""
        path = f"/{segment(project_id)}/datasets/{segment(dataset_id)}/versions"
        answer = self._call("list_dataset_versions", "GET", path, keys, read_timeout=read_timeout)
        found = []
        for item in _items(answer.body):
            attributes = _attributes_of(item)
            number = attributes.get("version_number")
            if isinstance(number, int) and not isinstance(number, bool):
                found.append(DatasetVersion(number, _text(attributes, "last_used")))
        return found

    def list_records(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str,
        version: int,
        cursor: str | None,
        limit: int = RECORDS_PAGE,
        *,
        read_timeout: float | None = None,
    ) -> tuple[list[dict[str, object]], str | None]:
        """One page of a version's records (flat objects, as the records endpoint gives them), and the cursor of
        the next page. A page may hold fewer records than asked for, and only the cursor says when it ends."""
        query = {"filter[version]": str(version), "page[limit]": str(limit)}
        if cursor:
            query["page[cursor]"] = cursor
        path = f"/{segment(project_id)}/datasets/{segment(dataset_id)}/records"
        answer = self._call("list_records", "GET", path, keys, query=query, read_timeout=read_timeout)
        return [dict(item) for item in _items(answer.body)], _next_cursor(answer.body)

    def create_dataset(
        self,
        keys: DatadogKeys,
        project_id: str,
        name: str,
        description: str | None,
        *,
        read_timeout: float | None = None,
    ) -> DatasetSummary:
        attributes: dict[str, str] = {"name": name}
        if description is not None:
            attributes["description"] = description
        body = {"data": {"type": "datasets", "attributes": attributes}}
        path = f"/{segment(project_id)}/datasets"
        answer = self._call("create_dataset", "POST", path, keys, body=body, read_timeout=read_timeout)
        data = answer.body.get("data") if isinstance(answer.body, dict) else None
        made = _dataset_summaries({"data": [data]}) if isinstance(data, dict) else []
        if not made:
            raise DatadogHTTPError("create_dataset", answer.status, "the answer names no dataset", RateLimit())
        return made[0]

    def upload_records(
        self,
        keys: DatadogKeys,
        project_id: str,
        dataset_id: str,
        csv: bytes,
        *,
        read_timeout: float | None = None,
    ) -> int:
        """UploadLLMObsDatasetRecords (multipart CSV, answered as Server-Sent Events): rows whose `id` a record
        of the dataset has already are overwritten, not added (overwrite=true), so sending the same rows again
        never duplicates one. Returns the count of records created."""
        boundary = f"llmobs-actions-{uuid.uuid4().hex}"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="records.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        payload = b"".join((head, csv, f"\r\n--{boundary}--\r\n".encode()))  # one copy of the rows
        path = f"/{segment(project_id)}/datasets/{segment(dataset_id)}/records/upload"
        answer = self._call(
            "upload_records",
            "POST",
            path,
            keys,
            query={"overwrite": "true", "deduplicate": "false"},
            payload=payload,
            content_type=f"multipart/form-data; boundary={boundary}",
            api_prefix=UPLOAD_PREFIX,
            accept="text/event-stream",
            read_timeout=read_timeout,
        )
        return _upload_outcome(str(answer.body))


def _upload_outcome(stream: str) -> int:
    """What an upload's event stream ends with: `completed` (its count of records created) or `error`."""
    event, data = None, []
    outcome: tuple[str, str] | None = None
    for line in [*stream.splitlines(), ""]:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and event is not None:
            if event in ("completed", "error"):
                outcome = (event, "\n".join(data))
            event, data = None, []
    if outcome is None:  # the stream ended without saying how: the rows may or may not all be written
        raise DatadogNoAnswerError("upload_records", "upload_records: the event stream ended without an outcome")
    kind, text = outcome
    parsed = _json_or_text(text.encode())
    if kind == "error":
        message = parsed.get("message") if isinstance(parsed, dict) else text
        raise DatadogHTTPError("upload_records", 422, f"upload refused: {str(message)[:500]}", RateLimit())
    created = parsed.get("records_created") if isinstance(parsed, dict) else None
    return created if isinstance(created, int) and not isinstance(created, bool) else 0
