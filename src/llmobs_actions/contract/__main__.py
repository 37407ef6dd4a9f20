"""`python -m llmobs_actions.contract > schemas/action.v1.schema.json`: the published schema."""

import json
import sys

from llmobs_actions.contract import action_json_schema

json.dump(action_json_schema(), sys.stdout, indent=2, sort_keys=True)
sys.stdout.write("\n")
