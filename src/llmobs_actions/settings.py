"""Settings: the function's whole configuration, read from the environment once per cold start."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DATADOG_SITES: tuple[str, ...] = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)

# Environment variable -> settings field. The template sets these; tests check the two agree.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "DD_SITE": "datadog_site",
    "DD_API_URL": "datadog_api_url",
    "DD_SECRET_ID": "secret_id",
    "DD_SECRET_MAX_AGE_SECONDS": "secret_max_age_seconds",
    "DD_CONNECT_TIMEOUT_SECONDS": "connect_timeout_seconds",
    "DD_READ_TIMEOUT_SECONDS": "read_timeout_seconds",
    "DEAD_LETTER_QUEUE_URL": "dead_letter_queue_url",
    "IDEMPOTENCY_TABLE": "idempotency_table",
    "IDEMPOTENCY_EXPIRY_SECONDS": "idempotency_expiry_seconds",
    "MAX_EXPERIMENT_IDS": "max_experiment_ids",
    "DELETE_CHUNK_SIZE": "delete_chunk_size",
    "MAX_WORKERS": "max_workers",
    "MAX_RETRY_DELAY_SECONDS": "max_retry_delay_seconds",
    "MAX_THROTTLE_WAIT_SECONDS": "max_throttle_wait_seconds",
    "RETRY_BASE_DELAY_SECONDS": "retry_base_delay_seconds",
    "RETRY_BACKOFF_FACTOR": "retry_backoff_factor",
    "MIN_REMAINING_TIME_MS": "min_remaining_time_ms",
    "RESULT_EVENT_BUS": "result_event_bus",
    "RESULT_EVENT_SOURCE": "result_event_source",
    "PROTECT_METADATA_KEY": "protect_metadata_key",
    "BACKUP_BUCKET": "backup_bucket",
    "BACKUP_PREFIX": "backup_prefix",
    "ACTIONS_QUEUE_URL": "actions_queue_url",
}
REQUIRED_ENVIRONMENT_VARIABLES: tuple[str, ...] = ("DD_SECRET_ID", "DEAD_LETTER_QUEUE_URL")

# Hard ceiling of the contract; MAX_EXPERIMENT_IDS may only lower it.
EXPERIMENT_IDS_CEILING = 10_000
# SQS refuses visibility timeouts above 12 hours.
SQS_MAX_VISIBILITY_SECONDS = 43_200
# A Datadog call is started only when its answer can be waited for this long...
MIN_READ_SECONDS = 2.0
# ...with this much left afterwards to settle the message (DLQ, visibility, idempotency record).
SETTLE_SECONDS = 1.0


class ConfigurationError(Exception):
    """The environment does not describe a working function; raised at cold start."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    secret_id: str = Field(min_length=1)
    dead_letter_queue_url: str = Field(min_length=1)
    datadog_site: str = "datadoghq.com"
    datadog_api_url: str | None = None
    idempotency_table: str | None = None  # DynamoDB table of the idempotency records; unset turns it off
    idempotency_expiry_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    secret_max_age_seconds: int = Field(default=300, ge=0)
    connect_timeout_seconds: float = Field(default=3.05, gt=0, le=60)
    read_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    max_experiment_ids: int = Field(default=1000, ge=1, le=EXPERIMENT_IDS_CEILING)
    delete_chunk_size: int = Field(default=100, ge=1, le=EXPERIMENT_IDS_CEILING)
    max_workers: int = Field(default=10, ge=1, le=100)  # a default batch of 10 waits on Datadog once
    max_retry_delay_seconds: int = Field(default=3600, ge=1, le=SQS_MAX_VISIBILITY_SECONDS)
    # A rate-limit window that resets within this many seconds is waited for in the invocation.
    max_throttle_wait_seconds: float = Field(default=10.0, ge=0, le=600)
    retry_base_delay_seconds: int = Field(default=30, ge=0, le=SQS_MAX_VISIBILITY_SECONDS)
    retry_backoff_factor: float = Field(default=6.0, ge=1, le=20)
    min_remaining_time_ms: int | None = Field(default=None, ge=0)
    # Where final outcomes are announced (a bus name or ARN); unset: no result events.
    result_event_bus: str | None = Field(default=None, max_length=1600)
    result_event_source: str = Field(default="llmobs.actions", min_length=1, max_length=256)
    # A dataset or experiment whose metadata has this key set to true is never pruned.
    protect_metadata_key: str = Field(default="keep", min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    # Where exports go (an S3 bucket name) and under which key prefix; no bucket: no export, backup or import.
    backup_bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    backup_prefix: str = Field(
        default="llmobs-actions/", max_length=512, pattern=r"^([^/\x00-\x1f\x7f][^\x00-\x1f\x7f]*/)?$"
    )
    # The actions queue: where a direct invocation's long work continues (an SQS message's goes to its queue).
    actions_queue_url: str | None = None

    @field_validator("datadog_site")
    @classmethod
    def _known_site(cls, site: str) -> str:
        if site not in DATADOG_SITES:
            raise ValueError(f"unknown Datadog site {site!r}; allowed: {', '.join(DATADOG_SITES)}")
        return site

    @field_validator("datadog_api_url")
    @classmethod
    def _safe_api_url(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            # Keys travel in headers: plain HTTP is only acceptable when nothing leaves the machine.
            raise ValueError("plain http:// is allowed only for loopback hosts; use https://")
        if parts.query or parts.fragment:
            raise ValueError(f"{url!r} must not carry a query or fragment")
        return url.rstrip("/")

    @property
    def datadog_base_url(self) -> str:
        return self.datadog_api_url or f"https://api.{self.datadog_site}"

    @property
    def call_budget_ms(self) -> int:
        """Time a record needs left before it may start a Datadog call (its read timeout shrinks to fit)."""
        if self.min_remaining_time_ms is not None:
            return self.min_remaining_time_ms
        return int((self.connect_timeout_seconds + MIN_READ_SECONDS + SETTLE_SECONDS) * 1000)

    def read_timeout_for(self, remaining_ms: int) -> float:
        """A call's read timeout: DD_READ_TIMEOUT_SECONDS, cut so that the answer comes before the deadline."""
        fits = remaining_ms / 1000 - self.connect_timeout_seconds - SETTLE_SECONDS
        return max(0.1, min(self.read_timeout_seconds, fits))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_ENVIRONMENT_VARIABLES if not env.get(name)]
        if missing:
            raise ConfigurationError(f"missing required environment variable(s): {', '.join(missing)}")
        values = {field: env[name] for name, field in ENVIRONMENT_VARIABLES.items() if env.get(name, "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            field_to_variable = {field: name for name, field in ENVIRONMENT_VARIABLES.items()}
            problems = [
                f"{field_to_variable.get(str(issue['loc'][0]), issue['loc'][0]) if issue['loc'] else 'settings'}: "
                f"{issue['msg']}"
                for issue in error.errors(include_url=False, include_input=False)
            ]
            raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
