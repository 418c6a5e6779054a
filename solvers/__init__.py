"""How wgflow integrates: kernels for the risk's first variation and time integrators.

Everything here works on plain arrays and small records; nothing imports :mod:`wgflow`
(imports run one way, ``wgflow → solvers``).

The layout follows the backends, each a tier of checked calls over drivers over kernels:

- this package: the numpy reference (:mod:`solvers.layered`, :mod:`solvers.activations`), the
  time integrators, and what the compiled backends share (argument checks in
  :mod:`solvers.checks`, run once per call: compiled code has no bounds checks; the per-sample
  arithmetic of :mod:`solvers.sample_terms`);
- :mod:`solvers.cpu`: the Numba CPU kernels (:mod:`solvers.cpu.layered`, :mod:`solvers.cpu.flow`
  over the tile passes, the vectorized activations and the counter-based noise), and the
  sliced W₂ of :mod:`wgflow.diagnostics` (:mod:`solvers.cpu.sliced`);
- :mod:`solvers.cuda`: the numba.cuda backend, loaded on demand by :func:`solvers.cuda.backend`
  (:mod:`solvers.cuda.driver` over :mod:`solvers.cuda.kernels`; compiled on first use per unit
  and dtype, not cached on disk: the kernels are specialized closures);
- :mod:`solvers.pde`: the grid solver of low-dimensional flows.

Imports run one way inside too: ``cuda → cpu`` (the unit tables and the noise stream's
constants), ``pde → cpu``, and every subpackage → this package's shared modules.

The compiled kernels are cached on disk under a directory named by a hash of their sources
(below ``NUMBA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/wgflow/numba`` or
``~/.cache/wgflow/numba``): numba checks only the defining file of a cached function, so a change
to a kernel it inlines from another module would otherwise load stale machine code.

Parallel regions run on numba's TBB threading layer where the ``tbb`` package is installed (a
dependency on x86-64): its idle threads spin briefly, then yield and sleep, so a region that
follows another starts at once and a busy machine loses no core to them. Where numba falls back
to OpenMP, its threads wait passively between regions (``OMP_WAIT_POLICY=PASSIVE`` unless the
environment sets it before wgflow is imported): spinning OpenMP threads took the core from the
thread with work whenever anything else ran on the machine, up to 12× slower on 2 cores for the
grid solver's short regions. numpy's OpenBLAS threads go to sleep as soon as a BLAS call ends
(``OPENBLAS_THREAD_TIMEOUT=4``, unless the environment sets it; it takes effect when this package
is imported before numpy): they otherwise spin for about 0.1 s after every call, and a kernel
started in that time ran 10 % slower on 2 cores.
"""

import contextlib
import hashlib
import importlib
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when OpenMP first loads
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # read once, when numpy loads OpenBLAS

import numba

#: the modules whose functions are compiled with ``cache=True``, in import order
COMPILED_MODULES = ("cpu/fast_math", "cpu/wide_layer", "cpu/tiles", "cpu/counter_rng",
                    "cpu/layered", "cpu/flow", "cpu/sliced", "pde/compiled")
#: the sources compiled code depends on (the activation names come from ``activations``, the
#: activations' lane evaluations from ``cpu/activations``)
KERNEL_SOURCES = ("activations", "cpu/activations", "cpu/units", "cpu/fast_math32",
                  "sample_terms", *COMPILED_MODULES)


def kernel_cache_dir() -> Path:
    """The directory of the compiled kernels' on-disk cache, named by numba's version and a hash of
    the kernel sources."""
    here = Path(__file__).parent
    digest = hashlib.sha256(b"".join((here / f"{m}.py").read_bytes()
                                     for m in KERNEL_SOURCES)).hexdigest()[:16]
    base = numba.config.CACHE_DIR or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    sub = () if numba.config.CACHE_DIR else ("wgflow", "numba")
    return Path(base, *sub, f"{numba.__version__}-{digest}")


@contextlib.contextmanager
def _caching_into(path: Path):
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(path)
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved


with _caching_into(kernel_cache_dir()):
    # by module path, binding no name here: ``solvers.layered`` stays the numpy reference
    for _module in COMPILED_MODULES:
        importlib.import_module("." + _module.replace("/", "."), __name__)
