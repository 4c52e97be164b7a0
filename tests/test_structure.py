"""The package's rooms import each other one way, in the pipeline order of the README's code
map: a room imports only rooms before it (and the root helpers), so no cycle can form either.

Every import counts, including those inside functions (a cycle hidden in a function-local
import is still a cycle); only imports under `if TYPE_CHECKING:` are left out, since they
never run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "emotion"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.AST) -> Iterator[str]:
    """Absolute module names imported anywhere except under `if TYPE_CHECKING:`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = runtime_imports(ast.parse(path.read_text()))
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


def room(module: str) -> str:
    """`emotion.data.splits` -> `emotion.data`; `emotion.checkpoint` -> itself."""
    return ".".join(module.split(".")[:2])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same node, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_itself_back() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_no_room_imports_itself_back() -> None:
    rooms: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if module == "emotion":
            continue
        inside = {room(target) for target in targets} - {room(module), "emotion"}
        rooms.setdefault(room(module), set()).update(inside)
    cycle = find_cycle(rooms)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_check_finds_a_cycle_hidden_in_a_function() -> None:
    code = "def later():\n    from emotion.b import thing\n"
    graph = {"emotion.a": set(runtime_imports(ast.parse(code))) & {"emotion.b"}}
    graph["emotion.b"] = {"emotion.a"}
    assert find_cycle(graph) == ["emotion.a", "emotion.b", "emotion.a"]


# The README's code map, in order. A room may import the rooms before it and the root helpers;
# nothing after it. A new room must be placed here (and in the code map) to pass.
ORDER = (
    "emotion.facemesh",
    "emotion.store",
    "emotion.features",
    "emotion.extract",
    "emotion.synthetic",
    "emotion.data",
    "emotion.checkpoint",
    "emotion.models",
    "emotion.recipes",
    "emotion.training",
    "emotion.inference",
    "emotion.evaluate",
    "emotion.predict",
    "emotion.export",
    "emotion.serve",
    "emotion.summary",
    "emotion.bench",
    "emotion.api",  # the Python API (emotion.load, ...): above every room, none imports it
)
# Small shared helpers every room may use; they import only each other.
ROOT_HELPERS = (
    "emotion",
    "emotion.compose",
    "emotion.errors",
    "emotion.locks",
    "emotion.notices",
    "emotion.rundir",
)
README = PACKAGE.parent / "README.md"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a room after the importer's own, or of a room not in ORDER."""
    found = []
    for module, targets in sorted(graph.items()):
        source = room(module)
        for target in sorted(targets):
            wanted = room(target)
            if wanted == source or wanted in ROOT_HELPERS:
                continue
            if source in ROOT_HELPERS or source not in ORDER or wanted not in ORDER:
                found.append(f"{module} -> {target} (outside the order)")
            elif ORDER.index(wanted) > ORDER.index(source):
                found.append(f"{module} -> {target}")
    return found


def test_every_room_imports_only_the_rooms_before_it() -> None:
    assert upward_imports(import_graph()) == []


def test_the_check_finds_an_upward_import_that_makes_no_cycle() -> None:
    graph = {"emotion.facemesh.mesh": {"emotion.summary.table"}, "emotion.summary.table": set()}
    assert upward_imports(graph) == ["emotion.facemesh.mesh -> emotion.summary.table"]
    helper = {"emotion.errors": {"emotion.store.schema"}}
    assert upward_imports(helper) == ["emotion.errors -> emotion.store.schema (outside the order)"]


def test_the_readmes_code_map_lists_the_rooms_in_this_order() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`emotion/(\w+)(?:/|\.py)`", table)
    rooms = [f"emotion.{name}" for name in dict.fromkeys(named) if name != "conf"]
    assert rooms == list(ORDER)
    packages = {
        f"emotion.{path.name}" for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()
    }
    assert packages - set(ORDER) == set(), "a room missing from the order"
