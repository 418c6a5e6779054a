"""Checkpoints: where a run stands, saved beside its file so that ``resume`` continues it.

A checkpoint ``<file>.ckpt.npz`` holds a :class:`wgflow.dynamics.FlowCursor` (particles, step,
time, random-generator states; for a grid PDE run a :class:`solvers.pde.integrators.GridState`:
density, time, step), the number of frames the file held when it was taken, and the run's
identity: the ``run_id`` drawn when the file was created and the ``config_hash`` of its config,
both also stored in the file's ``/parameters`` attributes. It is written to a temporary file,
synced and renamed, so a checkpoint on disk is always whole; a write that fails (a full
disk) removes its temporary file and leaves the previous checkpoint in place.
:func:`check_resumable` verifies that a checkpoint belongs to its file before anything is
modified.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from solvers.pde.integrators import GridState

from ..config import config_hash
from ..dynamics import FlowCursor

_RNG_FIELDS = ("data_rng", "move_rng")
_FIELDS = ("step", "t", "frames", "run_id", "config_hash")


def state_of(cursor) -> tuple[str, np.ndarray]:
    """``(what, array)``: the particles of a :class:`FlowCursor`, the density of a
    :class:`GridState`."""
    return ("density", cursor.rho) if isinstance(cursor, GridState) else \
        ("particles", cursor.theta)


def checkpoint_path(path) -> Path:
    """The checkpoint file of the trajectory ``path``: ``path.ckpt.npz``."""
    return Path(f"{path}.ckpt.npz")


def new_identity(config: dict) -> dict:
    """``{run_id, config_hash}`` of a new run of the checked ``config``."""
    return {"run_id": uuid.uuid4().hex, "config_hash": config_hash(config)}


def write_checkpoint(path, cursor: FlowCursor | GridState, frames: int, identity: dict) -> None:
    """Atomically save ``cursor``, taken after ``frames`` frames of the run ``identity`` were
    written to ``path``."""
    final = checkpoint_path(path)
    tmp = final.with_name(final.name + ".tmp")
    fields = {name: json.dumps(value) if name in _RNG_FIELDS else value
              for name, value in cursor._asdict().items()}
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, frames=frames, run_id=identity["run_id"],
                     config_hash=identity["config_hash"], **fields)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_checkpoint(path) -> tuple[FlowCursor | GridState, int, dict]:
    """``(cursor, frames, identity)`` of the last checkpoint of the run in ``path``; a missing,
    foreign or damaged checkpoint raises a ``ValueError`` that names it."""
    ck_path = checkpoint_path(path)
    if not ck_path.is_file():
        raise ValueError(f"{path} has no checkpoint ({ck_path.name}) to resume from (killed "
                         "before its first checkpoint?); start it again with `wgflow run "
                         "--overwrite`")
    try:
        with np.load(ck_path) as ck:
            kind = GridState if "rho" in ck.files else FlowCursor
            missing = [f for f in (*kind._fields, *_FIELDS) if f not in ck.files]
            if missing:
                raise ValueError(f"it has no {missing[0]!r}")
            values = {name: json.loads(str(ck[name])) if name in _RNG_FIELDS else ck[name]
                      for name in kind._fields}
            cursor = kind(**{**values, "step": int(ck["step"]), "t": float(ck["t"])})
            identity = {"run_id": str(ck["run_id"]), "config_hash": str(ck["config_hash"])}
            return cursor, int(ck["frames"]), identity
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"the checkpoint {ck_path} is unreadable or not a wgflow checkpoint "
                         f"({err}); start the run again with `wgflow run --overwrite`") from None


def check_resumable(path, params: dict, config: dict, cursor: FlowCursor | GridState,
                    frames: int,
                    identity: dict, last_frame) -> None:
    """Raise ``ValueError`` unless the checkpoint ``(cursor, frames, identity)`` belongs to the
    run whose file ``path`` has the parameters ``params``
    (:func:`wgflow.files.h5md.read_parameters`) and checked ``config``; ``last_frame(i)``
    reads ``(step, theta)`` (or ``(step, rho)``) of frame ``i`` of the file."""
    def refuse(why):
        raise ValueError(f"the checkpoint of {path} does not belong to it ({why}); it cannot be "
                         "resumed: start it again with `wgflow run --overwrite`")

    if not params["run_id"]:
        refuse("the file records no run identity: it was written by an older wgflow")
    if identity["run_id"] != params["run_id"]:
        refuse(f"it was taken by run {identity['run_id'][:12]}, the file is run "
               f"{params['run_id'][:12]}")
    if not identity["config_hash"] == params["config_hash"] == config_hash(config):
        refuse("its config differs from the file's")
    what, state = state_of(cursor)
    kind = params.get("kind", "particles")
    if (what == "density") != (kind == "density"):
        refuse(f"it holds {what}, the file is a {kind} run")
    if state.shape != tuple(params["shape"]) or str(state.dtype) != params["dtype"]:
        refuse(f"{what} {state.shape} {state.dtype}, the file's "
               f"{tuple(params['shape'])} {params['dtype']}")
    if not 1 <= frames <= params["frames"]:
        refuse(f"it was taken after {frames} frames and the file holds {params['frames']}")
    step, value = last_frame(frames - 1)
    if step > cursor.step or (step == cursor.step and not np.array_equal(value, state)):
        refuse(f"its step {cursor.step} does not follow the file's frame {frames - 1} "
               f"(step {step})")
