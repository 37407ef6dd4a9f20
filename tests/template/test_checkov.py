"""checkov, the common IaC scanner, passes on template.yaml; every check skipped says why, in the resource."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.conftest import ROOT, computed_once
from tests.template.conftest import TEMPLATE, sam_environment

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail("checkov is missing: `make test` installs it into .venv-checkov")

    def scan() -> dict[str, Any]:
        result = subprocess.run(  # noqa: S603 (checkov of our own virtualenv, offline)
            [str(CHECKOV), "-f", str(TEMPLATE), "--framework", "cloudformation", "--skip-download", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
            env=sam_environment(tmp_path_factory.mktemp("checkov")),
        )
        parsed: dict[str, Any] = json.loads(result.stdout)
        parsed["returncode"] = result.returncode
        return parsed

    shared: dict[str, Any] = computed_once(tmp_path_factory, "checkov-report", scan)
    return shared


def test_checkov_finds_nothing_to_fix(report: dict[str, Any]) -> None:
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert (summary["failed"], failed, report["returncode"]) == (0, [], 0)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 15, "checkov read the template's resources"


def test_every_skipped_check_is_explained_in_the_resource(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert {(c["check_id"], c["resource"]) for c in skipped} == {
        ("CKV_AWS_116", "AWS::Serverless::Function.ActionsFunction"),  # no legacy Lambda DLQ
        ("CKV_AWS_117", "AWS::Serverless::Function.ActionsFunction"),  # no VPC
        ("CKV_AWS_18", "AWS::S3::Bucket.BackupBucket"),  # no server access logs
    }
    for check in skipped:
        assert len(check["check_result"]["suppress_comment"].split()) >= 10, check["check_id"]


def test_the_backup_bucket_passes_every_s3_check_but_access_logging(report: dict[str, Any]) -> None:
    """Versioned, encrypted, public access blocked: satisfied, not skipped."""
    bucket = "AWS::S3::Bucket.BackupBucket"
    passed = {c["check_id"] for c in report["results"]["passed_checks"] if c["resource"] == bucket}
    versioning, encryption, public_acls_and_policies = "CKV_AWS_21", "CKV_AWS_19", {"CKV_AWS_20", "CKV_AWS_57"}
    public_access_block = {"CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"}
    assert passed >= {versioning, encryption} | public_acls_and_policies | public_access_block
