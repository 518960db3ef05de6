"""The package layout follows the stages: imports point down the pipeline, never up.

What is checked, from the source alone (``ast``, nothing is imported):

- Every ``import sybilgnn...`` / ``from sybilgnn... import ...`` counts, at module level and
  inside functions alike (a lazy import hides a dependency from start-up, not from the
  design); imports under ``if TYPE_CHECKING:`` do not (they never run).
- Each top-level module or subpackage of ``sybilgnn`` has a place in ``STAGE_ORDER``
  (foundations first, then the stages in pipeline order: event tables -> ingest -> Neo4j
  -> export -> Snapshot -> training/tuning -> registry -> scoring -> write-back -> Browser
  and reports). A package may import only packages listed before it; ``ALLOWED_UPWARD``
  lists the known exceptions, each with its reason. A new subpackage must be given a place.
- ``sybilgnn.neo4j`` is the server side only: lifecycle, plugin, connections, queries.
- No import cycle between any two modules of ``sybilgnn`` (within a package too), so no
  module needs a function-level import to dodge one.

Not checked: the import of a package's ``__init__`` that importing one of its modules runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sybilgnn"

#: Bottom first: a package may import only packages listed before it.
STAGE_ORDER = (
    # foundations: errors, settings, process helpers, the graph schema, the snapshot
    # format and its preprocessing, account features, model definitions
    "errors", "config", "processes", "graph_schema", "data", "features", "models",
    # metrics at the population's prevalence, intervals, paired comparisons
    "measures",
    # the Neo4j server side (lifecycle, procedures plugin, connections, Cypher quoting)
    "neo4j",
    # event tables -> Neo4j -> Snapshot
    "simulate", "ingest", "export",
    # Snapshot -> model -> MLflow
    "training", "evaluation", "registry", "tuning", "retrain",
    # model -> scores, flags, fleets, evidence written back -> analysts
    "scoring", "browser", "reporting",
    # over time, end to end, command line
    "replay", "pipeline", "cli", "__main__",
)

#: (importing module or package, imported module) -> why it may point up the order.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}

#: What ``sybilgnn.neo4j`` may import: it must not know about any stage above it.
NEO4J_MAY_IMPORT = {"config", "errors", "processes"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _imports(module: str) -> set[str]:
    """The ``sybilgnn`` modules that ``module`` imports (the most specific one named)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if MODULES[module].name == "__init__.py" else \
                    module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: _imports(module) for module in MODULES}


def _stage(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def _allowed(importer: str, imported: str) -> bool:
    return any((importer == a or importer.startswith(a + ".")) and imported == b
               for a, b in ALLOWED_UPWARD)


def test_every_package_has_a_place_in_the_stage_order() -> None:
    stages = {_stage(m) for m in MODULES if m != "sybilgnn"}
    assert not stages - set(STAGE_ORDER), "give these a place in STAGE_ORDER"


def test_imports_point_down_the_stages() -> None:
    rank = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    upward = sorted(f"{importer} -> {imported}"
                    for importer, targets in GRAPH.items() if importer != "sybilgnn"
                    for imported in targets if imported != "sybilgnn"
                    and _stage(imported) != _stage(importer)
                    and rank[_stage(imported)] > rank[_stage(importer)]
                    and not _allowed(importer, imported))
    assert not upward, "imports up the stage order (move the shared code down):\n" + \
        "\n".join(upward)


def test_allowed_upward_imports_still_happen() -> None:
    stale = [pair for pair in ALLOWED_UPWARD
             if not any(_allowed(importer, imported) for importer, targets in GRAPH.items()
                        for imported in targets if imported == pair[1])]
    assert not stale, f"remove from ALLOWED_UPWARD, no longer imported: {stale}"


def test_neo4j_is_the_server_side_only() -> None:
    imported = {_stage(target) for module, targets in GRAPH.items()
                if _stage(module) == "neo4j" for target in targets} - {"neo4j"}
    assert imported <= NEO4J_MAY_IMPORT, \
        f"sybilgnn.neo4j imports {sorted(imported - NEO4J_MAY_IMPORT)}"


def test_no_import_cycles_between_modules() -> None:
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(GRAPH[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    assert not cycles, "modules importing each other (directly or around a loop):\n" + \
        "\n".join(", ".join(c) for c in cycles)


def test_the_checker_sees_function_level_imports() -> None:
    """Guard against a checker that silently misses lazy imports."""
    assert "sybilgnn.export" in GRAPH["sybilgnn.cli.export_cmd"]
