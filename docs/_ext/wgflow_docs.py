"""Sphinx directives of the wgflow documentation.

``.. wgflow-config-reference::`` (in MyST: a ``{wgflow-config-reference}`` fence) renders the
config reference from :data:`wgflow.config.SCHEMA`, and ``.. wgflow-cli-reference::`` the
``--help`` of every ``wgflow`` command, at build time. A public module (or any other object
autodoc is asked for) without a docstring is a warning (an error under ``-W``).
"""

from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import Parser
from docutils.utils import new_document
from references import cli_reference_rst, reference_rst
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)
#: what autodoc documents that must carry a docstring
DOCUMENTED = ("module", "class", "exception", "function", "method", "property")


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


def setup(app):
    """Register the directives and the docstring check."""
    app.connect("autodoc-process-docstring", require_docstring)
    app.add_directive("wgflow-config-reference", ConfigReference)
    app.add_directive("wgflow-cli-reference", CLIReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
