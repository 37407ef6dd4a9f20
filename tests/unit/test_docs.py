"""The README guides and the docs hold the rest: a short README whose links all lead somewhere, and a
deploying page whose parameter table is the template's."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from tests.doc_blocks import DOCUMENTS, ROOT

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.DOTALL | re.MULTILINE)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _template() -> dict[str, object]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    loaded: dict[str, object] = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    return loaded


def test_the_readme_is_at_most_200_lines() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_of_the_readme_and_docs_leads_to_a_file_and_heading_that_exist() -> None:
    for page in DOCUMENTS:
        for target in _LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            linked = (page.parent / file).resolve() if file else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor:
                assert anchor in _anchors(linked), f"{page.name}: {target} (no such heading)"


def test_the_readme_leads_to_every_page_of_the_docs() -> None:
    linked = {target.partition("#")[0] for target in _LINK.findall((ROOT / "README.md").read_text())}
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in linked, page.name


def test_the_parameter_table_lists_every_parameter_with_its_default() -> None:
    parameters = _template()["Parameters"]
    assert isinstance(parameters, dict)
    page = (ROOT / "docs" / "deploying.md").read_text()
    section = page[page.index("\n## Parameters\n") :].split("\n## ", 2)[1]
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| \**`(\w+)`\** \| ([^|]*) \|", section, re.MULTILINE)
    }
    assert set(rows) == set(parameters)
    for name, declared in parameters.items():
        default = str(declared.get("Default", ""))
        assert rows[name].strip() == (f"`{default}`" if default else "empty"), name


def test_every_template_parameter_says_what_it_is() -> None:
    parameters = _template()["Parameters"]
    assert isinstance(parameters, dict)
    assert [name for name, declared in parameters.items() if not declared.get("Description")] == []


def test_the_dev_profile_does_not_log_at_debug() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = config["default"]["deploy"]["parameters"]["parameter_overrides"]
    assert 'LogLevel="DEBUG"' not in overrides
    assert 'LogLevel="INFO"' in overrides
