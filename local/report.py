"""How the demo and the events runner print: lines that fit a 100-column terminal."""

from __future__ import annotations

import textwrap

WIDTH = 100


def wrapped(text: str, indent: int = 4) -> str:
    """A line of a report, folded to the width, its continuation lines indented two more."""
    return textwrap.fill(
        text, WIDTH, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2), break_on_hyphens=False
    )


def short(text: str, width: int) -> str:
    """At most `width` characters, an ellipsis saying where it was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"
