"""The example configs shipped with wgflow (``wgflow config --example NAME``): commented,
runnable TOML files in ``examples/``; those reading a data set name a file of ``data/``
(``package:NAME``)."""

from __future__ import annotations

from pathlib import Path

#: where the example configs lie
EXAMPLES = Path(__file__).resolve().parent / "examples"


def names() -> list[str]:
    """The names of the examples, sorted."""
    return sorted(path.stem for path in EXAMPLES.glob("*.toml"))


def text(name: str) -> str:
    """The TOML text of the example ``name``."""
    if name not in names():
        raise ValueError(f"--example must be one of {names()}, got {name!r}")
    return (EXAMPLES / f"{name}.toml").read_text(encoding="utf-8")


def summary(name: str) -> str:
    """The first line of the example's opening comment."""
    return text(name).splitlines()[0].lstrip("# ").strip()
