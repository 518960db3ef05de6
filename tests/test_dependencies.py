"""The package imports only what pyproject.toml declares (issue: honest dependencies).

Every module under ``sybilgnn/`` is parsed; each absolute import outside the standard
library must come from a distribution listed in ``[project] dependencies`` (the test
extra's packages are for tests only). A dependency that is installed only because
another one pulls it in would break the day that one drops it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {_normalise(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0])
            for spec in project["dependencies"]}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels() -> dict[str, str]:
    """Top-level module -> the first file that imports it."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "sybilgnn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    declared = _declared()
    owners = packages_distributions()
    undeclared = {}
    for module, where in _imported_top_levels().items():
        if module in sys.stdlib_module_names or module in {"sybilgnn", "__future__"}:
            continue
        distributions = {_normalise(d) for d in owners.get(module, [module])}
        if not distributions & declared:
            undeclared[module] = where
    assert undeclared == {}, f"imported but not in [project] dependencies: {undeclared}"


def test_every_declared_dependency_is_imported_or_explained() -> None:
    # neo4j-rust-ext speeds up the neo4j driver's packing without being imported
    runtime_only = {"neo4j-rust-ext"}
    owners = packages_distributions()
    imported = {_normalise(d) for module in _imported_top_levels()
                for d in owners.get(module, [])}
    assert _declared() - imported - runtime_only == set()
