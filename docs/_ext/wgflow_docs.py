"""Sphinx directives of the wgflow documentation.

``.. wgflow-config-reference::`` (in MyST: a ``{wgflow-config-reference}`` fence) renders the
config reference from :data:`wgflow.config.SCHEMA` at build time.
"""

from __future__ import annotations

from config_reference import reference_rst
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


class ConfigReference(SphinxDirective):
    """Every key of the config schema: default, allowed values, meaning."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from wgflow.config import SCHEMA

        container = nodes.container()
        self.state.nested_parse(StringList(reference_rst(SCHEMA), "wgflow.config.SCHEMA"),
                                self.content_offset, container)
        return container.children


def setup(app):
    """Register the directives."""
    app.add_directive("wgflow-config-reference", ConfigReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
