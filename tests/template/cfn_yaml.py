"""Read CloudFormation YAML (short-form intrinsics included) and resolve it for one set of parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt, !Sub, ... as their long forms ({"Ref": ...}, {"Fn::GetAtt": [...]})."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=CloudFormationLoader)  # noqa: S506 (a SafeLoader subclass)


_NO_VALUE = object()


class Resolver:
    """Evaluates Ref (to parameters), Fn::If, Fn::Equals/Not/And/Or and Fn::FindInMap for given parameters.

    References to resources stay symbolic ({"Ref": "X"}, {"Fn::GetAtt": [...]}), so assertions can name them.
    """

    def __init__(self, template: dict[str, Any], overrides: dict[str, str] | None = None) -> None:
        self.template = template
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
        } | (overrides or {})
        self.conditions = {name: self._truth(body) for name, body in template.get("Conditions", {}).items()}

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this parameter set creates, fully resolved."""
        return {
            name: self.resolve(resource)
            for name, resource in self.template["Resources"].items()
            if self.conditions.get(resource.get("Condition", ""), True)
        }

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref" and value == "AWS::NoValue":
                return _NO_VALUE
            if key == "Ref" and value in self.parameters:
                return self.parameters[value]
            if key == "Fn::If":
                condition, then, otherwise = value
                return self.resolve(then if self.conditions[condition] else otherwise)
            if key == "Fn::FindInMap":
                mapping, first, second = (self.resolve(part) for part in value)
                return self.template["Mappings"][mapping][str(first)][second]
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def _truth(self, body: Any) -> bool:
        ((key, value),) = body.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(v) for v in value)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(value[0])
        if key == "Fn::And":
            return all(self._truth(v) for v in value)
        if key == "Fn::Or":
            return any(self._truth(v) for v in value)
        if key == "Condition":
            return self._truth(self.template["Conditions"][value])
        raise ValueError(f"unsupported condition {key}")
