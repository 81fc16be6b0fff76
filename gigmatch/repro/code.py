"""Which of the repository's files a piece of code runs: its import closure, read from the source.

One answer for three questions: which modules a logged model carries
(`code_paths`: what its feature transformer imports), which files the serving
image copies (what the app imports), and which code each DVC stage depends on
(what its command imports). An import inside a function counts: it runs when
the function does. An import under `if TYPE_CHECKING:` does not.

A command-line front door (the `gigmatch` CLI) imports every command's module
to register it, but runs one command: its modules' function-level imports
count only for the command that runs and the module's helpers it calls.

Written on the standard library's `ast`: import-linter's graph (grimp) does
not tell an import that runs at import time from one inside a function, which
is exactly what the front door needs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]  # gigmatch/repro/code.py -> the repository
PACKAGES = ("gigmatch", "pipelines", "serving", "devtools")


@dataclass(frozen=True)
class ModuleImports:
    """The repository modules one module imports: at import time, and inside each top-level function."""

    at_import: frozenset[str]
    in_function: dict[str, frozenset[str]] = field(default_factory=dict)  # function name -> modules
    calls: dict[str, frozenset[str]] = field(default_factory=dict)  # function name -> module functions it names

    @property
    def everything(self) -> frozenset[str]:
        return self.at_import.union(*self.in_function.values())


def module_file(name: str, root: Path = REPOSITORY_ROOT) -> Path | None:
    """The source file of a repository module (a package's `__init__.py`), None for anything else."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    path = root.joinpath(*parts)
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def import_closure(
    modules: Iterable[str],
    *,
    root: Path = REPOSITORY_ROOT,
    front_door: str | None = None,
    commands: Iterable[tuple[str, str]] = (),
) -> set[str]:
    """Every repository module that importing `modules` and running `commands` imports, with their packages.

    Modules under the `front_door` package count their function-level imports only for
    the `commands` ((module, function name) pairs) and the same-module functions those call.
    """
    entry: dict[str, set[str]] = {}
    for module, function in commands:
        entry.setdefault(module, set()).add(function)
    seen: set[str] = set()
    pending = [m for m in modules if module_file(m, root)] + [m for m, _ in commands]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending += _parents(name)
        imports = parse_imports(name, root)
        in_front_door = front_door is not None and (name == front_door or name.startswith(front_door + "."))
        if not in_front_door:
            pending += imports.everything
            continue
        pending += imports.at_import
        for function in _reached(imports, entry.get(name, set())):
            pending += imports.in_function.get(function, frozenset())
    return {name for name in seen if module_file(name, root)}


def closure_files(modules: Iterable[str], root: Path = REPOSITORY_ROOT) -> list[str]:
    """The closure's source files, relative to `root`, sorted."""
    files = (module_file(name, root) for name in modules)
    return sorted(path.relative_to(root).as_posix() for path in files if path is not None)


@cache
def parse_imports(name: str, root: Path = REPOSITORY_ROOT) -> ModuleImports:
    path = module_file(name, root)
    if path is None:
        return ModuleImports(frozenset())
    visitor = _ImportVisitor(name, path.name == "__init__.py", root)
    visitor.visit(ast.parse(path.read_text(), filename=str(path)))
    return ModuleImports(
        frozenset(visitor.at_import),
        {f: frozenset(m) for f, m in visitor.in_function.items()},
        {f: frozenset(c & visitor.functions) for f, c in visitor.calls.items()},
    )


def _reached(imports: ModuleImports, functions: set[str]) -> set[str]:
    reached: set[str] = set()
    pending = list(functions)
    while pending:
        function = pending.pop()
        if function not in reached:
            reached.add(function)
            pending += imports.calls.get(function, frozenset())
    return reached


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


class _ImportVisitor(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, root: Path):
        self.package = module if is_package else module.rpartition(".")[0]
        self.root = root
        self.at_import: set[str] = set()
        self.in_function: dict[str, set[str]] = {}
        self.calls: dict[str, set[str]] = {}
        self.functions: set[str] = set()
        self._function: str | None = None  # the top-level function being read
        self._classes = 0  # depth of class bodies around the node being read

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self._function is not None or self._classes:  # nested, or a method: its imports are its scope's
            self.generic_visit(node)
            return
        self._function = node.name
        self.functions.add(node.name)
        self.in_function.setdefault(node.name, set())
        self.calls.setdefault(node.name, set())
        self.generic_visit(node)
        self._function = None

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_FunctionDef(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        # A method's imports run when it is called, which a class's users may do: count them with
        # the enclosing scope (the module's import time, for a top-level class).
        self._classes += 1
        self.generic_visit(node)
        self._classes -= 1

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if self._function is not None:
            self.calls[self._function].add(node.id)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        self._add(module)
        for alias in node.names:
            if module_file(f"{module}.{alias.name}", self.root):  # a submodule, not a name in the module
                self._add(f"{module}.{alias.name}")

    def _add(self, module: str) -> None:
        if module.split(".")[0] not in PACKAGES:
            return
        target = self.at_import if self._function is None else self.in_function[self._function]
        target.add(module)
