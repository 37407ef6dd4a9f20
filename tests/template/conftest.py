"""Template fixtures: the SAM CLI's own virtualenv (.venv-sam), the translated template, a resolver."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.template import TEMPLATE, Resolver, load
from tests.conftest import ROOT, computed_once

SAM_VENV = ROOT / ".venv-sam" / "bin"


def sam_environment(tmp: Path) -> dict[str, str]:
    """No credentials, no telemetry, SAM's metadata kept out of the home directory."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return keep | {"AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0", "__SAM_CLI_APP_DIR": str(tmp)}


@pytest.fixture(scope="session")
def sam_bin() -> Path:
    if not (SAM_VENV / "sam").exists():
        pytest.fail("the SAM CLI is missing: `make test` installs it into .venv-sam")
    return SAM_VENV


@pytest.fixture(scope="session")
def translated(sam_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """template.yaml as CloudFormation, translated offline by aws-sam-translator (the code `sam deploy` runs)."""

    def translate() -> dict[str, Any]:
        result = subprocess.run(  # noqa: S603 (our own script and interpreter)
            [str(sam_bin / "python"), str(ROOT / "tests" / "template" / "translate.py"), str(TEMPLATE)],
            capture_output=True,
            text=True,
            check=False,
            env=sam_environment(tmp_path_factory.mktemp("sam")),
        )
        assert result.returncode == 0, result.stderr
        translated: dict[str, Any] = json.loads(result.stdout)
        return translated

    shared: dict[str, Any] = computed_once(tmp_path_factory, "translated-template", translate)
    return shared


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load(TEMPLATE)


def resolved(translated: dict[str, Any], **parameters: str) -> dict[str, dict[str, Any]]:
    """The translated template's resources for one set of parameter values (defaults otherwise)."""
    return Resolver(translated, parameters).resources()
