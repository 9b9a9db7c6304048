"""pyproject.toml declares every third-party distribution that src/deepexpr imports at module level."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "deepexpr"


def module_level_imports(tree: ast.Module) -> set[str]:
    """Top-level package names imported by the module body (also inside top-level try/if blocks)."""
    names = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, (ast.Try, ast.If)):
            pending.extend([*node.body, *node.orelse, *getattr(node, "handlers", []), *getattr(node, "finalbody", [])])
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)
    return names


def third_party_imports() -> dict[str, list[str]]:
    """Imported top-level name -> files importing it at module level (stdlib and deepexpr left out)."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for name in module_level_imports(ast.parse(path.read_text())):
            if name not in sys.stdlib_module_names and name != "deepexpr":
                found.setdefault(name, []).append(str(path.relative_to(SRC.parent)))
    return found


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def declared_dependencies() -> set[str]:
    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]
    return {normalise(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]) for requirement in project["dependencies"]}


def test_module_level_imports_are_declared_dependencies():
    distributions = importlib.metadata.packages_distributions()
    declared = declared_dependencies()
    missing = {}
    for name, files in third_party_imports().items():
        provided_by = {normalise(d) for d in distributions.get(name, [name])}
        if not provided_by & declared:
            missing[name] = (sorted(provided_by), files)
    assert not missing, f"add to [project] dependencies in pyproject.toml: {missing}"


def test_the_check_sees_the_imports():
    # A module that imports torch at top level and scanpy only in a function.
    tree = ast.parse("import torch\nfrom scipy import stats\n\ndef f():\n    import scanpy\n")
    assert module_level_imports(tree) == {"torch", "scipy"}
    assert {"torch", "captum", "h5py", "jsonschema"} <= set(third_party_imports())
