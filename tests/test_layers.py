"""The import graph of the three packages, read from the source (every import statement, those inside functions
and under ``if TYPE_CHECKING`` included): no module imports itself through others (no cycle), and the layers
hold: ``pe_udfs`` (one video, no Spark) imports nothing of ``models`` or ``jobs``; ``models`` nothing of ``jobs``."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: lower layers first: a module may import its own layer and those before it
LAYERS = ("pe_udfs", "models", "jobs")


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the three packages (a package is its ``__init__``)."""
    out = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import sub`` names the submodule when it is one)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name inside a module: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walk_sees_every_kind_of_import():
    graph = _graph()
    assert len(graph) > 100
    assert "pe_udfs.settings" in graph["jobs.config"]  # at module level
    assert "jobs.submit" not in graph["jobs.cli"] and "jobs.cli" in graph["jobs.submit"]
    assert "pe_udfs.validate" not in graph  # only real modules
    assert "models.registry" in graph["jobs.scoring.one_video"]  # inside a function


def test_no_module_imports_itself_through_others():
    assert _cycles(_graph()) == []


def test_no_layer_imports_a_layer_above_it():
    upward = sorted(f"{module} -> {target}" for module, targets in _graph().items() for target in targets
                    if LAYERS.index(target.split(".")[0]) > LAYERS.index(module.split(".")[0]))
    assert upward == []


def test_a_cycle_and_an_import_inside_a_function_are_caught(tmp_path):
    graph = {"pe_udfs.a": {"pe_udfs.b"}, "pe_udfs.b": {"pe_udfs.c"}, "pe_udfs.c": {"pe_udfs.a"}, "models.m": set()}
    assert _cycles(graph) == [["pe_udfs.a", "pe_udfs.b", "pe_udfs.c"]]
    source = tmp_path / "x.py"
    source.write_text("def load():\n    from models.registry import load_engagement_model\n    from . import y\n")
    modules = {"pe_udfs.x": source, "pe_udfs.y": source, "models.registry": source, "models": source}
    assert _imports("pe_udfs.x", source, modules) == {"models.registry", "pe_udfs.y"}
