"""The config reference, generated from :data:`wgflow.config.SCHEMA` (no Sphinx needed).

:func:`reference_rst` renders one table per section of the schema (``problem``, ``init``,
``run``, ...): every key with its default, the values it allows and its meaning, so that a key
added to the schema appears in the documentation without an edit to it.
"""

from __future__ import annotations


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
