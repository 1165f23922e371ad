"""The package's structure: every public name at the top level, and no import cycles."""

import ast
import importlib
from pathlib import Path

import pytest

import scratchdl

SRC = Path(scratchdl.__file__).parent


def module_names():
    """Every module of the package, found on disk (nothing is imported)."""
    for path in sorted(SRC.rglob("*.py")):
        parts = ["scratchdl", *path.relative_to(SRC).with_suffix("").parts]
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(name):
    relative = Path(*name.split(".")[1:])
    package = SRC / relative / "__init__.py"
    return package if package.exists() else (SRC / relative).with_suffix(".py")


def is_type_checking(node):
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def parents(module, importer):
    """The packages Python runs first when `importer` imports `module`: its parents below
    the top-level package (which is always already running), except those that contain the
    importer itself (already being initialised)."""
    parts = module.split(".")
    for i in range(2, len(parts)):
        package = ".".join(parts[:i])
        if not (importer == package or importer.startswith(package + ".")):
            yield package


def imports_of(name, known):
    path = module_path(name)
    return imports_in(path.read_text(), name, path.name == "__init__.py", known)


def imports_in(source, name, is_package, known):
    """Every scratchdl module the module `name` imports, at the top or inside functions
    (late imports count), except under `if TYPE_CHECKING:`."""
    tree = ast.parse(source)
    package = name if is_package else name.rpartition(".")[0]
    found = set()

    def visit(node):
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("scratchdl"):
                    found.add(alias.name)
                    found.update(parents(alias.name, name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            if base.startswith("scratchdl"):
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in known else base)
                found.update(parents(base, name))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m != name}


def find_cycles(graph):
    state, stack, cycles = {}, [], []

    def dfs(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                dfs(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    return cycles


def test_no_import_cycles():
    known = set(module_names())
    graph = {name: imports_of(name, known) for name in known}
    unknown = {m for deps in graph.values() for m in deps} - known
    assert not unknown, f"imports of modules that do not exist: {unknown}"
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_late_and_relative_imports_and_cycles():
    known = {"scratchdl.a", "scratchdl.b", "scratchdl.pkg", "scratchdl.pkg.c"}
    late = "import numpy\ndef f():\n    from scratchdl.b import thing\n"
    assert imports_in(late, "scratchdl.a", False, known) == {"scratchdl.b"}
    relative = "from .c import x\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import scratchdl.a\n"
    assert imports_in(relative, "scratchdl.pkg", True, known) == {"scratchdl.pkg.c"}
    # importing scratchdl.pkg.c from outside the package runs scratchdl.pkg first
    assert imports_in("from scratchdl.pkg.c import y\n", "scratchdl.a", False, known) == {
        "scratchdl.pkg.c",
        "scratchdl.pkg",
    }
    graph = {"scratchdl.a": {"scratchdl.b"}, "scratchdl.b": {"scratchdl.a"}, "scratchdl.pkg": set()}
    assert find_cycles(graph) == [["scratchdl.a", "scratchdl.b", "scratchdl.a"]]


@pytest.mark.parametrize(
    "package",
    ["core", "ops", "layers", "losses", "network", "optim", "training", "data", "datasets", "io", "saving"],
)  # fmt: skip
def test_every_public_name_of_a_subpackage_imports_from_the_top_level(package):
    module = importlib.import_module(f"scratchdl.{package}")
    assert module.__all__, package
    for name in module.__all__:
        assert getattr(scratchdl, name) is getattr(module, name), f"{package}.{name}"
        assert name in scratchdl.__all__


def test_top_level_all_has_only_real_names():
    for name in scratchdl.__all__:
        assert hasattr(scratchdl, name), name
