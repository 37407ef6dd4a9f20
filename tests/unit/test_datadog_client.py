"""The Datadog client against local HTTP servers: exact requests out, every answer mapped to the right error."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmobs_actions.datadog import (
    DatadogClient,
    DatadogHTTPError,
    DatadogKeys,
    DatadogNoAnswerError,
    DatadogUnreachableError,
    RateLimit,
)
from local.datadog_emulator import DatadogEmulator, Fault
from local.servers import LocalHandler, LocalServer
from tests.conftest import API_KEY, APP_KEY, DATASET_ID, EXPERIMENT_IDS, PROJECT_ID

KEYS = DatadogKeys(API_KEY, APP_KEY)


class CannedServer:
    """Answers every request with one settable status, headers and raw body."""

    def __init__(self) -> None:
        self.status, self.body, self.headers = 204, b"", {}
        canned = self

        class Handler(LocalHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

        self.server = LocalServer("canned-datadog", Handler).start()
        self.url = self.server.url

    def answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> DatadogClient:
        self.status, self.headers = status, headers or {}
        self.body = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        return DatadogClient(self.url, connect_timeout=1, read_timeout=1)


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.server.stop()


@pytest.fixture
def client(emulator: DatadogEmulator) -> DatadogClient:
    return DatadogClient(emulator.url, connect_timeout=1, read_timeout=1)


def test_clone_sends_exactly_what_the_spec_describes(client: DatadogClient, emulator: DatadogEmulator) -> None:
    cloned = client.clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "golden snapshot", "nightly")

    [request] = emulator.requests
    assert request.method == "POST"
    assert request.path == f"/api/v2/llm-obs/v1/{PROJECT_ID}/datasets/{DATASET_ID}/clone"
    assert request.body == {
        "data": {
            "type": "datasets",
            "id": DATASET_ID,
            "attributes": {"name": "golden snapshot", "description": "nightly"},
        }
    }
    assert request.headers["DD-API-KEY"] == API_KEY
    assert request.headers["DD-APPLICATION-KEY"] == APP_KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("llmobs-actions/")
    assert cloned.id in emulator.datasets
    assert (cloned.name, cloned.current_version, cloned.missing) == ("golden snapshot", 0, ())
    assert len(emulator.datasets[cloned.id].records) == 5


def test_clone_without_description_omits_it(client: DatadogClient, emulator: DatadogEmulator) -> None:
    client.clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "snap", None)
    assert emulator.requests[0].body["data"]["attributes"] == {"name": "snap"}


def test_delete_sends_exactly_what_the_spec_describes(client: DatadogClient, emulator: DatadogEmulator) -> None:
    assert client.delete_experiments(KEYS, EXPERIMENT_IDS) is None
    [request] = emulator.requests
    assert (request.method, request.path) == ("POST", "/api/v2/llm-obs/v1/experiments/delete")
    assert request.body == {"data": {"type": "experiments", "attributes": {"experiment_ids": EXPERIMENT_IDS}}}
    assert all(emulator.experiments[i].deleted_at for i in EXPERIMENT_IDS)


def test_quoting_keeps_hostile_ids_inside_one_path_segment(emulator: DatadogEmulator) -> None:
    client = DatadogClient(emulator.url, connect_timeout=1, read_timeout=1)
    with pytest.raises(DatadogHTTPError):
        client.clone_dataset(KEYS, "../experiments", "x/../../delete?y#z", "n", None)
    [request] = emulator.requests
    assert request.path == "/api/v2/llm-obs/v1/..%2Fexperiments/datasets/x%2F..%2F..%2Fdelete%3Fy%23z/clone"


def test_connections_are_kept_alive_across_calls(client: DatadogClient, emulator: DatadogEmulator) -> None:
    for _ in range(3):
        client.delete_experiments(KEYS, EXPERIMENT_IDS)
    assert len({r.client_port for r in emulator.requests}) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 500, 502, 503, 504])
def test_json_api_errors_keep_status_and_detail(status: int, canned: CannedServer) -> None:
    body = {"errors": [{"status": str(status), "title": "Generic Error", "detail": "dataset not found"}]}
    client = canned.answer(status, body, {"Content-Type": "application/vnd.api+json"})
    with pytest.raises(DatadogHTTPError) as raised:
        client.clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "n", None)
    assert raised.value.status == status
    assert raised.value.detail == "Generic Error: dataset not found"
    assert raised.value.operation == "clone_dataset"


def test_a_429_keeps_its_message_and_rate_limit_headers_whatever_their_case(canned: CannedServer) -> None:
    headers = {
        "x-ratelimit-limit": "10",
        "x-ratelimit-period": "10",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "3",
        "x-ratelimit-name": "llm_obs_api",
    }
    with pytest.raises(DatadogHTTPError) as raised:
        canned.answer(429, {"errors": ["Too many requests"]}, headers).delete_experiments(KEYS, ["a"])
    assert raised.value.detail == "Too many requests"
    assert raised.value.rate_limit == RateLimit(limit=10, period=10, remaining=0, reset_seconds=3, name="llm_obs_api")


def test_a_non_json_error_body_is_kept_short(canned: CannedServer) -> None:
    client = canned.answer(502, b"<html>" + b"x" * 5000 + b"</html>", {"Content-Type": "text/html"})
    with pytest.raises(DatadogHTTPError) as raised:
        client.delete_experiments(KEYS, ["a"])
    assert raised.value.status == 502
    assert raised.value.detail.startswith("<html>")
    assert len(raised.value.detail) <= 500


def test_an_epoch_reset_header_becomes_seconds_from_now() -> None:
    limit = RateLimit.from_headers({"X-RATELIMIT-RESET": "1800000030"}, now=1_800_000_000)
    assert limit.reset_seconds == 30


def test_unparseable_rate_limit_headers_are_ignored() -> None:
    assert RateLimit.from_headers({"X-RateLimit-Reset": "soon", "X-RateLimit-Limit": ""}) == RateLimit()


def test_a_clone_answer_missing_fields_is_reported_not_raised(canned: CannedServer) -> None:
    client = canned.answer(200, {"data": {"type": "datasets", "attributes": {"name": "n"}}})
    cloned = client.clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "n", None)
    assert cloned.missing == ("data.id", "data.attributes.current_version")


def test_a_clone_answer_that_is_not_json_is_reported_not_raised(canned: CannedServer) -> None:
    cloned = canned.answer(200, b"OK").clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "n", None)
    assert cloned.id is None
    assert "data.id" in cloned.missing


def test_a_refused_connection_is_unreachable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DatadogUnreachableError):
        DatadogClient(f"http://127.0.0.1:{port}", connect_timeout=1, read_timeout=1).delete_experiments(KEYS, ["a"])


def test_a_dropped_connection_is_no_answer(client: DatadogClient, emulator: DatadogEmulator) -> None:
    emulator.inject(Fault(drop=True))
    with pytest.raises(DatadogNoAnswerError):
        client.delete_experiments(KEYS, ["a"])


def test_a_slow_answer_is_no_answer_and_the_change_may_have_happened(
    emulator: DatadogEmulator,
) -> None:
    emulator.inject(Fault(delay_seconds=1.5))
    client = DatadogClient(emulator.url, connect_timeout=1, read_timeout=0.5)
    with pytest.raises(DatadogNoAnswerError):
        client.clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "late", None)
    assert len(emulator.datasets_named("late")) == 1


def test_every_call_is_observed_with_its_status(emulator: DatadogEmulator) -> None:
    seen: list[tuple[str, int | None]] = []
    client = DatadogClient(
        emulator.url, connect_timeout=1, read_timeout=1, observer=lambda op, status, ms: seen.append((op, status))
    )
    client.delete_experiments(KEYS, ["a"])
    emulator.inject(Fault(drop=True))
    with pytest.raises(DatadogNoAnswerError):
        client.clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "n", None)
    assert seen == [("delete_experiments", 204), ("clone_dataset", None)]


def test_finding_datasets_by_name(client: DatadogClient, emulator: DatadogEmulator) -> None:
    emulator.add_dataset(PROJECT_ID, "nightly")
    found = client.find_datasets_by_name(KEYS, PROJECT_ID, "nightly")
    assert [d.name for d in found] == ["nightly"]
    assert emulator.requests[-1].query == {"filter[name]": ["nightly"], "page[limit]": ["100"]}


def test_finding_by_name_reads_every_page_and_keeps_only_the_exact_name(
    client: DatadogClient, emulator: DatadogEmulator
) -> None:
    emulator.name_filter_contains = True  # a filter that also matches "nightly-old"
    for _ in range(120):
        emulator.add_dataset(PROJECT_ID, "nightly", records=0)
    emulator.add_dataset(PROJECT_ID, "nightly-old", records=0)
    emulator.add_project("evals-eu")

    found = client.find_datasets_by_name(KEYS, PROJECT_ID, "nightly")

    assert (len(found), {d.name for d in found}) == (120, {"nightly"})
    assert len(emulator.calls("GET", f"/{PROJECT_ID}/datasets")) == 2
    assert [p.id for p in client.find_projects_by_name(KEYS, "evals")] == [PROJECT_ID]


def test_listing_datasets_gives_their_metadata_and_deleting_them_is_a_soft_delete(
    client: DatadogClient, emulator: DatadogEmulator
) -> None:
    kept = emulator.add_dataset(PROJECT_ID, "kept", metadata={"keep": True})
    doomed = emulator.add_dataset(PROJECT_ID, "doomed")

    page, after = client.list_datasets(KEYS, PROJECT_ID, None)
    assert after is None
    assert {d.name: dict(d.metadata) for d in page if d.name in ("kept", "doomed")} == {
        "kept": {"keep": True},
        "doomed": {},  # null in Datadog's answer
    }

    client.delete_datasets(KEYS, PROJECT_ID, [doomed.id])
    [request] = emulator.calls("POST", "/datasets/delete")
    assert request.path == f"/api/v2/llm-obs/v1/{PROJECT_ID}/datasets/delete"
    assert request.body == {"data": {"type": "datasets", "attributes": {"dataset_ids": [doomed.id]}}}
    assert request.status == 204
    assert emulator.live_dataset(doomed.id) is None
    assert kept.id in {d.id for d in client.list_datasets(KEYS, PROJECT_ID, None)[0]}
    assert doomed.id not in {d.id for d in client.list_datasets(KEYS, PROJECT_ID, None)[0]}


def test_experiments_are_listed_with_their_dataset_and_metadata(
    client: DatadogClient, emulator: DatadogEmulator
) -> None:
    experiment_id = emulator.add_experiment(PROJECT_ID, DATASET_ID, "eval", metadata={"keep": "true"})
    page, _ = client.list_experiments(KEYS, PROJECT_ID, None, None)
    [listed] = [e for e in page if e.id == experiment_id]
    assert (listed.dataset_id, dict(listed.metadata)) == (DATASET_ID, {"keep": "true"})


def test_keys_do_not_show_in_repr() -> None:
    assert API_KEY not in repr(KEYS)
    assert APP_KEY not in repr(KEYS)


def test_a_used_up_budget_raises_a_429_without_sending(emulator: DatadogEmulator) -> None:
    emulator.limit_rate(1, 60)
    client = DatadogClient(emulator.url, connect_timeout=1, read_timeout=1)
    client.delete_experiments(KEYS, ["a"])  # the answer says: 0 left in this window
    with pytest.raises(DatadogHTTPError) as raised:
        client.delete_experiments(KEYS, ["b"])
    assert raised.value.status == 429
    assert raised.value.rate_limit.reset_seconds is not None
    assert len(emulator.requests) == 1
    assert client.throttled_for("delete_experiments") is not None
    assert client.throttled_for("clone_dataset") is None  # another endpoint family, another limit
    client.clone_dataset(KEYS, PROJECT_ID, DATASET_ID, "still allowed", None)


def test_a_call_waits_for_its_answer_no_longer_than_it_is_allowed(emulator: DatadogEmulator) -> None:
    emulator.inject(Fault(delay_seconds=1.5))
    client = DatadogClient(emulator.url, connect_timeout=1, read_timeout=10)
    with pytest.raises(DatadogNoAnswerError):
        client.delete_experiments(KEYS, ["a"], read_timeout=0.3)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_tls_certificates_are_verified(tmp_path: Path) -> None:
    """An https:// Datadog whose certificate no authority signed is refused before anything is sent."""
    cert_path, key_path = _self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    received: list[str] = []

    class Handler(LocalHandler):
        def do_POST(self) -> None:
            received.append(self.path)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = LocalServer("tls-datadog", Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.start()
    try:
        client = DatadogClient(f"https://127.0.0.1:{server.server_address[1]}", connect_timeout=2, read_timeout=2)
        with pytest.raises(DatadogUnreachableError):
            client.delete_experiments(KEYS, ["a"])
    finally:
        server.stop()
    assert received == []  # the keys never left the client
