"""Docstring text shown in a terminal (``--help``): reST markup made plain."""

from __future__ import annotations

import re

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :func:`wgflow.simulate` → wgflow.simulate
_LITERAL = re.compile(r"``([^`]+)``")  # ``--steps`` → --steps


def plain(text: str) -> str:
    """``text`` with reST roles and inline literals replaced by their bare contents."""
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))
