"""Translate template.yaml (SAM) to plain CloudFormation JSON, offline, with AWS's own SAM translator.

Run by the SAM CLI's virtualenv (aws-sam-translator pins an older pydantic than the function uses):
    .venv-sam/bin/python tests/template/translate.py template.yaml '{"ParameterName": "value"}'
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for local.template
from local.template import load


def main() -> None:
    template_path, parameters = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    sam = load(Path(template_path))
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://llmobs-actions-code/code.zip"  # the translator needs S3
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.Session(region_name="us-east-1"),  # region and partition only; no API call
    )
    cloudformation = translator.translate(
        sam_template=sam, parameter_values=parameters, get_managed_policy_map=lambda: {}
    )
    json.dump(cloudformation, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main()
