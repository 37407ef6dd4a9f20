"""`python -m llmobs_actions.cli`: the llmobs-actions command."""

import sys

from llmobs_actions.cli import main

sys.exit(main())
