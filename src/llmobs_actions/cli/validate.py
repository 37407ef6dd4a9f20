"""`validate`: a message, an EventBridge event or a whole SQS event file, judged as the function would."""

from __future__ import annotations

import argparse
import json

from llmobs_actions.cli.output import CliError
from llmobs_actions.contract import InvalidAction, parse_action
from llmobs_actions.messages import is_sqs_event, unwrap, unwrap_document


def validate(args: argparse.Namespace) -> int:
    try:
        document = json.loads(args.file.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"{args.file}: {error}") from None
    bodies = [r.get("body") for r in document["Records"]] if is_sqs_event(document) else [None]
    problems = 0
    for number, body in enumerate(bodies, start=1):
        sqs_record = is_sqs_event(document)
        where = f"{args.file} record {number}" if sqs_record else str(args.file)
        try:
            if sqs_record and not isinstance(body, str):
                raise InvalidAction(f"the record's body is not a string ({type(body).__name__})")
            payload = unwrap(body) if isinstance(body, str) else unwrap_document(document)
            action = parse_action(payload.action)
        except InvalidAction as error:
            problems += 1
            print(f"{where}: invalid: {error}")
            continue
        print(f"{where}: valid {action.action}")
    return 1 if problems else 0
