"""The house keeps its shape: docs/architecture.md names every module once, imports run one way and make
no circle, no module grows past 600 lines, and private names stay in the module that owns them (another
library's only in the one compatibility module that borrows it)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "mockserver")
PAGE = ROOT / "docs" / "architecture.md"
MAX_LINES = 600
COMPAT_MODULES = {  # the one module per library that may touch that library's private names
    "hypothesis": "contract.compat.hypothesis",
    "hypothesis_jsonschema": "contract.compat.hypothesis_jsonschema",
    "httpx": "contract.compat.httpx",
    "httpcore": "contract.compat.httpx",
    "uvicorn": "mockserver.uvicorn_compat",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _imports(name: str, path: Path) -> Iterator[tuple[str, list[str], int]]:
    """Each import of the module: what it imports from, the names taken, the line (lazy imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, [alias.name for alias in node.names], node.lineno


def _first_party_edges() -> dict[str, set[str]]:
    """Module -> the project's modules it imports (``from pkg import module`` counts as the module)."""
    sources = _sources()
    edges: dict[str, set[str]] = {name: set() for name in sources}
    for name, path in sources.items():
        for target, names, _line in _imports(name, path):
            for candidate in [f"{target}.{item}" for item in names] or [target]:
                if candidate in sources:
                    edges[name].add(candidate)
                elif target in sources and target != name:
                    edges[name].add(target)
    return edges


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def _is_package_init_edge(source: str, target: str) -> bool:
    """A package's ``__init__`` naming its own modules, and a module taking a sibling from its package."""
    return target.startswith(source + ".") or source.startswith(target + ".")


def test_no_import_circle() -> None:
    edges = {
        name: {target for target in targets if not _is_package_init_edge(name, target)}
        for name, targets in _first_party_edges().items()
    }
    assert _circles(edges) == [], "modules that import each other, directly or round a circle"


def test_imports_run_from_the_mock_to_the_checker_to_the_core() -> None:
    wrong = []
    for name, targets in _first_party_edges().items():
        for target in targets:
            if name.startswith("contract") and target.startswith("mockserver"):
                wrong.append(f"{name} -> {target}: the contract side never imports the mock")
            if name.startswith("contract.core") and not target.startswith("contract.core") and target != "contract":
                wrong.append(f"{name} -> {target}: the core imports only the core")
    assert wrong == []


def test_no_module_is_over_600_lines() -> None:
    long = {name: n for name, path in _sources().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these along a seam that is one job (at most {MAX_LINES} lines)"


def _all_python() -> Iterator[tuple[str, Path]]:
    yield from _sources().items()
    for folder in ("tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "node_modules" not in path.parts:
                yield f"{folder}.{path.stem}", path


def test_no_private_name_is_imported_from_another_module() -> None:
    borrowed = []
    for name, path in _all_python():
        for target, names, line in _imports(name, path):
            for item in names:
                if not item.startswith("_") or item.startswith("__"):
                    continue
                library = target.split(".")[0]
                if COMPAT_MODULES.get(library) == name:
                    continue  # the compatibility module of that library
                borrowed.append(f"{path.relative_to(ROOT)}:{line}: from {target} import {item}")
    assert borrowed == [], "make the name public in the module that owns it (or borrow it in its compat module)"


def test_other_libraries_private_attributes_are_touched_only_in_their_compat_module() -> None:
    touched = []
    for name, path in _sources().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        libraries: dict[str, str] = {}  # a local name -> the third-party library it is
        for target, names, _line in _imports(name, path):
            library = target.split(".")[0]
            if library in COMPAT_MODULES:
                libraries.update({item: library for item in names} if names else {library: library})
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in libraries
                and COMPAT_MODULES[libraries[node.value.id]] != name
            ):
                touched.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert touched == []


def _page_modules() -> list[str]:
    return re.findall(r"^\| `((?:contract|mockserver)/[\w/]+\.py)` \|", PAGE.read_text(encoding="utf-8"), re.M)


def test_the_architecture_page_names_every_module_once() -> None:
    named = _page_modules()
    present = sorted(str(path.relative_to(ROOT)) for path in _sources().values() if path.name != "__init__.py")
    doubled = sorted({module for module in named if named.count(module) > 1})
    assert doubled == [], "named twice in docs/architecture.md"
    assert sorted(set(named) - set(present)) == [], "named in docs/architecture.md but gone"
    assert sorted(set(present) - set(named)) == [], "modules docs/architecture.md does not name"
