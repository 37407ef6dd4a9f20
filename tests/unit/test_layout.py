"""The house stays easy to walk: no module imports upward, none is longer than 400 lines, no class than 150.

A message goes handler -> processing -> (settlement) -> actions -> datadog; a room may use the rooms below it,
never one above (a circle would follow)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "llmobs_actions"
# Lowest first; a room may import from its own layer and the ones before it.
LAYERS = [
    {"__init__", "settings", "templates", "observability", "aws_clients", "attempts"},
    {"contract", "datadog"},
    {"messages", "keys"},
    {"failures"},
    {"backups", "actions", "idempotency", "queues", "results", "outcomes", "dead_letters"},
    {"settlement", "result_watch"},
    {"processing"},
    {"handler"},
    {"cli"},
]
LAYER_OF = {room: number for number, rooms in enumerate(LAYERS) for room in rooms}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def room_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_rooms(path: Path) -> set[str]:
    rooms: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmobs_actions"):
            parts = node.module.split(".")
            rooms |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            rooms |= {a.name.split(".")[1] for a in node.names if a.name.startswith("llmobs_actions.")}
    return rooms


def test_every_room_has_a_layer() -> None:
    assert {room_of(path) for path in modules()} <= set(LAYER_OF)


def test_no_module_imports_upward() -> None:
    upward = [
        f"{path.relative_to(PACKAGE)} imports {room}"
        for path in modules()
        for room in imported_rooms(path)
        if room in LAYER_OF and LAYER_OF[room] > LAYER_OF[room_of(path)]
    ]
    assert upward == []


def test_no_module_is_longer_than_400_lines_nor_a_class_than_150() -> None:
    long_modules = [f"{p.relative_to(PACKAGE)}: {n}" for p in modules() if (n := p.read_text().count("\n")) > 400]
    long_classes = [
        f"{path.relative_to(PACKAGE)}:{node.name}: {node.end_lineno - node.lineno + 1}"
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > 150
    ]
    assert (long_modules, long_classes) == ([], [])


def test_every_action_of_the_contract_has_its_module_in_the_registry() -> None:
    from llmobs_actions.actions.registry import ACTIONS
    from llmobs_actions.contract import ACTION_MODELS, ACTION_NAMES

    assert set(ACTIONS) == set(ACTION_NAMES)
    assert {action.model for action in ACTIONS.values()} == set(ACTION_MODELS)
