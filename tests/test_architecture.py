"""The layout holds: product modules stay small, import no measurement tool, and never import each other in a ring."""

import ast
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[1]
PRODUCT = ("revsearch_site", "media_index", "search", "people", "api")
MAX_LINES = 400


def product_modules() -> dict[str, Path]:
    """Dotted name -> file of every product module (migrations are generated, and left out)."""
    modules = {}
    for package in PRODUCT:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(BASE_DIR).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(name: str, path: Path) -> set[str]:
    """Every module this one imports, at the top or inside a function, as dotted names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {name: imports_of(name, path) & modules.keys() - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One ring of imports, or [] when there is none (a depth-first search that remembers its path)."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str]:
        if name in path:
            return path[path.index(name) :] + [name]
        if name in done:
            return []
        for target in sorted(graph[name]):
            if ring := visit(target, path + [name]):
                return ring
        done.add(name)
        return []

    for name in sorted(graph):
        if ring := visit(name, []):
            return ring
    return []


def test_no_product_module_is_over_the_line_limit():
    long = {
        str(path.relative_to(BASE_DIR)): n
        for path in product_modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these by concern (at most {MAX_LINES} lines each)"


def test_product_modules_import_each_other_in_no_ring():
    assert find_cycle(import_graph()) == []


def test_the_product_imports_no_measurement_tool():
    """The production image holds no benchmarks package, and none of the evaluation or test-only packages."""
    tooling = ("benchmarks", "tests", "pytest", "playwright", "cv2", "matplotlib", "tensorboard", "milvus.")
    offenders = {
        name: sorted(found)
        for name, path in product_modules().items()
        if (found := {module for module in imports_of(name, path) if module.startswith(tooling) or module == "milvus"})
    }
    # Two exceptions, each imported only inside the function that needs it: the weights build reads the FaceNet
    # graph with tensorboard (requirements/weights.txt), and dlib's baseline embedder is an evaluation model.
    offenders.pop("media_index.face_weights", None)
    assert offenders == {}


@pytest.mark.parametrize(
    ("graph", "ring"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
)
def test_find_cycle_finds_rings_and_only_rings(graph, ring):
    assert find_cycle(graph) == ring
