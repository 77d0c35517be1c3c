"""The shape of src/srgan: imports point down the layers only, no import cycles, no reaching into another
module's private names, no function over 60 lines. A small AST walk (every import counts, also those
inside functions), so a new upward import fails here with the importing file and line named.

The layers, lowest first. A module may import from its own package and from any lower layer; packages
in one layer do not import each other. The README's architecture section draws the same table."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import srgan

SRC = Path(srgan.__file__).parent

LAYERS: list[set[str]] = [
    {"errors"},
    {"options", "files", "hardware"},
    {"registry"},
    {"imaging", "runfiles"},
    {"data", "models"},
    {"metrics", "inference"},  # metrics may use pretrained networks (models)
    {"losses"},  # losses use models (VGG) and metrics (SSIM)
    {"training", "evaluation"},
    {"export"},
    {"api"},
    {"serve", "integrations"},
    {"cli"},
    {"__main__"},
]
"""Each entry is a top-level module or package of srgan (`srgan/__init__.py`, which only re-exports the
API lazily by name, is outside the table)."""

MAX_FUNCTION_LINES = 60


def layer_of(module: str) -> int:
    part = module.split(".")[1]
    for level, names in enumerate(LAYERS):
        if part in names:
            return level
    raise AssertionError(f"srgan.{part} is in no layer of tests/test_layers.py: add it to LAYERS")


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = SRC) -> Iterator[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every srgan import in `path`."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("srgan."):
                    yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("srgan"):
                continue
            for alias in node.names:  # `from srgan.x import y` may name the module srgan.x.y
                sub = f"{base}.{alias.name}"
                if _exists(sub, root):
                    yield sub, [], node.lineno
                else:
                    yield base, [alias.name], node.lineno


def _exists(module: str, root: Path = SRC) -> bool:
    path = root.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def import_graph(root: Path = SRC) -> dict[str, list[tuple[str, list[str], str]]]:
    """module -> [(imported module, names, 'file:line')] over every .py file under `root`."""
    graph: dict[str, list[tuple[str, list[str], str]]] = {}
    for path in sorted(root.rglob("*.py")):
        graph[module_name(path, root)] = [(target, names, f"{path.relative_to(root.parent)}:{line}")
                                          for target, names, line in imports(path, root) if target != "srgan"]
    return graph


def upward_imports(graph: dict[str, list[tuple[str, list[str], str]]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        if module == "srgan":
            continue
        for target, _, where in targets:
            same_package = module.split(".")[1] == target.split(".")[1]
            if not same_package and layer_of(target) >= layer_of(module):
                found.append(f"{where}: {module} (layer {layer_of(module)}) imports {target} "
                             f"(layer {layer_of(target)})")
    return list(dict.fromkeys(found))  # `from x import a, b` is one import


def cycles(graph: dict[str, list[tuple[str, list[str], str]]]) -> list[list[str]]:
    """Import cycles between modules (a package counts as its `__init__`), found by depth-first search."""
    edges = {m: sorted({t for t, _, _ in targets if t in graph and t != m}) for m, targets in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node)
    return found


def test_imports_point_down_the_layers_only():
    assert upward_imports(import_graph()) == []


def test_there_are_no_import_cycles():
    assert cycles(import_graph()) == []


def test_no_module_imports_another_modules_private_names():
    private = [f"{where}: {name} from {target}" for module, targets in import_graph().items()
               for target, names, where in targets for name in names
               if name.startswith("_") and target != module.rpartition(".")[0]]
    assert private == []


def test_no_function_is_longer_than_60_lines():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC.parent)}:{node.lineno} {node.name}: {length} lines")
    assert long == []


def test_the_walk_catches_an_upward_import_and_a_cycle(tmp_path: Path):
    """A planted `models -> inference` import and a two-module cycle are both reported."""
    root = tmp_path / "srgan"
    for name, text in {"models/__init__.py": "", "models/net.py": "from srgan.inference.run import go\n",
                       "inference/__init__.py": "", "inference/run.py": "from srgan.inference import loop\n",
                       "inference/loop.py": "import srgan.inference.run\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = import_graph(root)
    assert upward_imports(graph) == [
        "srgan/models/net.py:1: srgan.models.net (layer 4) imports srgan.inference.run (layer 5)"]
    assert cycles(graph) == [["srgan.inference.loop", "srgan.inference.run", "srgan.inference.loop"]]


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_names_real_modules(layer):
    assert all(_exists(f"srgan.{name}") for name in layer)
