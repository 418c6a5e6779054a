"""Sphinx directives of the wgflow documentation.

``.. wgflow-config-reference::`` (in MyST: a ``{wgflow-config-reference}`` fence) renders the
config reference from :data:`wgflow.config.SCHEMA`, and ``.. wgflow-cli-reference::`` the
``--help`` of every ``wgflow`` command, at build time. A public module (or any other object
autodoc is asked for) without a docstring is a warning (an error under ``-W``).

Cross-references: the docstrings name objects where users import them (``wgflow.simulate``,
``Result`` inside :mod:`wgflow.dynamics`), while the API reference documents each where it is
defined (:func:`wgflow.dynamics.simulate`); :func:`resolve_where_defined` follows the name to
the object and links its definition. A name outside ``wgflow`` and ``solvers`` (numpy, the
standard library) is shown unlinked, and so is a word of a numpydoc type description that names
nothing ("array, shape (N, D)", "optional"); a name of ours that still cannot be found stays a
warning.
With ``nitpicky`` on, a broken reference fails a ``-W`` build.
"""

from __future__ import annotations

import importlib
import inspect

from docutils import nodes
from docutils.parsers.rst import Parser
from docutils.utils import new_document
from references import cli_reference_rst, reference_rst
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)
#: what autodoc documents that must carry a docstring
DOCUMENTED = ("module", "class", "exception", "function", "method", "property")
#: the packages whose objects the API reference documents
OURS = ("wgflow", "solvers")
#: attribute-like docstrings kept as written: napoleon would read ``words: more words`` in a
#: ``#:`` comment as ``type: description``
VERBATIM = ("attribute", "data", "property")


class _Generated(SphinxDirective):
    """The nodes of the reStructuredText that :meth:`lines` generates, parsed as
    reStructuredText whatever the page's own markup (MyST parses nested content as Markdown)."""

    has_content = False

    def lines(self) -> list[str]:
        """The generated reStructuredText."""
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        """The nodes of the generated text."""
        document = new_document(type(self).__name__, self.state.document.settings)
        Parser().parse("\n".join(self.lines()), document)
        return list(document.children)


class ConfigReference(_Generated):
    """Every key of the config schema: default, allowed values, meaning."""

    def lines(self) -> list[str]:
        """The tables of :func:`references.reference_rst`."""
        from wgflow.config import SCHEMA

        return reference_rst(SCHEMA)


class CLIReference(_Generated):
    """The ``--help`` of every ``wgflow`` command."""

    def lines(self) -> list[str]:
        """The sections of :func:`references.cli_reference_rst`."""
        return cli_reference_rst()


def require_docstring(app, what, name, obj, options, lines):
    """Warn when autodoc finds a public ``name`` defined in our packages without a docstring
    (autodoc also looks at names a module imports: those are not ours to document)."""
    target = getattr(obj, "fget", None) or getattr(obj, "py_func", None) or obj
    origin = name if what == "module" else getattr(target, "__module__", None) or ""
    if what in DOCUMENTED and (name == origin or name.startswith(f"{origin}.")):
        if not name.rpartition(".")[2].startswith("_") and not any(s.strip() for s in lines):
            logger.warning(f"{what} {name} has no docstring: write one", type="wgflow",
                           subtype="docstring")


def _lookup(dotted: str):
    """The object a dotted name points to (a module, then attributes), or ``None``."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                return None
        return obj
    return None


def _where_defined(dotted: str, context: str) -> list[str]:
    """Names of the definition of ``dotted`` as seen from the module ``context`` (the name
    itself, relative to ``context`` and its parents), best first: the object's own
    ``module.qualname``, then its parent's (for an attribute autodoc does not document)."""
    prefixes = [".".join(context.split(".")[:n]) for n in range(context.count(".") + 1, 0, -1)]
    for candidate in [f"{p}.{dotted}" for p in prefixes if p] + [dotted]:
        parent_name, _, attr = candidate.rpartition(".")
        obj = _lookup(candidate)
        if obj is None and parent_name and inspect.isclass(_lookup(parent_name)):
            parent = _lookup(parent_name)
            return [f"{parent.__module__}.{parent.__qualname__}.{attr}",
                    f"{parent.__module__}.{parent.__qualname__}"]
        if obj is None:
            continue
        obj = getattr(obj, "py_func", obj)
        if inspect.ismodule(obj):
            return [obj.__name__]
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if module and qualname:
            return [f"{module}.{qualname}", f"{module}.{qualname.rpartition('.')[0]}"]
        return [candidate]
    return []


def resolve_where_defined(app, env, node, contnode):
    """``missing-reference``: link a Python name to where it is defined (module docstring)."""
    if node.get("refdomain") != "py":
        return None
    context = ".".join(filter(None, (node.get("py:module"), node.get("py:class"))))
    names = _where_defined(node["reftarget"], context)
    if not names and node.get("refspecific") and "." not in node["reftarget"]:
        return contnode  # a word of a type description ("array", "optional", "N"): prose
    if names and not names[0].startswith(tuple(f"{p}." for p in OURS)) \
            and names[0] not in OURS:
        return contnode  # numpy, the standard library: shown, not linked
    domain = env.get_domain("py")
    for name in names:
        if name.rstrip(".") and name != node["reftarget"]:
            found = domain.resolve_xref(env, node["refdoc"], app.builder, "obj", name, node,
                                        contnode)
            if found is not None:
                return found
    matches = domain.find_obj(env, "", "", node["reftarget"], None, 1)
    if len(matches) == 1:  # a name without its module (an autosummary table has no context)
        return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", matches[0][0],
                                   node, contnode)
    return None


def keep_verbatim(app, what, name, obj, options, lines):
    """Before napoleon: remember an attribute-like docstring (:data:`VERBATIM`)."""
    if what in VERBATIM:
        app.env.temp_data.setdefault("wgflow_verbatim", {})[name] = list(lines)


def restore_verbatim(app, what, name, obj, options, lines):
    """After napoleon: put the remembered docstring back."""
    if what in VERBATIM:
        lines[:] = app.env.temp_data.get("wgflow_verbatim", {}).pop(name, lines)


def setup(app):
    """Register the directives, the docstring check and the reference resolver."""
    app.connect("autodoc-process-docstring", keep_verbatim, priority=100)
    app.connect("autodoc-process-docstring", restore_verbatim, priority=900)
    app.connect("autodoc-process-docstring", require_docstring, priority=950)
    app.connect("missing-reference", resolve_where_defined)
    app.add_directive("wgflow-config-reference", ConfigReference)
    app.add_directive("wgflow-cli-reference", CLIReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
