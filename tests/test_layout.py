"""The house's layout, kept by reading every module's imports (ast): who may import whom.

- A module uses another module's public names only: no `_private` name imported or reached through a module,
  and where a module declares `__all__`, only the names in it.
- `glm_mcp/server/` is the MCP plumbing: it imports no tool (`glm_mcp.tools`) and not the composition root.
- A room of `glm_mcp/tools/` (a tool family) imports no other room: they share only the modules beside them.
- `glm_mcp/glm/` (the upstream client) and `glm_mcp/jobs/` (the domain) know nothing of MCP or of the server.
- `glm_mcp/emulator/` imports nothing else of the project, so it checks the client rather than sharing its mistakes.
- No module imports, at its top, one that imports it back.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from glm_mcp.tools.table import TOOLS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "glm_mcp"
ROOMS = frozenset(spec.handler.__module__ for spec in TOOLS)
"""The rooms: the modules that hold a tool's handler."""


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module."""
    target: str
    """The module imported, or imported from."""
    name: str | None
    """The name imported from `target` (None for `import target`)."""
    line: int

    def __str__(self) -> str:
        what = f"from {self.target} import {self.name}" if self.name else f"import {self.target}"
        return f"{self.module}:{self.line}: {what}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imports(module: str, path: Path) -> list[Import]:
    """Every import of `module`, at any depth (a function's lazy imports too), relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([target] if target else [])])
            found += [Import(module, target, alias.name, node.lineno) for alias in node.names]
    return found


@cache
def declared_all(path: Path) -> frozenset[str] | None:
    """The names in a module's `__all__`, when it declares one."""
    for node in tree(path).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return frozenset(ast.literal_eval(node.value))
    return None


def every_import() -> list[Import]:
    return [found for module, path in modules().items() for found in imports(module, path)]


def test_modules_use_each_others_public_names_only() -> None:
    known = modules()
    wrong = []
    for found in every_import():
        if not found.target.startswith("glm_mcp") or found.name is None or found.target == found.module:
            continue
        if f"{found.target}.{found.name}" in known:  # a submodule, imported from its package
            continue
        public = declared_all(known[found.target]) if found.target in known else None
        private = found.name.startswith("_") and not found.name.endswith("__")  # a dunder (`__version__`) is public
        if private or (public is not None and found.name not in public):
            wrong.append(str(found))
    assert not wrong, "private names imported from another module:\n" + "\n".join(wrong)


def test_no_module_reaches_into_another_modules_private_names() -> None:
    """`from glm_mcp.x import y` then `y._z`, or `import glm_mcp.x as y` then `y._z`."""
    known = modules()
    wrong = []
    for module, path in known.items():
        aliases: dict[str, str] = {}
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("glm_mcp"):
                for alias in node.names:
                    if f"{node.module}.{alias.name}" in known:
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("glm_mcp") and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree(path)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and aliases[node.value.id] != module
            ):
                wrong.append(f"{module}:{node.lineno}: {aliases[node.value.id]}.{node.attr}")
    assert not wrong, "private names reached through a module:\n" + "\n".join(wrong)


def _imports_of(prefix: str) -> list[Import]:
    return [found for found in every_import() if found.module == prefix or found.module.startswith(prefix + ".")]


def _within(target: str, packages: tuple[str, ...]) -> bool:
    return any(target == package or target.startswith(package + ".") for package in packages)


def test_the_plumbing_knows_no_tool() -> None:
    wrong = [str(f) for f in _imports_of("glm_mcp.server") if _within(f.target, ("glm_mcp.tools", "glm_mcp.app"))]
    wrong += [
        str(f)
        for f in _imports_of("glm_mcp.server")
        if f.target == "glm_mcp" and f.name in ("tools", "app")  # `from glm_mcp import tools`
    ]
    assert not wrong, "glm_mcp/server/ imports a tool:\n" + "\n".join(wrong)


def test_a_room_imports_no_other_room() -> None:
    assert {"glm_mcp.tools.chat", "glm_mcp.tools.jobs"} <= ROOMS, ROOMS  # the walk sees the rooms
    wrong = []
    for room in ROOMS:
        for found in _imports_of(room):
            target = f"{found.target}.{found.name}" if found.target == "glm_mcp.tools" else found.target
            if target in ROOMS and target != room:
                wrong.append(str(found))
    assert not wrong, "rooms share only the modules beside them:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("glm_mcp.glm", ("mcp", "mcp_types", "starlette", "glm_mcp.server", "glm_mcp.tools", "glm_mcp.app")),
        ("glm_mcp.jobs", ("mcp", "mcp_types", "starlette", "glm_mcp.server", "glm_mcp.tools", "glm_mcp.app")),
    ],
)
def test_the_client_and_the_domain_know_nothing_of_mcp(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = [str(found) for found in _imports_of(package) if _within(found.target, forbidden)]
    assert not wrong, f"{package} imports MCP or the server:\n" + "\n".join(wrong)


def test_the_emulator_imports_nothing_else_of_the_project() -> None:
    wrong = [
        str(found)
        for found in _imports_of("glm_mcp.emulator")
        if _within(found.target, ("glm_mcp",)) and not _within(found.target, ("glm_mcp.emulator",))
    ]
    assert not wrong, "glm_mcp/emulator/ imports the rest of glm_mcp:\n" + "\n".join(wrong)


def test_no_module_imports_one_that_imports_it_back() -> None:
    """At the top of a module (a function's lazy import runs once both modules are loaded)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        top = [node for node in tree(path).body if isinstance(node, ast.Import | ast.ImportFrom)]
        targets = {found.target for found in imports(module, path) if any(found.line == n.lineno for n in top)}
        targets |= {
            f"{found.target}.{found.name}"
            for found in imports(module, path)
            if any(found.line == n.lineno for n in top) and f"{found.target}.{found.name}" in known
        }
        # A submodule reading its own package's names (`glm_mcp.glm.client` from `glm_mcp.glm`) is left out: the
        # package's `__init__` only gathers what its submodules define.
        graph[module] = {t for t in targets if t in known and t != module and not module.startswith(t + ".")}
    cycles: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycles.add(" -> ".join([*trail[trail.index(module) :], module]))
            return
        for imported in sorted(graph[module]):
            visit(imported, [*trail, module])

    for module in sorted(graph):
        visit(module, [])
    assert not cycles, sorted(cycles)


def test_the_walk_sees_the_imports_it_judges() -> None:
    """The walker itself: it finds a known import of each kind, so a rule above cannot pass by seeing nothing."""
    found = {str(f).split(": ", 1)[1] for f in _imports_of("glm_mcp.app")}
    assert "from glm_mcp.tools import build_tools" in found
    assert any(f.target == "glm_mcp.tools.workspace.files" for f in _imports_of("glm_mcp.tools.workspace"))
    assert declared_all(modules()["glm_mcp.server.registration"]) is not None
