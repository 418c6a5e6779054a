"""References generated from the code when the site is built (no Sphinx needed here).

:func:`reference_rst` renders the config reference from :data:`wgflow.config.SCHEMA`: one table
per TOML table (``problem``, ``problem.unit``, ``init``, ``run``, ...), every key with its
default, the values it allows and its meaning, so that a key added to the schema appears without
an edit to the docs.
:func:`cli_reference_rst` renders the ``--help`` of every ``wgflow`` command.
"""

from __future__ import annotations

import argparse
import os
import re


def plain(text: str) -> str:
    """``text`` on one line, as reStructuredText that shows it as written (``|G|``, ``*``,
    ``a_b`` and backquotes escaped)."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\|*`_])", r"\\\1", text) or "(empty)"


def reference_rst(schema) -> list[str]:
    """reStructuredText lines of the config reference: one ``list-table`` per TOML table.

    Parameters
    ----------
    schema : sequence of (key, default, rule, meaning)
        :data:`wgflow.config.SCHEMA`.

    Returns
    -------
    list of str
        The lines; every key appears as ``table.name`` in its table's first column, with its
        default as TOML and its allowed values as ``wgflow config --default`` writes them
        (:func:`wgflow.configs.rules.describe`).
    """
    from wgflow.configs import rules

    tables: dict[str, list[tuple]] = {}
    for key, default, rule, meaning in schema:
        tables.setdefault(key.rsplit(".", 1)[0], []).append((key, default, rule, meaning))
    lines = []
    for table, rows in tables.items():
        lines += [f".. list-table:: ``[{table}]``", "   :header-rows: 1",
                  "   :widths: 22 14 24 40", "",
                  "   * - key", "     - default", "     - allowed", "     - meaning"]
        for key, default, rule, meaning in rows:
            lines += [f"   * - ``{key}``", f"     - ``{rules.toml_value(default)}``",
                      f"     - {plain(rules.describe(rule))}", f"     - {plain(meaning)}"]
        lines.append("")
    return lines


def _subcommands(parser: argparse.ArgumentParser) -> dict:
    """The subparsers of ``parser``, by command name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference_rst() -> list[str]:
    """reStructuredText lines of the command-line reference: one section per ``wgflow``
    command (:data:`wgflow.cli.COMMANDS`) holding its ``--help``, 100 columns wide.

    Returns
    -------
    list of str
        The lines; each command's section is titled ``wgflow COMMAND``.
    """
    from wgflow import bench, cli

    os.environ["COLUMNS"] = "100"  # argparse wraps the help text at the terminal's width
    parsers = _subcommands(cli._parser())
    parsers["bench"] = bench.parser()  # ``wgflow bench`` parses its own arguments
    lines = []
    for command in cli.COMMANDS:
        title = f"``wgflow {command}``"
        help_text = parsers[command].format_help()
        lines += [title, "-" * len(title), "", "::", ""]
        lines += [f"   {line}".rstrip() for line in help_text.splitlines()]
        lines.append("")
    return lines
