"""Datadog keys: read from Secrets Manager through Powertools Parameters, cached, refetched after rotation."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from llmobs_actions.aws_clients import AwsClients
from llmobs_actions.datadog import DatadogKeys

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

_KEY_NAMES = {"api_key": ("api_key", "DD_API_KEY"), "app_key": ("app_key", "DD_APP_KEY")}
# Secrets Manager errors that no retry will cure: the operator must fix the secret.
_MISCONFIGURATION_CODES = frozenset({"ResourceNotFoundException", "InvalidRequestException"})
# A role that may not read the secret, or not decrypt it, waits for an operator as surely as a missing one.
_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "KMSAccessDeniedException"})
# After a failed fetch, the records waiting for the keys fail with it for this long instead of each
# trying again in turn under the lock: a hanging Secrets Manager costs a batch one fetch, not ten.
# They were all waiting on the lock, so a second covers them; a fixed secret is read soon after.
FAILURE_MEMORY_SECONDS = 1.0


class SecretMisconfiguredError(Exception):
    """The secret is missing, not JSON, or lacks a key: an operator must fix it."""


class SecretUnavailableError(Exception):
    """Secrets Manager could not be read just now (throttled, network): worth retrying."""


class KeyStore:
    def __init__(
        self,
        secret_id: str,
        max_age_seconds: int,
        provider: SecretsProvider | None = None,
        clients: AwsClients | None = None,
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age_seconds
        self._provider = provider
        self._clients = clients or AwsClients()
        self._lock = threading.Lock()
        self._last: DatadogKeys | None = None
        self._failed: tuple[float, Exception] | None = None  # when the last fetch failed, and how

    def current(self) -> DatadogKeys:
        with self._lock:  # one fetch at cold start even when a whole batch asks at once
            self._last = self._fetch(force=False)
            return self._last

    def refresh(self, rejected: DatadogKeys) -> DatadogKeys:
        """Refetch after Datadog refused `rejected`, unless another record already did."""
        with self._lock:
            if self._last is not None and self._last != rejected:
                return self._last
            self._last = self._fetch(force=True)
            return self._last

    def _fetch(self, *, force: bool) -> DatadogKeys:
        if self._failed is not None and time.monotonic() - self._failed[0] < FAILURE_MEMORY_SECONDS:
            failure = self._failed[1]
            raise type(failure)(*failure.args)  # the same failure, without waiting for it again
        try:
            keys = self._read(force=force)
        except (SecretMisconfiguredError, SecretUnavailableError) as error:
            self._failed = (time.monotonic(), error)
            raise
        self._failed = None
        return keys

    def _read(self, *, force: bool) -> DatadogKeys:
        # Imported at the first fetch, not with the handler: Parameters pulls in boto3.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

        if self._provider is None:
            # Secrets Manager answers in milliseconds; a hanging one must fail well inside the Lambda's time.
            client = self._clients.client("secretsmanager", connect_timeout=2, read_timeout=3, max_attempts=2)
            self._provider = SecretsProvider(boto3_client=client)
        try:
            value = self._provider.get(self._secret_id, max_age=self._max_age, transform="json", force_fetch=force)
        except TransformParameterError:
            raise SecretMisconfiguredError(f"secret {self._secret_id!r} is not a JSON object") from None
        except GetParameterError as error:
            # Powertools raises without `from`: the AWS error is the implicit context.
            underlying = error.__cause__ or error.__context__
            code = _aws_error_code(underlying)
            if code in _DENIED_CODES or code == "DecryptionFailure":
                raise SecretMisconfiguredError(self._denied(code, _aws_error_message(underlying))) from None
            if code in _MISCONFIGURATION_CODES:
                raise SecretMisconfiguredError(f"secret {self._secret_id!r} cannot be read: {code}") from None
            raise SecretUnavailableError(
                f"Secrets Manager unavailable reading {self._secret_id!r}: {code or type(underlying).__name__}"
            ) from None
        return _keys_from(value, self._secret_id)

    def _denied(self, code: str | None, detail: str) -> str:
        """What the operator must grant: the secret itself, or the KMS key that encrypts it."""
        if code == "DecryptionFailure" or "kms" in detail.lower():
            return (
                f"secret {self._secret_id!r} cannot be decrypted ({code}): the function's role needs kms:Decrypt "
                "on the secret's KMS key (template parameter DatadogSecretKmsKeyArn or KmsKeyArn)"
            )
        return (
            f"secret {self._secret_id!r} cannot be read ({code}): the function's role needs "
            "secretsmanager:GetSecretValue on it (a name or partial ARN matches only with its '-??????' suffix)"
        )


def _keys_from(value: Any, secret_id: str) -> DatadogKeys:
    if not isinstance(value, dict):
        raise SecretMisconfiguredError(f"secret {secret_id!r} is not a JSON object")
    found: dict[str, str] = {}
    for field, names in _KEY_NAMES.items():
        candidates = [value.get(name) for name in names]
        key = next((c.strip() for c in candidates if isinstance(c, str) and c.strip()), None)
        if key is None:
            raise SecretMisconfiguredError(f"secret {secret_id!r} has no {' or '.join(names)}")
        found[field] = key
    return DatadogKeys(api_key=found["api_key"], app_key=found["app_key"])


def _aws_error_message(error: BaseException | None) -> str:
    response = getattr(error, "response", None)
    message = response.get("Error", {}).get("Message") if isinstance(response, dict) else None
    return message if isinstance(message, str) else ""


def _aws_error_code(error: BaseException | None) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None
