"""Keys from Secrets Manager (moto server mode): cached, refetched after rotation, clear errors when wrong."""

from __future__ import annotations

import json

import pytest

from llmobs_actions.datadog import DatadogKeys
from llmobs_actions.keys import KeyStore, SecretMisconfiguredError, SecretUnavailableError
from local.strict_aws import AwsFault
from tests.conftest import API_KEY, APP_KEY, SECRET_ID, Aws


def test_keys_are_read_and_cached(aws: Aws) -> None:
    store = KeyStore(SECRET_ID, max_age_seconds=300)
    assert store.current() == DatadogKeys(API_KEY, APP_KEY)
    aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps({"api_key": "b", "app_key": "c"}))
    assert store.current() == DatadogKeys(API_KEY, APP_KEY), "within max_age the cached keys are used"


def test_a_zero_max_age_reads_every_time(aws: Aws) -> None:
    store = KeyStore(SECRET_ID, max_age_seconds=0)
    store.current()
    aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps({"api_key": "b", "app_key": "c"}))
    assert store.current() == DatadogKeys("b", "c")


def test_refresh_refetches_once_even_when_many_records_ask(aws: Aws) -> None:
    store = KeyStore(SECRET_ID, max_age_seconds=300)
    old = store.current()
    aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps({"api_key": "b", "app_key": "c"}))
    assert store.refresh(old) == DatadogKeys("b", "c")
    # a later record that also saw the old keys fail gets the new ones without another fetch
    aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps({"api_key": "x", "app_key": "y"}))
    assert store.refresh(old) == DatadogKeys("b", "c")


def test_datadog_style_key_names_are_accepted(aws: Aws) -> None:
    aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps({"DD_API_KEY": "a", "DD_APP_KEY": "b"}))
    assert KeyStore(SECRET_ID, 300).current() == DatadogKeys("a", "b")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "is not a JSON object"),
        ('["api_key"]', "is not a JSON object"),
        (json.dumps({"api_key": "a"}), "has no app_key or DD_APP_KEY"),
        (json.dumps({"api_key": " ", "app_key": "b"}), "has no api_key or DD_API_KEY"),
    ],
)
def test_a_malformed_secret_is_a_clear_configuration_error(aws: Aws, secret: str, message: str) -> None:
    aws.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=secret)
    with pytest.raises(SecretMisconfiguredError, match=message) as raised:
        KeyStore(SECRET_ID, 300).current()
    assert "not json" not in str(raised.value)  # the secret's content is never echoed


def test_a_missing_secret_is_a_clear_configuration_error(aws: Aws) -> None:
    with pytest.raises(SecretMisconfiguredError, match="'no/such/secret' cannot be read: ResourceNotFoundException"):
        KeyStore("no/such/secret", 300).current()


def test_an_unreachable_secrets_manager_is_retryable(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(SecretUnavailableError, match="Secrets Manager unavailable"):
        KeyStore(SECRET_ID, 300).current()


@pytest.mark.parametrize(
    ("code", "message", "permission"),
    [
        (
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/fn is not authorized to perform: "
            "secretsmanager:GetSecretValue on resource: llmobs-actions/datadog",
            "secretsmanager:GetSecretValue",
        ),
        ("AccessDeniedException", "Access to KMS is not allowed", "kms:Decrypt"),
        (
            "DecryptionFailure",
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
            "kms:Decrypt",
        ),
    ],
    ids=["secret-denied", "key-denied", "decryption-failure"],
)
def test_a_denied_secret_or_key_is_a_configuration_error_naming_the_permission(
    aws: Aws, code: str, message: str, permission: str
) -> None:
    # GIVEN Secrets Manager refuses the role, as AWS answers it (the strict front plays AWS)
    assert aws.front is not None
    aws.front.inject(AwsFault(target="secretsmanager.GetSecretValue", code=code, message=message, times=10))
    # THEN no retry would help until someone grants the permission: a configuration error that names it
    with pytest.raises(SecretMisconfiguredError, match=permission):
        KeyStore(SECRET_ID, 300).current()
