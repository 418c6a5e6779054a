"""Checks of the arrays handed to the compiled kernels (CPU and GPU), run once per call in Python.

Compiled code indexes without bounds checks: an array of the wrong shape or dtype would read or
write out of bounds, or give wrong numbers, instead of failing. Each check raises
``ValueError`` naming the argument, the expected shape (with the sizes known so far) and the
shape received. Sizes: ``N`` particles, ``D`` parameters, ``d`` inputs, ``c`` outputs, ``M``
samples, ``K`` steps, ``B`` batch samples, ``G`` orbit nodes, ``k`` noise directions. Host
(numpy) and device (numba.cuda) arrays are both accepted.
"""

from __future__ import annotations

import numpy as np

#: the dtypes the kernels compute in
FLOAT_DTYPES = ("float32", "float64")


class Sizes:
    """Named sizes, bound by the unit and then by the first array that has each one."""

    def __init__(self, spec):
        self.known = {"D": spec.dim, "d": spec.layers[0].n_in, "c": spec.layers[-1].n_out}

    def check(self, name: str, array, dims: tuple, hint: str = ""):
        """``array`` if its shape is ``dims`` (letters, or digits for fixed sizes), binding the
        letters not yet known; else ``ValueError``."""
        shape = tuple(array.shape) if hasattr(array, "shape") else np.shape(array)
        sizes, ok = dict(self.known), len(shape) == len(dims)
        for n, s in zip(dims, shape, strict=False):  # ok is False if the lengths differ
            ok = ok and s == (int(n) if n.isdigit() else sizes.setdefault(n, s))
        if not ok:
            bound = ", ".join(f"{n} = {self.known[n]}" for n in dict.fromkeys(dims)
                              if n in self.known)
            letters = ", ".join(dims) + ("," if len(dims) == 1 else "")
            raise ValueError(f"{name} must have shape ({letters})"
                             f"{' with ' + bound if bound else ''}{hint}, got {shape}")
        self.known = sizes
        return array


def particles(spec, theta, in_place: bool = False) -> Sizes:
    """Check ``theta (N, D)``: float32 or float64, ``N ≥ 1``; C-contiguous and writeable when
    ``in_place``. Returns the sizes bound so far."""
    dtype = getattr(getattr(theta, "dtype", None), "name", None)
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"theta must be a float32 or float64 array, got dtype {dtype}")
    sizes = Sizes(spec)
    if sizes.check("theta", theta, ("N", "D")).shape[0] == 0:
        raise ValueError("theta must hold at least one particle, got shape (0, D)")
    writeable = not isinstance(theta, np.ndarray) or theta.flags.writeable  # device: always
    if in_place and not (theta.flags["C_CONTIGUOUS"] and writeable):
        raise ValueError("theta is updated in place: it must be a C-contiguous, writeable array "
                         "(pass np.ascontiguousarray(theta) or a copy)")
    return sizes


def samples(spec, theta, x, u=None, w=None) -> None:
    """Check the arguments of ``network_output`` (``theta (N, D)``, ``x (M, d)``) and of
    ``vjp`` (also ``u (M, c)``, ``w (M,)``)."""
    sizes = particles(spec, theta)
    sizes.check("x", x, ("M", "d"))
    if u is not None:
        sizes.check("u", u, ("M", "c"))
        sizes.check("w", w, ("M",))


def flow(spec, theta, batches, orbit, proj, scales, noise) -> None:
    """Check the arguments of ``advance`` (see :func:`solvers.cpu.flow.advance`): ``theta
    (N, D)`` updated in place, ``scales (K + 1,)``, batches ``(K, B, ·)`` or ``(1, B, ·)``, the
    orbit terms ``(G, d, d)``, ``(G, c, c)``, ``(G,)``, ``proj (D, D)`` or ``None`` and the noise
    ``(key, first_step, basis (D, k), amplitudes (K,))`` with ``k ≤ D``, or ``None``."""
    sizes = particles(spec, theta, in_place=True)
    if np.ndim(scales) != 1 or len(scales) == 0:
        raise ValueError(f"scales must have shape (K + 1,) for K steps, got {np.shape(scales)}")
    sizes.known["K"] = len(scales) - 1
    if len(batches) != 3:
        raise ValueError(f"batches must be (x, y, w), got {len(batches)} arrays")
    x, y, w = batches
    fixed = np.shape(x)[:1] == (1,)
    hint = "" if fixed else " (or (1, B, ·): one fixed batch for every step)"
    lead = "1" if fixed else "K"
    sizes.check("batches x", x, (lead, "B", "d"), hint)
    sizes.check("batches y", y, (lead, "B", "c"), hint)
    sizes.check("batches w", w, (lead, "B"), hint)
    sizes.check("orbit.weights", orbit.weights, ("G",))
    sizes.check("orbit.rho_in", orbit.rho_in, ("G", "d", "d"))
    sizes.check("orbit.rho_out", orbit.rho_out, ("G", "c", "c"))
    if proj is not None:
        sizes.check("proj", proj, ("D", "D"))
    if noise is not None:
        if len(noise) != 4:
            raise ValueError("noise must be None or (key, first_step, basis, amplitudes), got "
                             f"{len(noise)} items")
        sizes.check("noise basis", noise[2], ("D", "k"))
        if sizes.known["k"] > sizes.known["D"]:
            raise ValueError(f"noise basis must have shape (D, k) with k ≤ D = "
                             f"{sizes.known['D']}, got {np.shape(noise[2])}")
        sizes.check("noise amplitudes", noise[3], ("K",))
