"""The parts of nnfast import each other in one direction only (docs/architecture.md).

Reads the imports of every module under src/nnfast with ast (no import is executed), resolves
relative and absolute ``nnfast`` imports to modules, and checks that the module graph has no
cycle and that no part imports a part above it.

Imports inside functions count. A function-level import still makes the importing module depend
on the imported one at run time; it only hides the cycle from the interpreter's start-up order,
and the cycles this test guards against (fit -> data-parallel -> fit, inference <-> distributed
inference, model <-> saving) were all function-level. Only ``if TYPE_CHECKING:`` blocks are
left out: they never run. ``from nnfast import X`` where X is a submodule is an edge to that
submodule; any other name is an edge to the package that binds it. Importing ``nnfast.a.b``
also runs ``nnfast/__init__`` and ``nnfast/a/__init__``; those implicit edges are not counted, or
every module would sit in a cycle with the package that re-exports it.

The source tree is found from this file (tests/ beside src/); from an installed copy without
the sources the test is skipped.
"""
from __future__ import annotations

import ast
import os

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
PKG = os.path.join(SRC, "nnfast")

# The parts from the bottom up: a module may import its own part and the parts before it.
# (Within a part, the order is only constrained by the no-cycle check.)
LAYERS = [
    ("native", ["nnfast._native", "nnfast._version", "nnfast._cpus", "nnfast._atomic",
                "nnfast._warn"]),
    ("runtime", ["nnfast._threads", "nnfast._threadpoolctl"]),
    ("backends", ["nnfast.backends"]),
    ("ops", ["nnfast._matmul", "nnfast._info", "nnfast.ops"]),
    ("package", ["nnfast"]),  # nnfast/__init__: the runtime, backends, matmul and info only
    ("public", ["nnfast.initializers", "nnfast.regularizers", "nnfast.callbacks",
                "nnfast._layer_base", "nnfast._conv_layers", "nnfast._norm_layers",
                "nnfast.layers", "nnfast.losses", "nnfast.metrics", "nnfast.optimizers",
                "nnfast.datasets"]),
    ("distributed", ["nnfast.distributed"]),
    ("onnx", ["nnfast.onnx"]),   # handed the class to build, as engine/saving.py is
    ("engine", ["nnfast.engine"]),
    ("sklearn", ["nnfast.sklearn"]),
    ("cli", ["nnfast.cli", "nnfast.__main__"]),
]


def _modules() -> dict:
    """Dotted name -> (path, is_package) of every .py (and the .pyx extension) under src/nnfast."""
    mods = {}
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            stem, ext = os.path.splitext(f)
            if ext not in (".py", ".pyx"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, stem), SRC).replace(os.sep, ".")
            is_pkg = stem == "__init__"
            mods[rel[: -len(".__init__")] if is_pkg else rel] = (os.path.join(dirpath, f),
                                                                 is_pkg)
    return mods


def _type_checking(node) -> bool:
    test = node.test
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree):
    """Every Import/ImportFrom node, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> dict:
    mods = _modules()

    def known(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, (path, is_pkg) in mods.items():
        if path.endswith(".pyx"):
            graph[name] = set()
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        package = name if is_pkg else name.rpartition(".")[0]
        deps = set()
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                deps.update(known(a.name) for a in node.names if a.name.split(".")[0] == "nnfast")
                continue
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "nnfast":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                deps.add(sub if sub in mods else known(target))
        deps.discard(name)
        deps.discard("")
        graph[name] = deps
    return graph


def _find_cycle(graph: dict):
    """One cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "active"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "active":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _layer(module: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            inside = module.startswith(p + ".") and p != "nnfast"   # "nnfast": __init__ only
            if (module == p or inside) and len(p) > best_len:
                best, best_len = index, len(p)
    return best


pytestmark = pytest.mark.skipif(not os.path.isdir(PKG), reason="no source tree at " + SRC)


def test_the_graph_sees_the_package():
    graph = _graph()
    for name in ("nnfast", "nnfast.engine.model", "nnfast.engine.training",
                 "nnfast.distributed._data_parallel", "nnfast._native._kernels", "nnfast.cli"):
        assert name in graph
    assert "nnfast.engine.training" in graph["nnfast.engine.model"]   # a function-level import
    assert "nnfast._native._kernels" in graph["nnfast.backends.compiled"]


def test_no_import_cycle():
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle in nnfast: " + " -> ".join(cycle)


def test_every_module_belongs_to_a_part():
    loose = sorted(m for m in _graph() if _layer(m) is None)
    assert not loose, f"modules in no part of LAYERS (add them): {loose}"


def test_lower_parts_never_import_higher_ones():
    graph = _graph()
    wrong = [f"{m} ({LAYERS[_layer(m)][0]}) imports {d} ({LAYERS[_layer(d)][0]})"
             for m in sorted(graph) for d in sorted(graph[m]) if _layer(d) > _layer(m)]
    assert not wrong, "imports that go up a floor:\n  " + "\n  ".join(wrong)


def test_the_checker_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
