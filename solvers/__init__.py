"""How wgflow integrates: kernels for the risk's first variation and time integrators.

Everything here works on plain arrays and small records; nothing imports :mod:`wgflow`
(imports run one way, ``wgflow → solvers``).
"""
