"""The package layout's import rules, read from the sources: ``wgflow → solvers`` only; inside
``solvers``, the CPU kernels import neither the CUDA backend nor the grid solver, the shared
modules import no backend, and the CUDA driver and kernels load only through
:func:`solvers.cuda.backend`."""

import ast
from pathlib import Path

import pytest

import solvers
import wgflow

ROOTS = {package.__name__: Path(package.__file__).parent for package in (solvers, wgflow)}


def _module_name(path: Path) -> str:
    root = next(name for name, folder in ROOTS.items() if folder in path.parents)
    parts = path.relative_to(ROOTS[root]).with_suffix("").parts
    return ".".join((root, *parts[:-1], *(() if parts[-1] == "__init__" else parts[-1:])))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (lazy imports included)."""
    name = _module_name(path)
    package = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []  # level 1: "."
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


MODULES = {_module_name(path): _imports(path)
           for folder in ROOTS.values() for path in sorted(folder.rglob("*.py"))}


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _offenders(importer_rule, imported_rule):
    return sorted((importer, imported) for importer, imports in MODULES.items()
                  if importer_rule(importer) for imported in imports if imported_rule(imported))


def test_the_module_table_is_read():
    assert {"solvers.cpu.layered", "solvers.cuda.kernels", "wgflow.sweep.report"} <= set(MODULES)
    assert "solvers.cpu.fast_math" in MODULES["solvers.cpu.layered"]
    assert "solvers.checks" in MODULES["solvers.cpu.layered"]  # a relative import two levels up


@pytest.mark.parametrize(("importers", "forbidden"), [
    ("solvers", "wgflow"),
    ("solvers.cpu", "solvers.cuda"),
    ("solvers.cpu", "solvers.pde"),
])
def test_imports_run_one_way(importers, forbidden):
    assert _offenders(lambda m: _inside(m, importers), lambda m: _inside(m, forbidden)) == []


def test_the_shared_solver_modules_import_no_backend():
    shared = {_module_name(path) for path in ROOTS["solvers"].glob("*.py")} - {"solvers"}
    assert {"solvers.checks", "solvers.layered", "solvers.sample_terms"} <= shared
    backends = ("solvers.cpu", "solvers.cuda", "solvers.pde")
    assert _offenders(lambda m: m in shared,
                      lambda m: any(_inside(m, b) for b in backends)) == []


def test_the_cuda_backend_loads_on_demand_only():
    loaded = ("solvers.cuda.driver", "solvers.cuda.kernels")
    assert _offenders(lambda m: not _inside(m, "solvers.cuda"),
                      lambda m: any(_inside(m, b) for b in loaded)) == []


def test_no_package_name_hides_its_own_submodule():
    """``from solvers import layered`` must give the numpy reference: a package that binds a
    name of one of its submodules to another module (``from .cpu import layered``) would hand
    every such import the compiled kernels, and the reference checks would check nothing."""
    import importlib
    import pkgutil

    hidden = []
    for root in (solvers, wgflow):
        packages = [root] + [importlib.import_module(info.name)
                             for info in pkgutil.walk_packages(root.__path__, root.__name__ + ".")
                             if info.ispkg]
        for package in packages:
            for info in pkgutil.iter_modules(package.__path__):
                bound = getattr(package, info.name, None)
                expected = f"{package.__name__}.{info.name}"
                if bound is not None and getattr(bound, "__name__", None) != expected:
                    hidden.append((expected, getattr(bound, "__name__", repr(bound))))
    assert hidden == []
    from solvers import layered

    assert layered.network_output.__module__ == "solvers.layered"  # numpy, not compiled
