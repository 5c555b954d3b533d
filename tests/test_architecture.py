"""The layout's promises (ARCHITECTURE.md), checked on the import graph of the shipped packages.

Every ``import`` and ``from ... import`` of a module counts, also those inside functions: a late
import is still a dependency. Dependencies point one way:

- ``canonical`` imports none of the project's packages;
- ``rules`` and ``connectors`` import only ``canonical``, never each other;
- ``sandbox`` (the local CRM) imports none of the product's packages, and the product imports it
  only from the ``sandbox`` and ``demo`` commands;
- ``sync_service.store`` imports only ``canonical`` and itself (its migrations' env may read the
  settings, to find the database);
- the stages never import the command line, the commands or the HTTP app;
- nothing shipped imports ``tests`` or ``bench``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("canonical", "connectors", "rules", "sandbox", "sync_service")
STAGES = ("sync", "evaluate", "writeback", "report", "privacy", "mapping", "store", "match")
ENTRY_POINTS = ("sync_service.cli", "sync_service.commands", "sync_service.api")
SANDBOX_USERS = ("sync_service.commands.sandbox", "sync_service.commands.demo")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Each imported module's absolute dotted name with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _module_name(path)
                if path.name != "__init__.py":
                    package = package.rpartition(".")[0]
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield name, node.lineno
            # ``from pkg import module`` imports pkg.module when it is one
            for alias in node.names:
                yield f"{name}.{alias.name}", node.lineno


def _graph() -> list[tuple[str, str, str]]:
    """(importer module, imported project module, file:line) for every project import."""
    edges = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            importer = _module_name(path)
            for imported, line in _imports(path):
                top = imported.split(".")[0]
                if top in (*PACKAGES, "tests", "bench"):
                    where = f"{path.relative_to(ROOT)}:{line}"
                    edges.append((importer, imported, where))
    return edges


def _within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


GRAPH = _graph()


def _violations(importers: tuple[str, ...], allowed: tuple[str, ...]) -> list[str]:
    return [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in GRAPH
        if _within(importer, *importers) and not _within(imported, *allowed)
    ]


def test_the_graph_is_read() -> None:
    # A parser that found nothing would make every rule below pass.
    assert len(GRAPH) > 300
    assert any(_within(i, "sync_service.commands.demo") for i, _, _ in GRAPH)


@pytest.mark.parametrize(
    ("importers", "allowed"),
    [
        (("canonical",), ("canonical",)),
        (("rules",), ("canonical", "rules")),
        (("connectors",), ("canonical", "connectors")),
        (("sandbox",), ("sandbox",)),
        (("sync_service.store",), ("canonical", "sync_service.store")),
    ],
    ids=["canonical", "rules", "connectors", "sandbox", "store"],
)
def test_lower_layers_import_only_what_is_below_them(
    importers: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    found = _violations(importers, allowed)
    # the migration environment finds the database through the settings, as the CLI does
    found = [v for v in found if "store/migrations/env.py" not in v]
    assert not found, "\n".join(found)


def test_the_matching_ranking_is_pure() -> None:
    # sync_service.match.rank ranks frames; reading and writing the store is the stage's job.
    found = [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in GRAPH
        if importer == "sync_service.match.rank"
    ]
    assert not found, "\n".join(found)


def test_only_the_sandbox_and_demo_commands_import_the_sandbox() -> None:
    found = [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in GRAPH
        if _within(imported, "sandbox") and not _within(importer, "sandbox", *SANDBOX_USERS)
    ]
    assert not found, "\n".join(found)


def test_stages_never_import_the_command_line_or_the_http_app() -> None:
    stages = tuple(f"sync_service.{s}" for s in STAGES)
    found = [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in GRAPH
        if _within(importer, *stages) and _within(imported, *ENTRY_POINTS)
    ]
    assert not found, "\n".join(found)


def test_nothing_shipped_imports_tests_or_benchmarks() -> None:
    found = [
        f"{where}: {importer} imports {imported}"
        for importer, imported, where in GRAPH
        if _within(imported, "tests", "bench")
    ]
    assert not found, "\n".join(found)


def test_a_violation_would_be_found(tmp_path: Path) -> None:
    # The checker itself: a module importing upwards is reported with its file and line.
    bad = tmp_path / "probe.py"
    bad.write_text("def f():\n    from sync_service.cli import main\n", encoding="utf-8")
    assert list(_imports(bad)) == [("sync_service.cli", 2), ("sync_service.cli.main", 2)]
