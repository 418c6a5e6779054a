"""The documentation cannot drift from the code: every public name has a docstring, every
docstring example runs (doctest), every config key is in the generated config reference, and
the documentation pages' Python examples run as written.

The site itself is built by ``sphinx-build -W docs docs/_build`` (CI); these checks need no Sphinx.
"""

import doctest
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import solvers
import wgflow
from wgflow.cli import COMMANDS
from wgflow.config import SCHEMA
from wgflow.configs import rules

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _public_modules():
    """Every module of ``wgflow`` and ``solvers`` whose dotted name has no ``_`` component
    (``__main__`` runs the CLI and is not imported)."""
    names = []
    for package in (wgflow, solvers):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return names


MODULES = _public_modules()


def _own_docstring(obj) -> str:
    """``obj``'s docstring (a method's or property's inherited from the class it overrides, as
    autodoc shows it), ignoring the signature line that ``dataclass`` and ``NamedTuple`` write
    for a class without one."""
    obj = getattr(obj, "py_func", obj)  # a Numba dispatcher documents its Python function
    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj) and re.fullmatch(rf"{re.escape(obj.__name__)}\(.*\)", doc, re.S):
        return ""
    return doc.strip()


def _public_members(module):
    """Public classes and functions defined in ``module`` (not imported into it), and the
    public methods and properties that its classes define themselves."""
    for name, obj in vars(module).items():
        target = getattr(obj, "py_func", obj)
        if name.startswith("_") or getattr(target, "__module__", None) != module.__name__:
            continue
        if not (inspect.isclass(target) or inspect.isfunction(target)):
            continue
        yield f"{module.__name__}.{name}", obj
        if inspect.isclass(target):
            for attr, member in vars(target).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, property):
                    yield f"{module.__name__}.{name}.{attr}", member


def test_the_walk_finds_the_packages_modules():
    assert {"wgflow", "wgflow.config", "wgflow.files.h5md", "solvers.pde.grid"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_public_module_class_and_function_have_docstrings(name):
    module = importlib.import_module(name)
    missing = [] if (module.__doc__ or "").strip() else [f"module {name}"]
    missing += [qualname for qualname, obj in _public_members(module)
                if not _own_docstring(obj)]
    assert not missing, f"public names without a docstring (write one): {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples fail in {name}"


def test_there_are_docstring_examples():
    finder = doctest.DocTestFinder()
    examples = sum(len(t.examples) for name in MODULES
                   for t in finder.find(importlib.import_module(name), name))
    assert examples >= 10


def _references():
    spec = importlib.util.spec_from_file_location("references", DOCS / "_ext" / "references.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_config_key_is_in_the_generated_config_reference():
    references = _references()
    rendered = "\n".join(references.reference_rst(SCHEMA))
    for key, default, rule, meaning in SCHEMA:
        assert meaning.strip(), f"config key {key!r} has no meaning in wgflow.config.SCHEMA"
        row = re.search(rf"\* - ``{re.escape(key)}``\n(.*?)(?=\n   \* - |\n\n|\Z)", rendered,
                        re.S)
        assert row, f"config key {key!r} is missing from the config reference"
        for text in (f"``{rules.toml_value(default)}``", references.plain(rules.describe(rule)),
                     references.plain(meaning)):
            assert text in row.group(1), f"config key {key!r}: {text!r} not in its row"
    assert "{wgflow-config-reference}" in (DOCS / "guide" / "configs.md").read_text(
        encoding="utf-8"), "the configs page must render the generated reference"


def test_the_config_reference_follows_the_schema():
    """A key added to the schema appears in the reference with its default, rule and meaning:
    the reference is generated, not copied."""
    added = (*SCHEMA, ("output.new_key", 3, "int>=2", "a key added later"))
    rendered = "\n".join(_references().reference_rst(added))
    assert (f"* - ``output.new_key``\n     - ``3``\n     - {rules.describe('int>=2')}\n"
            "     - a key added later") in rendered
    assert _references().plain("|G| = 2, a_b *c*") == r"\|G\| = 2, a\_b \*c\*"
    assert ".. list-table:: ``[problem.unit]``" in rendered  # nested tables keep their name


DOC_PAGES = sorted(p for p in DOCS.rglob("*.md")
                   if "_build" not in p.parts and "notebooks" not in p.parts)


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_documentation_python_examples_run(page, tmp_path, monkeypatch):
    """Every ```python block of a page runs, top to bottom, in one namespace (blocks that need
    a file from an earlier command are shown with ``{code-block} python`` instead)."""
    blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for code in blocks:
        exec(compile(code, str(page), "exec"), namespace)


def test_the_cli_reference_has_every_command():
    rendered = "\n".join(_references().cli_reference_rst())
    for command in COMMANDS:
        assert f"``wgflow {command}``" in rendered
        assert f"usage: wgflow {command}" in rendered
    assert "--overwrite" in rendered and "--grid KEY=V1,V2,..." in rendered
    assert "{wgflow-cli-reference}" in (DOCS / "guide" / "cli.md").read_text(encoding="utf-8")


def test_references_resolve_to_where_names_are_defined(monkeypatch):
    """The site's cross-reference resolver: a name as users import it (or relative to the
    module whose docstring says it) leads to its definition; an instance attribute autodoc does
    not document leads to its class."""
    pytest.importorskip("sphinx", reason="the docs extension needs the [docs] extra")
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))
    spec = importlib.util.spec_from_file_location("wgflow_docs", DOCS / "_ext" / "wgflow_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    where = module._where_defined
    assert where("wgflow.simulate", "")[0] == "wgflow.dynamics.simulate"
    assert where("Result", "wgflow.dynamics")[0] == "wgflow.result.Result"
    assert where("units.LayeredUnit.action_matrix", "wgflow.symmetry")[0] == \
        "wgflow.units.LayeredUnit.action_matrix"
    assert where("words", "wgflow.symmetry.groups.FiniteGroup") == [
        "wgflow.symmetry.groups.FiniteGroup.words", "wgflow.symmetry.groups.FiniteGroup"]
    assert where("numpy.ndarray", "wgflow.data")[0] == "numpy.ndarray"
    assert where("no_such_name", "wgflow.data") == []
