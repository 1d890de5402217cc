"""Imports run one way: no cycles among the package's modules, and no module imports from a layer above its own.

Every import statement counts, those inside functions too: an import deferred to keep start-up light is still
a dependency. Imports under ``TYPE_CHECKING`` never run, so they make no cycle (a module may name the type of
what it reads from a sibling that imports it), but they still may not reach a layer above. A module's layer is
that of its top-level name under ``clipforensics`` (``models.towers.clip`` is in ``models``); modules may import
from their own layer and the layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "clipforensics"

LAYERS = (
    ("errors", "urls", "progress", "words", "colours", "hashing", "cache", "channels"),
    ("media", "transforms", "metrics", "uncertainty", "faces"),
    ("data",),
    ("models",),
    ("hub",),
    ("inference",),
    ("clipforensics",),
    ("evaluation", "training", "demo"),
    ("serve",),
    ("cli",),
)
"""Lowest first. ``clipforensics`` is the package's own ``__init__``: the public API, which loads ``inference``."""


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _typing_only(tree: ast.Module) -> set[ast.AST]:
    """The statements under ``if TYPE_CHECKING:``, at any depth."""
    blocks = [node for node in ast.walk(tree) if isinstance(node, ast.If)
              and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    return {inner for block in blocks for statement in block.body for inner in ast.walk(statement)}


def _imports(name: str, path: Path, modules: dict[str, Path], typing: bool) -> set[str]:
    """The package's modules that ``name`` imports (a package's ``__init__`` stands for the package), its own
    ancestors left out: Python imports those before the module anyway. ``typing``: count imports made only for
    type checkers."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skipped = set() if typing else _typing_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules.keys()
            found |= submodules if len(submodules) == len(node.names) else submodules | {target}
    return {target for target in found if target in modules and not (name + ".").startswith(target + ".")}


def _graph(typing: bool) -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules, typing) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = stack[stack.index(node) :]
                    del stack[stack.index(node) :]
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                work.append((target, iter(sorted(graph[target]))))
            elif target in stack:
                low[node] = min(low[node], index[target])
    return groups


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise AssertionError(f"{module}: its top-level name {top!r} is in no layer; add it to LAYERS")


def test_the_imports_have_no_cycles():
    graph = _graph(typing=False)
    cycles = _cycles(graph)

    assert not cycles, "import cycles:\n" + "\n".join(
        "  " + ", ".join(f"{a} -> {b}" for a in group for b in sorted(graph[a]) if b in group) for group in cycles)


def test_no_module_imports_from_a_layer_above_its_own():
    graph = _graph(typing=True)
    upward = [f"{module} -> {target}" for module, targets in sorted(graph.items()) for target in sorted(targets)
              if _layer(target) > _layer(module)]

    assert not upward, "imports from a higher layer:\n  " + "\n  ".join(upward)


def test_the_check_sees_a_cycle_and_an_import_inside_a_function():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    running, typing = _graph(typing=False), _graph(typing=True)
    assert "clipforensics.demo" in running["clipforensics.cli.misc"]  # inside the demo command
    assert "clipforensics.inference.results" in typing["clipforensics.inference.rows"]  # under TYPE_CHECKING
    assert "clipforensics.inference.results" not in running["clipforensics.inference.rows"]
