"""`env`: the export lines that point the command at a deployed stack, read from its outputs."""

from __future__ import annotations

import argparse
import shlex

from llmobs_actions.cli.output import DLQ_URL_VARIABLE, QUEUE_URL_VARIABLE, RESULT_BUS_VARIABLE, CliError, client

# The stack's outputs the command reads, under the names it reads them by (and the docs' examples use).
EXPORTED = {
    "ActionsQueueUrl": (QUEUE_URL_VARIABLE, "QUEUE_URL"),
    "ActionsDeadLetterQueueUrl": (DLQ_URL_VARIABLE, "DLQ_URL"),
    "ResultEventBusName": (RESULT_BUS_VARIABLE,),
}


def env(args: argparse.Namespace) -> int:
    """Print `export NAME=value` for each of the stack's outputs the command uses: eval "$(...)" takes them."""
    stacks = client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"]
    outputs = {output["OutputKey"]: output.get("OutputValue", "") for output in stacks[0].get("Outputs", [])}
    missing = [key for key in EXPORTED if key not in outputs]
    if missing:
        raise CliError(f"stack {args.stack_name!r} has no output {', '.join(missing)}: is it llmobs-actions'?")
    for key, names in EXPORTED.items():
        for name in names:
            print(f"export {name}={shlex.quote(outputs[key])}")
    return 0
