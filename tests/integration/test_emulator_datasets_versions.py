"""The emulator keeps a dataset's records per version, as Datadog does, for backup, export, import and restore.

Plain HTTP here: Datadog's client (test_emulator_honesty.py) validates the answers' shapes, but it cannot show
an upload's event stream (the spec declares no body for it, so the client returns None), an export's bytes as
they came, or a stream cut half-way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3

from local.datadog_emulator import DatadogEmulator, Fault
from tests.conftest import API_KEY, APP_KEY, DATASET_ID, PROJECT_ID

V1 = f"/api/v2/llm-obs/v1/{PROJECT_ID}/datasets"
COLUMNS = ["id", "input", "expected_output", "metadata", "tags"]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    def events(self) -> list[tuple[str, Any]]:
        """A Server-Sent Events stream as (event, JSON data) pairs."""
        events = []
        for block in self.text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if line)
            if fields:
                events.append((fields["event"], json.loads(fields["data"])))
        return events


class Http:
    def __init__(self, url: str, pool: urllib3.PoolManager) -> None:
        self.url, self.pool = url, pool

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, **kwargs: Any) -> Answer:
        url = self.url + path + (f"?{urlencode(query, doseq=True)}" if query else "")
        headers = self.pool.headers | kwargs.pop("headers", {})  # a request's own headers replace the pool's
        response = self.pool.request(method, url, headers=headers, **kwargs)
        return Answer(response.status, dict(response.headers), response.data.decode())

    def get(self, path: str, **query: Any) -> Answer:
        return self.call("GET", path, query)

    def post(self, path: str, document: Any, **query: Any) -> Answer:
        return self.call("POST", path, query, body=json.dumps(document), headers={"Content-Type": "application/json"})

    def batch(self, dataset_id: str = DATASET_ID, **attributes: Any) -> Answer:
        document = {"data": {"type": "datasets", "id": dataset_id, "attributes": attributes}}
        return self.post(f"{V1}/{dataset_id}/batch_update", document)

    def records(self, dataset_id: str = DATASET_ID, **query: Any) -> Answer:
        return self.get(f"{V1}/{dataset_id}/records", **query)

    def versions(self, dataset_id: str = DATASET_ID) -> list[int]:
        answer = self.get(f"{V1}/{dataset_id}/versions")
        assert answer.status == 200, answer.text
        return [item["attributes"]["version_number"] for item in answer.json()["data"]]

    def export(self, dataset_id: str = DATASET_ID, **query: Any) -> Answer:
        return self.get(f"{V1}/{dataset_id}/export", **query)

    def restore(self, version: int, dataset_id: str = DATASET_ID) -> Answer:
        document = {"data": {"type": "datasets", "id": dataset_id, "attributes": {"dataset_version": version}}}
        return self.post(f"{V1}/{dataset_id}/restore", document)

    def upload(self, csv_text: str, dataset_id: str = DATASET_ID, **query: Any) -> Answer:
        body, content_type = urllib3.encode_multipart_formdata({"file": ("records.csv", csv_text.encode(), "text/csv")})
        path = f"/api/v2/llm-obs/v2/{PROJECT_ID}/datasets/{dataset_id}/records/upload"
        return self.call("POST", path, query, body=body, headers={"Content-Type": content_type})


@pytest.fixture
def http(emulator: DatadogEmulator) -> Iterator[Http]:
    pool = urllib3.PoolManager(
        headers={"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APP_KEY}, retries=False, timeout=10
    )
    yield Http(emulator.url, pool)
    pool.clear()


def walk(http: Http, dataset_id: str = DATASET_ID, **query: Any) -> list[list[dict[str, Any]]]:
    """Every page of a records listing, following meta.after."""
    pages, cursor = [], None
    while True:
        answer = http.records(dataset_id, **query, **({"page[cursor]": cursor} if cursor else {}))
        assert answer.status == 200, answer.text
        pages.append(answer.json()["data"])
        cursor = answer.json()["meta"]["after"]
        if not cursor:
            return pages


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def csv_of(*rows: dict[str, str], columns: list[str] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def past_dataset(emulator: DatadogEmulator, name: str = "old", records: int = 3) -> str:
    """A dataset made a year ago: records made now are newer than its own."""
    return emulator.add_dataset(PROJECT_ID, name, records=records, created_at="2025-01-01T00:00:00.000Z").id


# -- versions and records per version ------------------------------------------------------------------------


def test_each_batch_update_makes_a_version_and_each_version_keeps_its_own_records(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN the seeded dataset: version 1, five records
    seeded = ids(http.records().json()["data"])
    # WHEN one batch inserts two records and a second deletes one of the seeded records
    assert http.batch(insert_records=[{"input": "a"}, {"input": "b"}]).status == 200
    assert http.batch(delete_records=[seeded[0]]).status == 200
    # THEN there are three versions, and each lists its own records
    assert http.versions() == [1, 2, 3]
    assert sorted(ids(http.records(**{"filter[version]": 1}).json()["data"])) == sorted(seeded)
    assert len(http.records(**{"filter[version]": 2}).json()["data"]) == 7
    current = http.records().json()["data"]
    assert len(current) == 6
    assert seeded[0] not in ids(current)
    assert current == http.records(**{"filter[version]": 3}).json()["data"]  # the default is the current one
    assert emulator.datasets[DATASET_ID].current_version == 3


def test_a_listed_record_has_exactly_the_spec_s_fields_and_no_tags(http: Http) -> None:
    # GIVEN a record inserted with tags
    http.batch(insert_records=[{"id": "rec-t", "input": {"q": 1}, "metadata": {"m": 1}, "tags": ["a:b"]}])
    # WHEN it is listed
    [item] = [i for i in http.records().json()["data"] if i["id"] == "rec-t"]
    # THEN it is flat LLMObsDatasetRecordDataResponse: no type, no attributes, no tags (the export keeps them)
    assert set(item) == {"id", "dataset_id", "input", "expected_output", "metadata", "created_at", "updated_at"}
    assert (item["dataset_id"], item["input"], item["expected_output"], item["metadata"]) == (
        DATASET_ID,
        {"q": 1},
        None,
        {"m": 1},
    )


def test_records_are_listed_newest_first_and_those_made_together_in_insertion_order(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN a dataset made a year ago with three records, and three records inserted now in one batch
    dataset_id = past_dataset(emulator)
    old = [r["id"] for r in emulator.datasets[dataset_id].records]
    inserted = [{"id": f"rec-new-{n}", "input": n} for n in range(3)]
    assert http.batch(dataset_id, insert_records=inserted).status == 200
    # WHEN the records are listed
    listed = ids(http.records(dataset_id).json()["data"])
    # THEN the new ones come first, each group in the order it was inserted
    assert listed == ["rec-new-0", "rec-new-1", "rec-new-2", *old]


def test_a_cursor_walk_meets_each_record_once_in_short_pages_while_newer_versions_are_made(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN version 2 with 25 records, and a Datadog that answers at most 3 a page whatever is asked
    http.batch(insert_records=[{"input": n} for n in range(20)])
    expected = ids(emulator.datasets[DATASET_ID].record_items(2))
    emulator.short_pages = 3
    # WHEN a client walks the current version 10 at a time, and a record is inserted after each page
    seen, pages, cursor = [], [], None
    while True:
        answer = http.records(**{"page[limit]": 10}, **({"page[cursor]": cursor} if cursor else {})).json()
        pages.append(answer["data"])
        seen += ids(answer["data"])
        http.batch(insert_records=[{"input": f"meanwhile {len(pages)}"}])
        cursor = answer["meta"]["after"]
        if not cursor:
            break
    # THEN the pages were short, and the walk met version 2's records, each once, in order
    assert max(len(page) for page in pages) == 3
    assert seen == expected
    assert emulator.datasets[DATASET_ID].current_version == 2 + len(pages)


def test_short_pages_shorten_every_cursor_listing_not_only_records(http: Http, emulator: DatadogEmulator) -> None:
    for number in range(3):
        emulator.add_experiment(PROJECT_ID, DATASET_ID, f"extra-{number}")
    emulator.short_pages = 2
    page = http.get("/api/v2/llm-obs/v1/experiments", **{"filter[project_id]": PROJECT_ID, "page[limit]": 10}).json()
    assert len(page["data"]) == 2
    assert page["meta"]["after"] is not None


def test_a_past_version_is_walked_with_filter_version_across_pages(http: Http) -> None:
    # GIVEN version 1 (five records) and a version 2 without them
    seeded = ids(http.records().json()["data"])
    http.batch(delete_records=seeded)
    # WHEN version 1 is walked two at a time
    pages = walk(http, **{"filter[version]": 1, "page[limit]": 2})
    # THEN three pages hold its five records
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [i for page in pages for i in ids(page)] == seeded
    assert http.records().json() == {"data": [], "meta": {"after": None}}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"filter[version]": 2}, 400),  # past the current version
        ({"filter[version]": -1}, 400),
        ({"filter[version]": "one"}, 400),
        ({"page[limit]": 0}, 400),
        ({"page[limit]": "many"}, 400),
        ({"page[cursor]": "3"}, 400),  # not a cursor this listing gave
    ],
)
def test_a_records_listing_refuses_what_the_spec_does_not_allow(http: Http, query: dict[str, Any], status: int) -> None:
    answer = http.records(**query)
    assert answer.status == status
    assert answer.json()["errors"][0]["title"] == "Bad Request"


def test_a_cursor_of_one_version_is_refused_with_another_filter_version(http: Http) -> None:
    http.batch(insert_records=[{"input": "x"}])
    cursor = http.records(**{"filter[version]": 2, "page[limit]": 2}).json()["meta"]["after"]
    assert http.records(**{"filter[version]": 1, "page[cursor]": cursor}).status == 400
    assert http.records(**{"filter[version]": 2, "page[cursor]": cursor}).status == 200


def test_versions_are_listed_with_the_last_use_an_experiment_run_or_use_version_gave(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN versions 1 and 2, neither used
    http.batch(insert_records=[{"input": "x"}])
    listed = http.get(f"{V1}/{DATASET_ID}/versions").json()["data"]
    assert [(v["type"], v["attributes"]["last_used"]) for v in listed] == [("dataset_version", None)] * 2
    # WHEN an experiment is created on the dataset, and an earlier run is said to have used version 1
    run = {"project_id": PROJECT_ID, "dataset_id": DATASET_ID, "name": "run"}
    assert (
        http.post("/api/v2/llm-obs/v1/experiments", {"data": {"type": "experiments", "attributes": run}}).status == 201
    )
    emulator.use_version(DATASET_ID, 1, at="2026-01-02T03:04:05.000Z")
    # THEN version 2 (the current one) has a last_used, version 1 the one given, and no version was added
    listed = http.get(f"{V1}/{DATASET_ID}/versions").json()["data"]
    assert [v["attributes"]["version_number"] for v in listed] == [1, 2]
    assert listed[0]["attributes"] == {
        "dataset_id": DATASET_ID,
        "version_number": 1,
        "last_used": "2026-01-02T03:04:05.000Z",
    }
    assert datetime.fromisoformat(listed[1]["attributes"]["last_used"]) <= datetime.now(UTC)
    assert len({v["id"] for v in listed}) == 2


def test_expire_versions_drops_a_previous_version_unused_for_91_days_and_keeps_one_used_since(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN versions 1, 2 and 3 made now, and version 2 used 60 days from now
    seeded = ids(http.records().json()["data"])
    http.batch(insert_records=[{"input": "two"}])
    http.batch(insert_records=[{"input": "three"}])
    now = datetime.now(UTC)
    emulator.use_version(DATASET_ID, 2, at=(now + timedelta(days=60)).isoformat())
    # WHEN Datadog's retention runs 91 days from now
    dropped = emulator.expire_versions(now + timedelta(days=91))
    # THEN version 1 is gone: not listed, its records, export and restore 404; versions 2 and 3 stay
    assert dropped == [(DATASET_ID, 1)]
    assert http.versions() == [2, 3]
    for answer in (
        http.records(**{"filter[version]": 1}),
        http.export(version=1),
        http.restore(1),
    ):
        assert answer.status == 404
        assert answer.json()["errors"][0]["detail"] == "version 1 is no longer kept"
    with pytest.raises(KeyError):
        emulator.use_version(DATASET_ID, 1)
    assert len(http.records(**{"filter[version]": 2}).json()["data"]) == len(seeded) + 1


def test_the_current_version_is_kept_for_three_years_and_a_used_one_90_days_after_its_last_use(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN version 2 current, version 1 used now
    http.batch(insert_records=[{"input": "two"}])
    now = datetime.now(UTC)
    emulator.use_version(DATASET_ID, 1, at=now.isoformat())
    # WHEN retention runs 89 days on, then just under and just over three years on
    assert emulator.expire_versions(now + timedelta(days=89)) == []
    assert emulator.expire_versions(now + timedelta(days=3 * 365 - 1)) == [(DATASET_ID, 1)]
    assert emulator.expire_versions(now + timedelta(days=3 * 366)) == [(DATASET_ID, 2)]
    # THEN nothing is left: the current version's records are gone with it
    assert http.versions() == []
    assert http.records().status == 404


def test_a_restore_makes_a_new_version_holding_the_old_version_s_records(http: Http, emulator: DatadogEmulator) -> None:
    # GIVEN version 2 with two seeded records deleted
    version_1 = http.records().json()["data"]
    http.batch(delete_records=ids(version_1)[:2])
    # WHEN version 1 is restored
    answer = http.restore(1)
    # THEN the answer is 200 with no body, and version 3 lists version 1's records; version 2 is unchanged
    assert (answer.status, answer.text) == (200, "")
    assert http.versions() == [1, 2, 3]
    assert http.records().json()["data"] == version_1
    assert len(http.records(**{"filter[version]": 2}).json()["data"]) == 3
    assert http.restore(4).status == 400


# -- batch_update ---------------------------------------------------------------------------------------------


def test_inserting_an_id_that_exists_is_409_and_changes_nothing(http: Http, emulator: DatadogEmulator) -> None:
    # GIVEN a record inserted with its own id
    assert http.batch(insert_records=[{"id": "rec-mine", "input": "first"}]).status == 200
    # WHEN a batch inserts that id again (with another, new record)
    answer = http.batch(insert_records=[{"id": "rec-new", "input": "x"}, {"id": "rec-mine", "input": "second"}])
    # THEN it is refused as a conflict, not silently overwritten, and no version is made
    assert answer.status == 409
    assert answer.json()["errors"][0]["title"] == "Conflict"
    assert emulator.datasets[DATASET_ID].current_version == 2
    [mine] = [r for r in http.records().json()["data"] if r["id"] == "rec-mine"]
    assert mine["input"] == "first"
    assert "rec-new" not in ids(http.records().json()["data"])


@pytest.mark.parametrize(
    "attributes", [{"update_records": [{"id": "rec-nope", "input": 1}]}, {"delete_records": ["rec-nope"]}]
)
def test_updating_or_deleting_an_unknown_record_is_404_and_changes_nothing(
    http: Http, emulator: DatadogEmulator, attributes: dict[str, Any]
) -> None:
    answer = http.batch(insert_records=[{"input": "x"}], **attributes)
    assert answer.status == 404
    assert "rec-nope" in answer.json()["errors"][0]["detail"]
    assert emulator.datasets[DATASET_ID].current_version == 1


def test_a_batch_answers_the_inserted_and_updated_records_and_applies_tag_operations(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN a record with two tags
    http.batch(insert_records=[{"id": "rec-a", "input": "a", "tags": ["keep", "drop"]}])
    # WHEN a batch updates it (remove one tag, add one) and inserts one with batch-wide tags and a set
    answer = http.batch(
        update_records=[
            {"id": "rec-a", "expected_output": "A", "tag_operations": {"remove": ["drop"], "add": ["new"]}}
        ],
        insert_records=[{"id": "rec-b", "input": "b", "tags": ["x"], "tag_operations": {"set": ["only"]}}],
        tags=["batch"],
    )
    # THEN the answer lists the inserted record, then the updated one, and the tags are as the spec orders them
    assert answer.status == 200
    [mutation] = answer.json()["data"]
    assert [(r["id"], r["expected_output"]) for r in mutation["records"]] == [("rec-b", None), ("rec-a", "A")]
    tags = {r["id"]: r["tags"] for r in emulator.datasets[DATASET_ID].records}
    assert (tags["rec-a"], tags["rec-b"]) == (["keep", "new"], ["only"])


def test_create_new_version_false_changes_the_current_version_in_place(http: Http, emulator: DatadogEmulator) -> None:
    answer = http.batch(insert_records=[{"id": "rec-in-place", "input": "x"}], create_new_version=False)
    assert answer.status == 200
    assert http.versions() == [1]
    assert "rec-in-place" in ids(http.records(**{"filter[version]": 1}).json()["data"])
    assert emulator.datasets[DATASET_ID].versions[1] is emulator.datasets[DATASET_ID].records


def test_a_batch_over_5_mb_is_413(http: Http, emulator: DatadogEmulator) -> None:
    answer = http.batch(insert_records=[{"input": "x" * (5 * 1024 * 1024)}])
    assert answer.status == 413
    assert answer.json()["errors"][0]["title"] == "Payload Too Large"
    assert emulator.datasets[DATASET_ID].current_version == 1
    assert http.batch(insert_records=[{"input": "x" * (4 * 1024 * 1024)}]).status == 200


@pytest.mark.parametrize(
    "attributes",
    [
        {"create_new_version": "yes"},
        {"insert_records": {"input": "x"}},
        {"insert_records": [{"expected_output": "no input"}]},
        {"insert_records": [{"id": 5, "input": "x"}]},
        {"insert_records": [{"id": "", "input": "x"}]},
        {"insert_records": [{"input": "x", "metadata": "not an object"}]},
        {"insert_records": [{"input": "x", "metadata": None}]},
        {"insert_records": [{"input": "x", "tags": [1]}]},
        {"insert_records": [{"input": "x", "tag_operations": {"replace": ["a"]}}]},
        {"insert_records": [{"input": "x", "colour": "red"}]},  # a field the spec does not name
        {"update_records": [{"input": "no id"}]},
        {"update_records": [{"id": "rec-x", "tags": ["a"]}]},  # updates take tag_operations, not tags
        {"delete_records": [7]},
        {"tags": "a,b"},
        {"deduplicate": True},  # ddtrace sends it; the spec has no such field
    ],
)
def test_a_batch_that_is_not_the_spec_s_shape_is_400(
    http: Http, emulator: DatadogEmulator, attributes: dict[str, Any]
) -> None:
    answer = http.batch(**attributes)
    assert answer.status == 400, answer.text
    assert emulator.datasets[DATASET_ID].current_version == 1


def test_a_batch_naming_another_dataset_or_a_record_twice_is_400(http: Http) -> None:
    assert (
        http.post(
            f"{V1}/{DATASET_ID}/batch_update", {"data": {"type": "datasets", "id": "other", "attributes": {}}}
        ).status
        == 400
    )
    first = ids(http.records().json()["data"])[0]
    assert http.batch(update_records=[{"id": first}], delete_records=[first]).status == 400
    assert http.batch(delete_records=[first, first]).status == 400


# -- records/upload (v2) --------------------------------------------------------------------------------------


def test_an_upload_streams_its_events_and_makes_exactly_one_version(http: Http, emulator: DatadogEmulator) -> None:
    # GIVEN a CSV of three rows, one with its own id
    text = csv_of(
        {"id": "rec-up", "input": '{"q": "2+2"}', "expected_output": "4", "metadata": "{}", "tags": "a,b"},
        {"input": "plain text", "expected_output": "", "metadata": "", "tags": ""},
        {"input": "[1, 2]", "expected_output": '"4"', "metadata": '{"k": 1}', "tags": '["c"]'},
    )
    # WHEN it is uploaded
    answer = http.upload(text)
    # THEN the answer is an event stream that ends with completed, and one version holds the result
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/event-stream"
    assert answer.events() == [("completed", {"records_created": 3})]
    assert http.versions() == [1, 2]
    added = emulator.datasets[DATASET_ID].records[5:]
    assert [(r["input"], r["expected_output"], r["metadata"], r["tags"]) for r in added] == [
        ({"q": "2+2"}, 4, {}, ["a", "b"]),  # a cell that parses as JSON is that value
        ("plain text", None, None, []),  # otherwise the plain string; an empty cell is null
        ([1, 2], "4", {"k": 1}, ["c"]),
    ]
    assert added[0]["id"] == "rec-up"
    assert len(http.records().json()["data"]) == 8


def test_uploading_the_same_csv_again_overwrites_by_id_and_makes_no_duplicates(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN a CSV whose rows carry ids, uploaded once
    text = csv_of(*({"id": f"rec-{n}", "input": f"question {n}", "expected_output": f"answer {n}"} for n in range(4)))
    assert http.upload(text).events() == [("completed", {"records_created": 4})]
    # WHEN the same CSV is uploaded again (a retry after a lost answer), then once more with one answer changed
    again = http.upload(text)
    changed = http.upload(text.replace("answer 2", "answer two"))
    # THEN nothing new is created: the rows replace the records of the same id
    assert again.events() == [("completed", {"records_created": 0})]
    assert changed.events() == [("completed", {"records_created": 0})]
    listed = http.records().json()["data"]
    assert len(listed) == 9
    assert len(set(ids(listed))) == 9
    assert [r["expected_output"] for r in listed if r["id"] == "rec-2"] == ["answer two"]
    assert http.versions() == [1, 2, 3, 4]


def test_an_upload_with_overwrite_false_ends_with_an_error_on_an_existing_id_and_writes_nothing(
    http: Http, emulator: DatadogEmulator
) -> None:
    http.upload(csv_of({"id": "rec-1", "input": "one"}))
    answer = http.upload(
        csv_of({"id": "rec-new", "input": "new"}, {"id": "rec-1", "input": "again"}), overwrite="false"
    )
    assert answer.status == 200
    [(event, data)] = answer.events()
    assert event == "error"
    assert "rec-1" in data["message"]
    assert http.versions() == [1, 2]
    assert "rec-new" not in ids(http.records().json()["data"])


def test_a_malformed_row_ends_the_stream_with_an_error_after_its_progress_and_writes_nothing(
    http: Http, emulator: DatadogEmulator
) -> None:
    # GIVEN 2500 good rows and then one with a cell too many
    text = csv_of(*({"input": f"q{n}"} for n in range(2500))) + "q-bad,,,,,extra\n"
    # WHEN it is uploaded
    events = http.upload(text).events()
    # THEN progress came every 1000 rows, then an error; the dataset is as it was
    assert events[:2] == [("progress", {"records_written": 1000}), ("progress", {"records_written": 2000})]
    assert [event for event, _ in events] == ["progress", "progress", "error"]
    assert "line 2502" in events[-1][1]["message"]
    assert emulator.datasets[DATASET_ID].current_version == 1
    assert len(emulator.datasets[DATASET_ID].records) == 5


def test_a_switch_plays_a_datadog_that_keeps_the_rows_written_before_an_error(
    http: Http, emulator: DatadogEmulator
) -> None:
    emulator.upload_keeps_partial_writes = True
    events = http.upload(csv_of({"input": "good"}, {"input": ""})).events()
    assert [event for event, _ in events] == ["error"]
    assert http.versions() == [1, 2]
    assert len(emulator.datasets[DATASET_ID].records) == 6


@pytest.mark.parametrize(
    "text",
    [
        "id,expected_output\nrec-1,4\n",  # no input column
        "input,colour\nx,red\n",  # a column the spec does not name
        "input,input\nx,y\n",
        "",
        "input\n\n",  # an empty input
        "input,metadata\nx,[1]\n",  # metadata that is not an object
        "input,tags\nx,[1]\n",  # tags that are not strings
        'input\n"unclosed\n',
    ],
)
def test_a_csv_that_is_not_the_spec_s_shape_ends_with_an_error_event(
    http: Http, emulator: DatadogEmulator, text: str
) -> None:
    answer = http.upload(text)
    assert answer.status == 200
    assert [event for event, _ in answer.events()] == ["error"]
    assert emulator.datasets[DATASET_ID].current_version == 1


def test_deduplicate_skips_rows_whose_input_is_in_the_dataset(http: Http, emulator: DatadogEmulator) -> None:
    text = csv_of({"input": '{"question": "question 0"}'}, {"input": "fresh"}, {"input": "fresh"})
    assert http.upload(text, deduplicate="true").events() == [("completed", {"records_created": 1})]
    assert len(emulator.datasets[DATASET_ID].records) == 6
    assert http.upload(text).events() == [("completed", {"records_created": 3})]  # deduplicate defaults to false


def test_the_tags_query_is_added_to_every_row(http: Http, emulator: DatadogEmulator) -> None:
    dataset_id = emulator.add_dataset(PROJECT_ID, "tagged", records=0).id
    text = csv_of({"input": "a", "tags": "own"}, {"input": "b"})
    answer = http.upload(text, dataset_id, tags=["env:prod", "team:ai"])
    assert answer.events() == [("completed", {"records_created": 2})]
    assert [r["tags"] for r in emulator.datasets[dataset_id].records] == [
        ["own", "env:prod", "team:ai"],
        ["env:prod", "team:ai"],
    ]


def test_an_upload_that_is_not_multipart_or_has_bad_flags_is_400_before_any_stream(http: Http) -> None:
    path = f"/api/v2/llm-obs/v2/{PROJECT_ID}/datasets/{DATASET_ID}/records/upload"
    not_multipart = http.call("POST", path, body=b"input\nx\n", headers={"Content-Type": "text/csv"})
    assert not_multipart.status == 400
    assert not_multipart.headers["Content-Type"] == "application/vnd.api+json"
    assert http.upload("input\nx\n", overwrite="yes").status == 400
    body, content_type = urllib3.encode_multipart_formdata({"data": ("records.csv", b"input\nx\n", "text/csv")})
    assert http.call("POST", path, body=body, headers={"Content-Type": content_type}).status == 400  # not `file`
    assert http.upload("input\nx\n", "missing").status == 404
    v1_path = f"{V1}/{DATASET_ID}/records/upload"  # ddtrace's unstable path is not Datadog's spec
    assert http.call("POST", v1_path, body=body, headers={"Content-Type": content_type}).status in (400, 404)
    assert http.versions() == [1]


# -- export ---------------------------------------------------------------------------------------------------


TRICKY = [
    {"id": "rec-str-number", "input": "4", "expected_output": 4, "metadata": {}, "tags": ["a"]},
    {"id": "rec-empty", "input": "", "expected_output": "null", "metadata": {"k": [1, {"n": None}]}},
    {"id": "rec-quoted", "input": '"quoted"', "expected_output": True, "tags": ["b", "c"]},
    {"id": "rec-text", "input": "with, comma\nand a newline", "expected_output": {"answer": "Paris"}},
    {"id": "rec-object", "input": {"question": "2+2?"}, "expected_output": [1, "two", None]},
    {"id": "rec-spaces", "input": " 4 ", "expected_output": "true"},
    {"id": "rec-unicode", "input": "café ☕", "expected_output": 2.5},
]


def test_an_export_round_trips_every_record_through_an_upload(http: Http, emulator: DatadogEmulator) -> None:
    # GIVEN a dataset whose records hold strings that look like JSON, JSON values, and text CSV must quote
    source = emulator.add_dataset(PROJECT_ID, "source", records=0).id
    assert http.batch(source, insert_records=TRICKY).status == 200
    # WHEN it is exported and the CSV uploaded into an empty dataset
    exported = http.export(source)
    assert exported.status == 200
    assert exported.headers["Content-Type"] == "text/csv"
    assert exported.headers["Transfer-Encoding"] == "chunked"
    assert exported.text.startswith("id,input,expected_output,metadata,tags\n")
    target = emulator.add_dataset(PROJECT_ID, "target", records=0).id
    assert http.upload(exported.text, target).events() == [("completed", {"records_created": len(TRICKY)})]

    # THEN the target holds the same records: ids, values, metadata and tags
    def kept(dataset_id: str) -> dict[str, tuple[Any, ...]]:
        return {
            r["id"]: (r["input"], r["expected_output"], r["metadata"], r["tags"])
            for r in emulator.datasets[dataset_id].records
        }

    assert kept(target) == kept(source)
    assert kept(source)["rec-str-number"] == ("4", 4, {}, ["a"])


def test_an_export_writes_cells_as_the_spec_s_example_does(http: Http, emulator: DatadogEmulator) -> None:
    dataset_id = emulator.add_dataset(PROJECT_ID, "example", records=0).id
    http.batch(
        dataset_id, insert_records=[{"id": "rec-1", "input": "What is 2+2?", "expected_output": 4, "metadata": {}}]
    )
    assert http.export(dataset_id).text == "id,input,expected_output,metadata,tags\nrec-1,What is 2+2?,4,{},\n"


def test_an_export_is_one_version_s_records_and_refuses_what_the_spec_does_not_allow(
    http: Http, emulator: DatadogEmulator
) -> None:
    http.batch(insert_records=[{"input": "v2"}])
    assert len(list(csv.DictReader(io.StringIO(http.export(version=1).text)))) == 5
    assert len(list(csv.DictReader(io.StringIO(http.export(format="csv").text)))) == 6
    assert http.export(format="json").status == 400
    assert http.export(version=3).status == 400
    assert http.export(version="latest").status == 400
    assert http.export("missing").status == 404


# -- the new routes are served like every other ----------------------------------------------------------------


def test_the_new_routes_count_against_the_datasets_rate_limit_and_check_keys(
    http: Http, emulator: DatadogEmulator
) -> None:
    emulator.limit_rate(4, 60, family="datasets")
    answers = [http.get(f"{V1}/{DATASET_ID}/versions"), http.export(), http.batch(), http.upload("input\nx\n")]
    assert [a.status for a in answers] == [200, 200, 200, 200]
    assert {a.headers["x-ratelimit-name"] for a in answers} == {"llm_obs_datasets"}
    assert http.get(f"{V1}/{DATASET_ID}/versions").status == 429
    emulator.rate_limits.clear()
    wrong = urllib3.PoolManager(headers={"DD-API-KEY": "wrong", "DD-APPLICATION-KEY": APP_KEY}, retries=False)
    try:
        assert Http(emulator.url, wrong).export().status == 401
    finally:
        wrong.clear()


def test_faults_meet_the_new_routes_and_the_calls_are_recorded(http: Http, emulator: DatadogEmulator) -> None:
    # GIVEN a 503 for the next export, and an upload whose answer a proxy loses after the work is done
    emulator.inject(Fault(status=503, path_contains="/export"))
    emulator.inject(Fault(status=502, after_work=True, path_contains="/records/upload"))
    # WHEN both are called
    export = http.export()
    upload = http.upload(csv_of({"id": "rec-lost", "input": "x"}))
    # THEN the export did nothing and answered 503; the upload answered 502 yet its version was made
    assert (export.status, upload.status) == (503, 502)
    assert http.versions() == [1, 2]
    assert [c.status for c in emulator.calls("GET", "/export")] == [503]
    [call] = emulator.calls("POST", "/records/upload")
    assert call.status == 502
    assert "rec-lost" in call.body  # the multipart body, recorded as text


def test_an_upload_stream_cut_half_way_has_done_its_work(http: Http, emulator: DatadogEmulator) -> None:
    # GIVEN an upload whose event stream is cut after its first event
    emulator.inject(Fault(cut_stream_after=1, path_contains="/records/upload"))
    text = csv_of(*({"id": f"rec-{n}", "input": f"q{n}"} for n in range(1500)))
    # WHEN it is uploaded, the client sees the stream end without its terminal event
    with pytest.raises(urllib3.exceptions.ProtocolError):
        http.upload(text)
    # THEN the work was done: a retry of the same CSV creates nothing new
    assert http.versions() == [1, 2]
    assert http.upload(text).events() == [
        ("progress", {"records_written": 1000}),
        ("completed", {"records_created": 0}),
    ]
    assert len(emulator.datasets[DATASET_ID].records) == 1505
