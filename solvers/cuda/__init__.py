"""The optional numba.cuda backend: :mod:`~solvers.cuda.driver` (``network_output``, ``vjp`` and
``advance`` with the CPU backend's calls) over :mod:`~solvers.cuda.kernels`. Importing this
package imports neither: :func:`backend` loads them on demand, so that nothing else imports
``numba.cuda``.

The backend needs NVIDIA's ``numba-cuda`` package (``pip install 'wgflow[cuda]'``) and a CUDA
GPU with its driver; numba's simulator (``NUMBA_ENABLE_CUDASIM=1``) stands in for the GPU in
the tests.
"""

from __future__ import annotations

import importlib.util

INSTALL = "pip install 'wgflow[cuda]'"


def backend():
    """The module :mod:`solvers.cuda.driver`; ``ValueError`` saying what is missing when no GPU
    can be used."""
    if importlib.util.find_spec("numba_cuda") is None:
        raise ValueError("backend='cuda' needs NVIDIA's numba-cuda package: "
                         f"{INSTALL} (or use backend='numba')")
    from numba import cuda

    if not cuda.is_available():
        raise ValueError("backend='cuda' found no usable CUDA GPU (numba.cuda.is_available() is "
                         "False): check the NVIDIA driver with nvidia-smi and that the CUDA "
                         f"toolkit libraries are installed ({INSTALL} brings them), or use "
                         "backend='numba'")
    from . import driver

    return driver
