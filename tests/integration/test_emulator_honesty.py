"""The Datadog emulator is honest: Datadog's own Python client drives it and its typed models accept every answer.

datadog-api-client is a test dependency only; it validates each response against the models generated from
Datadog's OpenAPI spec (check_return_type), so an answer the real API could not give fails here.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.model_utils import validate_and_convert_types
from datadog_api_client.v2.api.agent_observability_api import AgentObservabilityApi
from datadog_api_client.v2.model.llm_obs_dataset_batch_update_request import LLMObsDatasetBatchUpdateRequest
from datadog_api_client.v2.model.llm_obs_dataset_clone_request import LLMObsDatasetCloneRequest
from datadog_api_client.v2.model.llm_obs_dataset_export_format import LLMObsDatasetExportFormat
from datadog_api_client.v2.model.llm_obs_dataset_records_request import LLMObsDatasetRecordsRequest
from datadog_api_client.v2.model.llm_obs_dataset_request import LLMObsDatasetRequest
from datadog_api_client.v2.model.llm_obs_dataset_restore_version_request import LLMObsDatasetRestoreVersionRequest
from datadog_api_client.v2.model.llm_obs_delete_datasets_request import LLMObsDeleteDatasetsRequest
from datadog_api_client.v2.model.llm_obs_delete_experiments_request import LLMObsDeleteExperimentsRequest
from datadog_api_client.v2.model.llm_obs_experiment_request import LLMObsExperimentRequest
from datadog_api_client.v2.model.llm_obs_project_request import LLMObsProjectRequest

from local.datadog_emulator import DatadogEmulator, Fault
from tests.conftest import API_KEY, APP_KEY, DATASET_ID, EXPERIMENT_IDS, PROJECT_ID

OPERATIONS = [
    "clone_llm_obs_dataset",
    "delete_llm_obs_experiments",
    "delete_llm_obs_datasets",
    "list_llm_obs_projects",
    "list_llm_obs_datasets",
    "list_llm_obs_dataset_records",
    "list_llm_obs_experiments",
    "create_llm_obs_project",
    "create_llm_obs_dataset",
    "create_llm_obs_dataset_records",
    "create_llm_obs_experiment",
    "restore_llm_obs_dataset_version",
    "batch_update_llm_obs_dataset",
    "list_llm_obs_dataset_versions",
    "export_llm_obs_dataset",
    "upload_llm_obs_dataset_records_file",
]


@pytest.fixture
def api(emulator: DatadogEmulator) -> Iterator[AgentObservabilityApi]:
    configuration = Configuration(host=emulator.url, api_key={"apiKeyAuth": API_KEY, "appKeyAuth": APP_KEY})
    for operation in OPERATIONS:
        configuration.unstable_operations[operation] = True
    configuration.request_timeout = (2, 5)
    with warnings.catch_warnings(), ApiClient(configuration) as client:
        warnings.simplefilter("ignore", UserWarning)  # "Using unstable operation ..." on every call
        yield AgentObservabilityApi(client)


def body(model: type, document: dict[str, Any]) -> Any:
    return validate_and_convert_types(document, (model,), ["body"], True, True, configuration=Configuration())


def test_clone_answers_a_dataset_the_client_accepts(api: AgentObservabilityApi, emulator: DatadogEmulator) -> None:
    request = {"data": {"type": "datasets", "id": DATASET_ID, "attributes": {"name": "copy", "description": "d"}}}
    response = api.clone_llm_obs_dataset(PROJECT_ID, DATASET_ID, body(LLMObsDatasetCloneRequest, request))
    assert response.data.attributes.name == "copy"
    assert response.data.attributes.current_version == 0
    assert len(emulator.datasets[response.data.id].records) == 5


def test_delete_is_a_soft_delete_seen_only_with_is_deleted(api: AgentObservabilityApi) -> None:
    request = {"data": {"type": "experiments", "attributes": {"experiment_ids": EXPERIMENT_IDS[:1]}}}
    assert api.delete_llm_obs_experiments(body(LLMObsDeleteExperimentsRequest, request)) is None
    live = api.list_llm_obs_experiments(filter_project_id=PROJECT_ID)
    deleted = api.list_llm_obs_experiments(filter_project_id=PROJECT_ID, filter_is_deleted=True)
    assert [e.id for e in live.data] == EXPERIMENT_IDS[1:]
    assert [e.id for e in deleted.data] == EXPERIMENT_IDS[:1]
    assert deleted.data[0].attributes.deleted_at is not None


def test_datasets_carry_metadata_and_their_delete_is_soft(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    kept = emulator.add_dataset(PROJECT_ID, "kept", metadata={"keep": True})
    doomed = emulator.add_dataset(PROJECT_ID, "doomed")
    experiment = emulator.add_experiment(PROJECT_ID, kept.id, "eval", metadata={"keep": True})

    listed = {d.id: d for d in api.list_llm_obs_datasets(PROJECT_ID).data}
    assert listed[kept.id].attributes.metadata == {"keep": True}
    assert listed[doomed.id].attributes.metadata is None  # nullable, as the spec says
    [run] = [e for e in api.list_llm_obs_experiments(filter_project_id=PROJECT_ID).data if e.id == experiment]
    assert (run.attributes.dataset_id, run.attributes.metadata) == (kept.id, {"keep": True})

    request = {"data": {"type": "datasets", "attributes": {"dataset_ids": [doomed.id]}}}
    assert api.delete_llm_obs_datasets(PROJECT_ID, body(LLMObsDeleteDatasetsRequest, request)) is None
    assert doomed.id not in {d.id for d in api.list_llm_obs_datasets(PROJECT_ID).data}
    assert emulator.datasets[doomed.id].deleted_at is not None, "soft: still held, no longer served"


def test_lists_page_with_a_cursor(api: AgentObservabilityApi, emulator: DatadogEmulator) -> None:
    for number in range(7):
        emulator.add_experiment(PROJECT_ID, DATASET_ID, f"extra-{number}")
    seen, cursor = [], None
    while True:
        page = api.list_llm_obs_experiments(
            filter_project_id=PROJECT_ID, page_limit=3, **({"page_cursor": cursor} if cursor else {})
        )
        seen += [e.id for e in page.data]
        cursor = page.meta.after if "meta" in page and page.meta else None
        if not cursor:
            break
    assert len(seen) == 9
    assert len(set(seen)) == 9


def test_projects_datasets_and_records_can_be_created_and_listed(api: AgentObservabilityApi) -> None:
    project = api.create_llm_obs_project(
        body(LLMObsProjectRequest, {"data": {"type": "projects", "attributes": {"name": "seeded"}}})
    )
    dataset = api.create_llm_obs_dataset(
        project.data.id, body(LLMObsDatasetRequest, {"data": {"type": "datasets", "attributes": {"name": "ds"}}})
    )
    records = api.create_llm_obs_dataset_records(
        project.data.id,
        dataset.data.id,
        body(
            LLMObsDatasetRecordsRequest,
            {"data": {"type": "records", "attributes": {"records": [{"input": {"q": "2+2"}, "expected_output": "4"}]}}},
        ),
    )
    experiment = api.create_llm_obs_experiment(
        body(
            LLMObsExperimentRequest,
            {
                "data": {
                    "type": "experiments",
                    "attributes": {"project_id": project.data.id, "dataset_id": dataset.data.id, "name": "run"},
                }
            },
        )
    )
    assert records.data[0].records[0].expected_output == "4"
    assert [p.attributes.name for p in api.list_llm_obs_projects(filter_name="seeded").data] == ["seeded"]
    assert [d.id for d in api.list_llm_obs_datasets(project.data.id, filter_name="ds").data] == [dataset.data.id]
    listed = api.list_llm_obs_dataset_records(project.data.id, dataset.data.id)
    assert [r.to_dict()["input"] for r in listed.data] == [{"q": "2+2"}]
    found = api.list_llm_obs_experiments(filter_project_id=project.data.id, filter_id=experiment.data.id)
    assert found.data[0].attributes.name == "run"


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault(status=404), 404), (Fault(status=429), 429), (Fault(status=503), 503), (Fault(status=400), 400)],
)
def test_errors_come_in_the_shapes_the_client_parses(
    api: AgentObservabilityApi, emulator: DatadogEmulator, fault: Fault, status: int
) -> None:
    emulator.inject(fault)
    with pytest.raises(ApiException) as raised:
        api.list_llm_obs_projects()
    assert raised.value.status == status
    errors = raised.value.body["errors"]
    assert all(isinstance(e, str) for e in errors) if status == 429 else all("title" in e for e in errors)
    assert {"x-ratelimit-limit", "x-ratelimit-reset"} <= set(raised.value.headers)  # lower-case, as Datadog sends them


def test_unknown_datasets_are_404_with_a_json_api_error(api: AgentObservabilityApi) -> None:
    request = {"data": {"type": "datasets", "id": "missing", "attributes": {"name": "copy"}}}
    with pytest.raises(ApiException) as raised:
        api.clone_llm_obs_dataset(PROJECT_ID, "missing", body(LLMObsDatasetCloneRequest, request))
    assert raised.value.status == 404
    assert raised.value.body == {"errors": [{"title": "Generic Error", "detail": "dataset not found"}]}


def test_an_optional_rate_limit_answers_429_with_the_documented_headers(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    emulator.limit_rate(3, 60, family="projects")
    for _ in range(3):
        api.list_llm_obs_projects()
    with pytest.raises(ApiException) as raised:
        api.list_llm_obs_projects()
    assert raised.value.status == 429
    assert raised.value.body == {"errors": ["Too many requests"]}
    headers = raised.value.headers
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-period"], headers["x-ratelimit-remaining"]) == (
        "3",
        "60",
        "0",
    )
    assert 1 <= int(headers["x-ratelimit-reset"]) <= 60
    assert headers["x-ratelimit-name"] == "llm_obs_projects"


def test_each_endpoint_family_has_its_own_limit_unless_one_is_shared(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    emulator.limit_rate(1, 60)
    api.list_llm_obs_projects()
    api.list_llm_obs_experiments(filter_project_id=PROJECT_ID)  # another family: its own window
    with pytest.raises(ApiException) as raised:
        api.list_llm_obs_projects()
    assert raised.value.status == 429

    emulator.shared_rate_limit = True  # Datadog may put every endpoint under one name
    api.list_llm_obs_datasets(PROJECT_ID)
    with pytest.raises(ApiException) as shared:
        api.list_llm_obs_experiments(filter_project_id=PROJECT_ID)
    assert shared.value.headers["x-ratelimit-name"] == "llm_obs_api"


def test_wrong_keys_are_refused_as_datadog_does(emulator: DatadogEmulator) -> None:
    configuration = Configuration(host=emulator.url, api_key={"apiKeyAuth": "wrong", "appKeyAuth": APP_KEY})
    configuration.unstable_operations["list_llm_obs_projects"] = True
    with warnings.catch_warnings(), ApiClient(configuration) as client:
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ApiException) as raised:
            AgentObservabilityApi(client).list_llm_obs_projects()
    assert raised.value.status == 401


def test_a_restore_is_taken_from_datadog_s_own_client_and_refused_past_the_current_version(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    dataset = emulator.datasets[DATASET_ID]
    original = [dict(record) for record in dataset.records]
    dataset.new_version(original[:2], "2026-12-04T00:00:00.000Z")
    request = {"data": {"type": "datasets", "id": DATASET_ID, "attributes": {"dataset_version": 1}}}
    api.restore_llm_obs_dataset_version(PROJECT_ID, DATASET_ID, body(LLMObsDatasetRestoreVersionRequest, request))
    assert (dataset.current_version, dataset.records) == (3, original)

    too_far = {"data": {"type": "datasets", "id": DATASET_ID, "attributes": {"dataset_version": 4}}}
    with pytest.raises(ApiException) as raised:
        api.restore_llm_obs_dataset_version(PROJECT_ID, DATASET_ID, body(LLMObsDatasetRestoreVersionRequest, too_far))
    assert raised.value.status == 400


def batch(**attributes: Any) -> Any:
    document = {"data": {"type": "datasets", "id": DATASET_ID, "attributes": attributes}}
    return body(LLMObsDatasetBatchUpdateRequest, document)


def test_a_batch_update_is_answered_in_the_mutation_shape_and_makes_a_version_the_client_lists(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    # GIVEN the seeded dataset at version 1 (five records)
    first = emulator.datasets[DATASET_ID].records[0]["id"]
    # WHEN Datadog's client inserts one record with its own id, updates one and deletes none
    answer = api.batch_update_llm_obs_dataset(
        PROJECT_ID,
        DATASET_ID,
        batch(
            insert_records=[{"id": "rec-mine", "input": {"q": "2+2"}, "expected_output": "4", "tags": ["t:1"]}],
            update_records=[{"id": first, "expected_output": {"answer": "changed"}}],
        ),
    )
    # THEN its typed models accept the nested answer: data[0].records, the inserted record then the updated one
    assert [r.id for r in answer.data[0].records] == ["rec-mine", first]
    assert answer.data[0].records[1].to_dict()["expected_output"] == {"answer": "changed"}
    # AND the versions listing (id, type dataset_version, version_number int, last_used nullable) has both
    versions = api.list_llm_obs_dataset_versions(PROJECT_ID, DATASET_ID)
    assert [(v.type.value, v.attributes.version_number, v.attributes.last_used) for v in versions.data] == [
        ("dataset_version", 1, None),
        ("dataset_version", 2, None),
    ]
    # AND each version's records are listed with filter[version]
    old = api.list_llm_obs_dataset_records(PROJECT_ID, DATASET_ID, filter_version=1)
    new = api.list_llm_obs_dataset_records(PROJECT_ID, DATASET_ID)
    assert (len(old.data), len(new.data)) == (5, 6)
    assert "rec-mine" in {r.id for r in new.data} - {r.id for r in old.data}


def test_an_experiment_run_marks_the_current_version_used_and_the_client_reads_it_as_a_datetime(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    # GIVEN a second version of the dataset
    api.batch_update_llm_obs_dataset(PROJECT_ID, DATASET_ID, batch(insert_records=[{"input": "x"}]))
    # WHEN an experiment is created on it
    request = {
        "data": {"type": "experiments", "attributes": {"project_id": PROJECT_ID, "dataset_id": DATASET_ID, "name": "r"}}
    }
    api.create_llm_obs_experiment(body(LLMObsExperimentRequest, request))
    # THEN the current version has a last_used, the previous one still none, and no version was made
    versions = api.list_llm_obs_dataset_versions(PROJECT_ID, DATASET_ID).data
    assert [v.attributes.version_number for v in versions] == [1, 2]
    assert versions[0].attributes.last_used is None
    assert isinstance(versions[1].attributes.last_used, datetime)


def test_an_export_and_an_upload_go_through_the_client(
    api: AgentObservabilityApi, emulator: DatadogEmulator, tmp_path: Path
) -> None:
    # GIVEN the seeded dataset exported as CSV by Datadog's client (its answer type: a string)
    exported = api.export_llm_obs_dataset(PROJECT_ID, DATASET_ID, format=LLMObsDatasetExportFormat.CSV, version=1)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert list(rows[0]) == ["id", "input", "expected_output", "metadata", "tags"]
    assert len(rows) == 5
    # WHEN the same CSV is uploaded into another dataset with the client's multipart form
    target = emulator.add_dataset(PROJECT_ID, "restored", records=0)
    path = tmp_path / "records.csv"
    path.write_text(exported)
    with path.open("rb") as file:
        answer = api.upload_llm_obs_dataset_records_file(
            PROJECT_ID, target.id, overwrite=True, tags=["from:backup"], file=file
        )
    # THEN the client takes the 200 (the spec declares no body schema for the event stream)
    assert answer is None
    [call] = emulator.calls("POST", "/records/upload")
    assert call.status == 200
    # AND the target holds the same records, ids included, in one new version
    assert target.current_version == 2
    assert sorted(r["id"] for r in target.records) == sorted(row["id"] for row in rows)
    assert all(r["tags"] == ["from:backup"] for r in target.records)


@pytest.mark.parametrize(
    ("attributes", "status"),
    [
        ({"insert_records": [{"id": "rec-dup", "input": 1}, {"id": "rec-dup", "input": 2}]}, 409),
        ({"update_records": [{"id": "rec-unknown", "input": 1}]}, 404),
        ({"delete_records": ["rec-unknown"]}, 404),
    ],
)
def test_batch_update_refusals_come_as_json_api_errors_the_client_parses(
    api: AgentObservabilityApi, attributes: dict[str, Any], status: int
) -> None:
    with pytest.raises(ApiException) as raised:
        api.batch_update_llm_obs_dataset(PROJECT_ID, DATASET_ID, batch(**attributes))
    assert raised.value.status == status
    assert all("title" in e and "detail" in e for e in raised.value.body["errors"])


def test_a_batch_update_over_the_size_limit_is_413_to_the_client(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    emulator.batch_update_max_bytes = 2000  # the real limit is 5 MB; the rule is the same
    with pytest.raises(ApiException) as raised:
        api.batch_update_llm_obs_dataset(PROJECT_ID, DATASET_ID, batch(insert_records=[{"input": "x" * 3000}]))
    assert raised.value.status == 413
    assert emulator.datasets[DATASET_ID].current_version == 1


def test_a_version_out_of_range_is_400_and_an_expired_one_404_to_the_client(
    api: AgentObservabilityApi, emulator: DatadogEmulator
) -> None:
    # GIVEN version 2, and version 1 left unused for 91 days: Datadog's retention has dropped it
    api.batch_update_llm_obs_dataset(PROJECT_ID, DATASET_ID, batch(delete_records=[]))
    assert emulator.expire_versions(datetime.now(UTC) + timedelta(days=91)) == [(DATASET_ID, 1)]
    # THEN a version past the current one is a 400, the dropped one a 404, to listing and export alike
    for call in (
        lambda: api.list_llm_obs_dataset_records(PROJECT_ID, DATASET_ID, filter_version=3),
        lambda: api.export_llm_obs_dataset(PROJECT_ID, DATASET_ID, version=3),
    ):
        with pytest.raises(ApiException) as raised:
            call()
        assert raised.value.status == 400
    for call in (
        lambda: api.list_llm_obs_dataset_records(PROJECT_ID, DATASET_ID, filter_version=1),
        lambda: api.export_llm_obs_dataset(PROJECT_ID, DATASET_ID, version=1),
    ):
        with pytest.raises(ApiException) as raised:
            call()
        assert raised.value.status == 404
    assert [v.attributes.version_number for v in api.list_llm_obs_dataset_versions(PROJECT_ID, DATASET_ID).data] == [2]
