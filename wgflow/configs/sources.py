"""Files a config reads: where they are, their SHA-256, and the arrays and tables in them.

A path in a config is absolute, relative to the config file's directory (made absolute when the
config is loaded), or ``package:NAME``, a file shipped with wgflow in ``wgflow/configs/data``.
Every file is identified by the SHA-256 of its bytes: the digests are recorded in the config
(key ``files.sha256``, pairs ``[path, digest]``) when it is checked, and a file whose bytes
changed since is refused when it is read again (:func:`read_bytes`), so a stored config never
runs silently on other data.

Readers (``key`` is the config key that named the file, quoted in every error):

- :func:`read_array`: one array from ``.npy``, ``.npz`` (``dataset`` names the array unless
  there is only one), HDF5 (``.h5``/``.hdf5``; ``dataset`` names the dataset, default the
  final student particles of a wgflow run file) or ``.csv`` (its table).
- :func:`read_table`: a 2-D numeric table ``(M, k)`` and its column names from any of those or a
  ``.csv`` file (comma separated, an optional header row of names).
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

#: the prefix of a file shipped with wgflow
PACKAGE_PREFIX = "package:"
#: where the shipped files lie
PACKAGE_DATA = Path(__file__).resolve().parent / "data"
SUFFIXES = (".npy", ".npz", ".csv", ".h5", ".hdf5")
#: the dataset an HDF5 file is read from when none is named: the particles of a wgflow run
RUN_PARTICLES = "particles/student/position/value"


def resolve(value: str, base: Path) -> str:
    """The config value ``value`` of a path key with a relative path made absolute against
    ``base`` (``package:`` names and ``""`` unchanged)."""
    if not value or value.startswith(PACKAGE_PREFIX) or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


def location(value: str, key: str) -> Path:
    """The file that the path value ``value`` of config key ``key`` names."""
    path = PACKAGE_DATA / value[len(PACKAGE_PREFIX):] if value.startswith(PACKAGE_PREFIX) \
        else Path(value)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"config key {key!r}: {value!r} must end in one of {list(SUFFIXES)}")
    if not path.is_file():
        shipped = sorted(p.name for p in PACKAGE_DATA.iterdir()) if value.startswith(
            PACKAGE_PREFIX) else None
        raise ValueError(f"config key {key!r}: no such file {str(path)!r}"
                         + (f"; the shipped files are {shipped}" if shipped else
                            "; give an existing path (relative paths are relative to the "
                            "config file)"))
    return path


def sha256(value: str, key: str) -> str:
    """The SHA-256 hex digest of the file named by ``value``."""
    return hashlib.sha256(location(value, key).read_bytes()).hexdigest()


def read_bytes(value: str, key: str, digest: str) -> bytes:
    """The bytes of the file named by ``value``, refused unless their SHA-256 is ``digest``."""
    data = location(value, key).read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise ValueError(f"config key {key!r}: the file {value!r} changed since the config was "
                         f"made (SHA-256 {found[:16]}…, recorded {digest[:16]}…); restore the "
                         "file, or start a new run on the new data (wgflow run)")
    return data


def _arrays(data: bytes, value: str, key: str) -> dict:
    """The named arrays of an ``.npy`` (one, named ``""``), ``.npz`` or HDF5 file."""
    suffix = Path(value).suffix.lower()
    try:
        if suffix == ".npy":
            return {"": np.load(io.BytesIO(data), allow_pickle=False)}
        if suffix == ".npz":
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        import h5py

        with h5py.File(io.BytesIO(data), "r") as h5:
            found = {}
            h5.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                          if isinstance(obj, h5py.Dataset) and obj.ndim >= 1 else None)
            return found
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"config key {key!r}: {value!r} is not a readable {suffix} file "
                         f"({err})") from None


def read_array(value: str, key: str, digest: str, dataset: str = "") -> np.ndarray:
    """The float array ``dataset`` of the file named by ``value`` (see the module; a ``.csv``
    file is its table)."""
    if Path(value).suffix.lower() == ".csv":
        return _csv_table(read_bytes(value, key, digest), value, key)[0]
    arrays = _arrays(read_bytes(value, key, digest), value, key)
    if Path(value).suffix.lower() in (".h5", ".hdf5") and not dataset and RUN_PARTICLES in arrays:
        return np.asarray(arrays[RUN_PARTICLES][-1], dtype=float)  # the run's last frame
    if not dataset and len(arrays) == 1:
        dataset = next(iter(arrays))
    if dataset not in arrays:
        raise ValueError(f"config key {key!r}: {value!r} holds the arrays {sorted(arrays)}; "
                         "name one with the key's dataset entry")
    try:
        return np.asarray(arrays[dataset], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"config key {key!r}: the array {dataset!r} of {value!r} is not "
                         "numeric") from None


def _csv_table(data: bytes, value: str, key: str) -> tuple[np.ndarray, list]:
    try:
        rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8"))) if row]
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"config key {key!r}: {value!r} is not a CSV text file ({err})") from None
    if not rows:
        raise ValueError(f"config key {key!r}: {value!r} holds no rows")

    def numbers(row):
        try:
            return [float(field) for field in row]
        except ValueError:
            return None

    names = [] if numbers(rows[0]) is not None else [field.strip() for field in rows[0]]
    body = rows[1:] if names else rows
    width = len(rows[0])
    table = []
    for line, row in enumerate(body, start=2 if names else 1):
        parsed = numbers(row)
        if len(row) != width or parsed is None:
            why = (f"{len(row)} fields where the first row has {width}" if len(row) != width
                   else f"a field that is not a number: {row}")
            raise ValueError(f"config key {key!r}: {value!r} is a malformed CSV file: line "
                             f"{line} has {why}")
        table.append(parsed)
    if not table:
        raise ValueError(f"config key {key!r}: {value!r} holds a header and no data rows")
    return np.array(table), names


def read_table(value: str, key: str, digest: str, dataset: str = "") -> tuple[np.ndarray, list]:
    """``(table (M, k), column names)`` of the file named by ``value`` (names from a CSV
    header, else ``[]``)."""
    if Path(value).suffix.lower() == ".csv":
        return _csv_table(read_bytes(value, key, digest), value, key)
    table = read_array(value, key, digest, dataset)
    table = table[:, None] if table.ndim == 1 else table
    if table.ndim != 2 or len(table) == 0:
        raise ValueError(f"config key {key!r}: {value!r} must hold a table of samples (M, "
                         f"columns), got shape {table.shape}")
    return table, []


def columns(table: np.ndarray, names: list, selection, key: str) -> np.ndarray:
    """The columns ``selection`` (indices from 0, or header names) of ``table``: ``(M, k)``."""
    index = []
    for item in selection:
        if isinstance(item, str):
            if item not in names:
                raise ValueError(f"config key {key!r}: no column named {item!r}; the columns "
                                 f"are {names or 'unnamed (no header): select by index'}")
            index.append(names.index(item))
        elif not 0 <= item < table.shape[1]:
            raise ValueError(f"config key {key!r}: column {item} does not exist; the table has "
                             f"{table.shape[1]} columns (0 … {table.shape[1] - 1})")
        else:
            index.append(item)
    return table[:, index]
