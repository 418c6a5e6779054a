"""The one result type of a simulation, whatever the options."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Recorded:
    """What every recorded trajectory (one with an ``observables`` dict) offers:
    ``observable(name)`` with an error that lists the recorded names."""

    def observable(self, name: str) -> np.ndarray:
        """The recorded values of ``name``, ``(F, ...)``; a ``KeyError`` lists the recorded names.
        """
        try:
            return self.observables[name]
        except KeyError:
            raise KeyError(f"observable {name!r} was not recorded; recorded: "
                           f"{sorted(self.observables)}") from None


@dataclass(frozen=True)
class Result(Recorded):
    """A recorded trajectory.

    ``times (F,)`` MF times and ``steps (F,)`` step counts of the ``F`` recorded frames;
    ``particles (F, N, D)``; ``observables[name] (F,)``; ``methods[name]``: how that observable
    was computed (:data:`wgflow.dynamics.OBSERVABLE_METHODS`: e.g. ``"quadrature"`` for the risk,
    ``"exact"`` or ``"sliced"`` W₂ for ``distance_to_WI``; ``"unknown"`` from files written before
    methods were recorded); ``config``: the JSON-able description of the problem and every
    option, with ``config["population"]`` saying how ``E_π`` was taken and, for a quadrature, its
    estimated relative error (:func:`wgflow.problem.quadrature_error`); ``seeds``: the entropy
    of the root ``SeedSequence``; ``teacher (K, D)`` or ``None``; ``status``: ``"complete"`` or
    ``"diverged"``.
    """

    times: np.ndarray
    steps: np.ndarray
    particles: np.ndarray
    observables: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)
    teacher: np.ndarray | None = None
    status: str = "complete"
    methods: dict = field(default_factory=dict)

    @property
    def final(self) -> np.ndarray:
        """Particles at the last recorded frame, ``(N, D)``."""
        return self.particles[-1]

    def method(self, name: str) -> str:
        """How the observable ``name`` was computed (``"unknown"`` when not recorded)."""
        return self.methods.get(name, "unknown")
