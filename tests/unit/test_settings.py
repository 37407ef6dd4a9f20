"""Settings from the environment: defaults, and errors that name the variable and what it may be."""

from __future__ import annotations

import pytest

from llmobs_actions.settings import DATADOG_SITES, ConfigurationError, Settings

REQUIRED = {"DD_SECRET_ID": "llmobs-actions/datadog", "DEAD_LETTER_QUEUE_URL": "https://sqs.example/dlq"}


def test_defaults() -> None:
    settings = Settings.from_environ(REQUIRED)
    assert settings.datadog_base_url == "https://api.datadoghq.com"
    assert (settings.max_workers, settings.delete_chunk_size, settings.max_experiment_ids) == (10, 100, 1000)
    # a call starts with time for the connect, a 2 s answer and 1 s to settle the message...
    assert settings.call_budget_ms == int((3.05 + 2 + 1) * 1000)
    # ...and waits for its answer as long as the read timeout, or as long as the deadline leaves
    assert settings.read_timeout_for(remaining_ms=60_000) == 15.0
    assert settings.read_timeout_for(remaining_ms=10_000) == pytest.approx(10 - 3.05 - 1)


@pytest.mark.parametrize("site", DATADOG_SITES)
def test_every_datadog_site_maps_to_its_api_host(site: str) -> None:
    assert Settings.from_environ(REQUIRED | {"DD_SITE": site}).datadog_base_url == f"https://api.{site}"


def test_an_unknown_site_names_the_variable_and_the_allowed_sites() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ(REQUIRED | {"DD_SITE": "datadoghq.org"})
    assert "DD_SITE" in str(raised.value)
    assert all(site in str(raised.value) for site in DATADOG_SITES)


def test_missing_variables_are_named() -> None:
    with pytest.raises(ConfigurationError, match="DD_SECRET_ID, DEAD_LETTER_QUEUE_URL"):
        Settings.from_environ({})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MAX_WORKERS", "zero", "MAX_WORKERS: Input should be a valid integer"),
        ("MAX_WORKERS", "0", "MAX_WORKERS: Input should be greater than or equal to 1"),
        ("MAX_EXPERIMENT_IDS", "20000", "MAX_EXPERIMENT_IDS: Input should be less than or equal to 10000"),
        ("DD_READ_TIMEOUT_SECONDS", "-1", "DD_READ_TIMEOUT_SECONDS: Input should be greater than 0"),
        ("DD_API_URL", "http://api.datadoghq.com", "only for loopback hosts"),
        ("DD_API_URL", "ftp://127.0.0.1", "is not an http(s) URL"),
        ("DD_API_URL", "https://proxy.internal/?x=1", "must not carry a query"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_environ(REQUIRED | {variable: value})


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://dd-proxy.internal:8443/", "https://dd-proxy.internal:8443"),
        ("http://127.0.0.1:8126", "http://127.0.0.1:8126"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_the_api_url_override(url: str, base: str) -> None:
    assert Settings.from_environ(REQUIRED | {"DD_API_URL": url}).datadog_base_url == base


def test_an_explicit_call_budget_wins() -> None:
    assert Settings.from_environ(REQUIRED | {"MIN_REMAINING_TIME_MS": "2500"}).call_budget_ms == 2500
