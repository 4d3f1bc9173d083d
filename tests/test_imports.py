"""Package hygiene for phy, latent_codec and pipeline: no import cycles between modules,
no private names imported across modules, and the one-way layering of DESIGN.md
(phy and latent_codec never import each other, pipeline or experiments; pipeline's
runtime never imports pipeline.embedded). experiments is checked here too (this
check was tests/experiments/test_robustness.py's, for experiments' top level only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("phy", "latent_codec", "pipeline", "experiments")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) for every import in a file, outside ``if TYPE_CHECKING``."""
    name = _module_name(path)
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def _graph(package: str) -> dict[str, set[str]]:
    graph = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        graph[_module_name(path)] = {m for m, _ in _imports(path)}
    return graph


def _internal(graph: dict[str, set[str]], mod: str, names: list[str]) -> list[str]:
    """Modules a ``from mod import names`` statement loads, within the graph (submodules included)."""
    return [m for m in [mod, *(f"{mod}.{n}" for n in names)] if m in graph]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_private_names_imported_across_modules(package):
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        name = _module_name(path)
        for mod, names in _imports(path):
            if not mod.split(".")[0] in (*PACKAGES, "experiments") or mod == name:
                continue
            # a private *module* of the package (phy._sionna_compat) may be imported; a private name may not
            private = [n for n in names if n.startswith("_") and not n.startswith("__")
                       and f"{mod}.{n}" not in _graph(mod.split(".")[0])]
            found += [f"{name}: from {mod} import {n}" for n in private]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    full = _graph(package)
    graph = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = _module_name(path)
        graph[name] = set()
        for mod, names in _imports(path):
            # a package's __init__ re-exporting its modules is the package's face, not an edge back into it
            graph[name].update(m for m in _internal(full, mod, names) if m != name and m != package)

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(m for m in graph if m in reach(m))
    assert not cycles, f"import cycles through {cycles}"


@pytest.mark.parametrize("package, forbidden", [
    ("phy", ("latent_codec", "pipeline", "experiments")),
    ("latent_codec", ("phy", "pipeline", "experiments")),
    ("pipeline", ("experiments",)),
])
def test_imports_flow_one_way(package, forbidden):
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        name = _module_name(path)
        for mod, _ in _imports(path):
            top = mod.split(".")[0]
            if top in forbidden:
                bad.append(f"{name} imports {mod}")
            if (name.startswith("pipeline.") and not name.startswith("pipeline.embedded")
                    and mod.startswith("pipeline.embedded")):
                bad.append(f"{name} (runtime) imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_built_in_codecs_are_registered_explicitly():
    from latent_codec import CODECS
    from latent_codec.config import BUILTIN_CODECS

    assert [c.name for c in BUILTIN_CODECS] == ["float16", "uniform", "lloydmax", "analog"]
    assert all(CODECS[c.name] is c for c in BUILTIN_CODECS)
