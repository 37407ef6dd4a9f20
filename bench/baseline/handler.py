"""The yardstick: what a competent user writes without llmobs-actions. It does not ship.

boto3 for the secret, Datadog's official client with retries on (as its docs suggest), a plain loop over
the SQS records, failures reported as batch item failures. No Powertools, no dead-lettering with reasons,
no idempotency, no concurrency.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import boto3
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v2.api.agent_observability_api import AgentObservabilityApi
from datadog_api_client.v2.model.llm_obs_dataset_clone_data_attributes_request import (
    LLMObsDatasetCloneDataAttributesRequest,
)
from datadog_api_client.v2.model.llm_obs_dataset_clone_data_request import LLMObsDatasetCloneDataRequest
from datadog_api_client.v2.model.llm_obs_dataset_clone_request import LLMObsDatasetCloneRequest
from datadog_api_client.v2.model.llm_obs_dataset_type import LLMObsDatasetType

warnings.filterwarnings("ignore", message="Using unstable operation")

_secrets = boto3.client("secretsmanager")
_keys = json.loads(_secrets.get_secret_value(SecretId=os.environ["DD_SECRET_ID"])["SecretString"])
_configuration = Configuration(
    host=os.environ.get("DD_API_URL") or f"https://api.{os.environ.get('DD_SITE', 'datadoghq.com')}",
    api_key={"apiKeyAuth": _keys["api_key"], "appKeyAuth": _keys["app_key"]},
)
_configuration.enable_retry = True
_configuration.unstable_operations["clone_llm_obs_dataset"] = True
_configuration.request_timeout = (3.05, 15)
_api = AgentObservabilityApi(ApiClient(_configuration))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event["Records"]:
        try:
            action = json.loads(record["body"])
            body = LLMObsDatasetCloneRequest(
                data=LLMObsDatasetCloneDataRequest(
                    id=action["dataset_id"],
                    type=LLMObsDatasetType.DATASETS,
                    attributes=LLMObsDatasetCloneDataAttributesRequest(name=action["name"]),
                )
            )
            _api.clone_llm_obs_dataset(action["project_id"], action["dataset_id"], body)
        except (ApiException, KeyError, ValueError, OSError) as error:
            print(f"failed {record['messageId']}: {error}")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
