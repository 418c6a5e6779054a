"""Small JSON records of the studies that are not sweeps (``mirror.json``, ``study.json``):
written atomically, read back checked."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_record(path, record: dict) -> Path:
    """Write ``record`` as JSON to ``path`` through a sibling temporary file and a rename, so
    that a reader never sees half a record."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(record, indent=1, allow_nan=True), encoding="utf-8")
    os.replace(partial, path)
    return path


def read_record(path, what: str, valid) -> dict | None:
    """The JSON record at ``path`` (``None`` if there is none); ``valid(record)`` says whether
    it is a ``what``: a file that is not refuses with a message naming it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a {what} ({exc}); remove it or give another "
                         "directory") from None
    if not isinstance(record, dict) or not valid(record):
        raise ValueError(f"{path} is not a {what}; remove it or give another directory")
    return record


def same_study(previous: dict, current: dict, keys) -> bool:
    """Whether the record ``previous`` holds the same ``keys`` as ``current`` (compared as
    JSON, so tuples equal lists): a study rerun into a directory continues only the study it
    started, at the same settings (a later version's settings differ)."""
    return all(json.loads(json.dumps(previous.get(k))) == json.loads(json.dumps(current.get(k)))
               for k in keys)
