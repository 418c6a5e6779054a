"""Exclusive access to a run file or a sweep directory between processes.

``exclusive(lock_path, what)`` holds an advisory ``flock`` on ``lock_path`` (a sidecar file) for
the duration of a ``with`` block and records the holder (process id, host, start time) in it.
A second holder is refused at once with a ``ValueError`` naming the first. The operating system
releases the lock when its process ends, even on ``kill -9``, so a stale sidecar left behind
never blocks a later run. On a normal exit the sidecar is removed; a process that acquires the
lock checks that the sidecar it locked is still the one on disk (not one removed meanwhile), so
two processes never both hold it. Readers (``wgflow info``) take no lock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path


def _holder() -> str:
    return (f"pid {os.getpid()} on {socket.gethostname()}, since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}")


def _try_lock(path: Path):
    """The open, locked sidecar ``path``; ``None`` when another process holds it."""
    import fcntl

    while True:
        fh = open(path, "a+", encoding="utf-8")  # never truncates the holder's record
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:  # removed by its previous holder after we opened it
            same = False
        if same:
            return fh
        fh.close()


@contextlib.contextmanager
def exclusive(path, what: str):
    """Hold the lock ``path`` while the block runs; ``what`` names the guarded thing in the
    refusal (e.g. ``"run file x.h5"``). Without ``fcntl`` (Windows) no lock is taken."""
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover
        yield
        return
    path = Path(path)
    fh = _try_lock(path)
    if fh is None:
        try:
            holder = path.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            holder = "another process"
        raise ValueError(f"{what} is in use by another wgflow process ({holder}; lock "
                         f"{path}); wait for it to finish or stop it")
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(_holder() + "\n")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        fh.close()
