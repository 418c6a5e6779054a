"""The Numba CPU backend: tiled, vectorized kernels behind the calls of the numpy reference.

From the bottom up: :mod:`~solvers.cpu.fast_math` (``exp`` and the activations from arithmetic
only, so LLVM vectorizes them; float32 ones in :mod:`~solvers.cpu.fast_math32`),
:mod:`~solvers.cpu.activations` and :mod:`~solvers.cpu.units` (the activation and the unit's
layer table as compile-time constants), :mod:`~solvers.cpu.tiles` and
:mod:`~solvers.cpu.wide_layer` (the forward and backward passes of one tile of particles and
samples), :mod:`~solvers.cpu.layered` (``network_output``/``vjp`` with the reference's calls and
shapes) and :mod:`~solvers.cpu.flow` (many steps of the particle flow per call, its noise from
:mod:`~solvers.cpu.counter_rng`). :mod:`~solvers.cpu.sliced` is the sliced W₂ of the
diagnostics. The kernels are cached on disk (:func:`solvers.kernel_cache_dir`); importing
:mod:`solvers` loads them.
"""
