"""The rules a config value must follow, named in :data:`wgflow.config.SCHEMA`.

``choice:a|b`` one of the words; ``int>=k`` an integer ≥ k; ``num>=0``, ``num>0``, ``num`` a
finite number (≥ 0, > 0, any); ``bool``; ``text`` a string; ``path`` a file path or ``""``;
``widths`` a list of integers ≥ 1; ``columns`` a list of column indices (≥ 0) or names;
``perms`` a list of permutations; ``names`` a list of strings; ``numbers`` a number or a
(nested) list of finite numbers;
``array`` a nested list of finite numbers, or a file path (``""``: none); ``rep`` a
representation: ``defining``, ``trivial``, ``auto`` or a nested list (the generators' images);
``reps`` a list of them; ``tables`` a list of TOML tables; ``digests`` a list of
``[path, SHA-256]`` pairs.
"""

from __future__ import annotations

import math

import numpy as np

#: the representations named by a word
REPRESENTATION_WORDS = ("defining", "trivial", "auto")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _numeric(value) -> bool:
    """A finite number or a non-empty regular nested list of them."""
    if isinstance(value, bool) or isinstance(value, str):
        return False
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return arr.size > 0 and bool(np.all(np.isfinite(arr)))


def _list_of(value, test) -> bool:
    return isinstance(value, list) and all(test(v) for v in value)


_SHAPES = {
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "text": (lambda v: isinstance(v, str), "a string"),
    "path": (lambda v: isinstance(v, str), 'a file path (a string; "" for none)'),
    "widths": (lambda v: _list_of(v, lambda w: _is_int(w) and w >= 1),
               "a list of integers ≥ 1, e.g. [8, 8]"),
    "columns": (lambda v: _list_of(v, lambda c: (_is_int(c) and c >= 0) or isinstance(c, str)),
                'a list of column indices from 0 or header names, e.g. [0, 1] or ["x1", "x2"]'),
    "perms": (lambda v: _list_of(v, lambda p: _list_of(p, lambda i: _is_int(i) and i >= 0)),
              "a list of permutations of 0…n−1, e.g. [[1, 2, 0]]"),
    "names": (lambda v: _list_of(v, lambda c: isinstance(c, str)), "a list of strings"),
    "numbers": (_numeric, "a finite number or a list of finite numbers"),
    "array": (lambda v: isinstance(v, str) or v == [] or _numeric(v),
              'a nested list of finite numbers, or a file path (.npy, .npz, .h5, .csv)'),
    "rep": (lambda v: v in REPRESENTATION_WORDS or _numeric(v),
            f"one of {list(REPRESENTATION_WORDS)} or the images of the generators (a list of "
            "square matrices)"),
    "reps": (lambda v: _list_of(v, lambda r: r in REPRESENTATION_WORDS or _numeric(r)),
             "a list with one representation per hidden layer (defining, trivial, or the "
             "images of the generators)"),
    "tables": (lambda v: _list_of(v, lambda t: isinstance(t, dict)),
               "a list of tables, e.g. [{kind = \"cyclic\", n = 3}, {kind = \"swap\"}]"),
    "digests": (lambda v: _list_of(v, lambda p: _list_of(p, lambda s: isinstance(s, str))
                                   and len(p) == 2), "a list of [path, SHA-256] pairs"),
}


def check(key: str, value, rule: str):
    """``value`` of config key ``key`` if it follows ``rule`` (numbers as floats), else a
    ``ValueError`` naming the key, what it needs and what it got."""
    if rule.startswith("choice:"):
        allowed = rule[len("choice:"):].split("|")
        if value not in allowed:
            raise ValueError(f"config key {key!r} must be one of {allowed}, got {value!r}")
        return value
    if rule in _SHAPES:
        test, need = _SHAPES[rule]
        if not test(value):
            raise ValueError(f"config key {key!r} must be {need}, got {value!r}")
        return value
    if rule.startswith("int"):
        low = int(rule[len("int>="):])
        if not _is_int(value) or value < low:
            raise ValueError(f"config key {key!r} must be an integer ≥ {low}, got {value!r}")
        return value
    if (not _is_number(value) or (rule != "num" and value < 0)
            or (rule == "num>0" and value == 0)):
        need = {"num>0": "a finite number > 0", "num>=0": "a finite number ≥ 0"}.get(
            rule, "a finite number")
        raise ValueError(f"config key {key!r} must be {need}, got {value!r}")
    return float(value)


def describe(rule: str) -> str:
    """The rule in words, for the commented default config."""
    if rule.startswith("choice:"):
        return rule[len("choice:"):].replace("|", " | ")
    if rule in _SHAPES:
        return _SHAPES[rule][1]
    return rule.replace("num", "number ").replace("int", "integer ").strip()


def toml_value(value) -> str:
    """``value`` written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)
