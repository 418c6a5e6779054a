"""References generated from the code when the site is built (no Sphinx needed here).

:func:`reference_rst` renders the config reference from :data:`wgflow.config.SCHEMA`: one table
per section (``problem``, ``init``, ``run``, ...), every key with its default, the values it
allows and its meaning, so that a key added to the schema appears without an edit to the docs.
:func:`cli_reference_rst` renders the ``--help`` of every ``wgflow`` command.
"""

from __future__ import annotations

import argparse
import os


def allowed_values(rule: str) -> str:
    """The values a schema rule allows, in words.

    Parameters
    ----------
    rule : str
        A rule of :data:`wgflow.config.SCHEMA`: ``"choice:a|b"``, ``"int>=1"``, ``"num>0"``, ...

    Returns
    -------
    str
        e.g. ``"one of a, b"``, ``"an integer ≥ 1"``, ``"a number > 0"``.
    """
    if rule.startswith("choice:"):
        return "one of " + ", ".join(f"``{v}``" for v in rule[len("choice:"):].split("|"))
    kind, _, bound = rule.partition(">=")
    if not bound:
        kind, _, bound = rule.partition(">")
        return f"{'an integer' if kind == 'int' else 'a number'} > {bound}"
    return f"{'an integer' if kind == 'int' else 'a number'} ≥ {bound}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()) or "(empty)"


def reference_rst(schema) -> list[str]:
    """reStructuredText lines of the config reference: one ``list-table`` per section.

    Parameters
    ----------
    schema : sequence of (key, default, rule, meaning)
        :data:`wgflow.config.SCHEMA`.

    Returns
    -------
    list of str
        The lines; every key appears as ``section.name`` in its table's first column.
    """
    sections: dict[str, list[tuple]] = {}
    for key, default, rule, meaning in schema:
        sections.setdefault(key.split(".")[0], []).append((key, default, rule, meaning))
    lines = []
    for section, rows in sections.items():
        lines += [f".. list-table:: ``[{section}]``", "   :header-rows: 1",
                  "   :widths: 22 14 24 40", "",
                  "   * - key", "     - default", "     - allowed", "     - meaning"]
        for key, default, rule, meaning in rows:
            shown = f'"{default}"' if isinstance(default, str) else repr(default)
            lines += [f"   * - ``{key}``", f"     - ``{shown}``",
                      f"     - {_cell(allowed_values(rule))}", f"     - {_cell(meaning)}"]
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
