"""Strong invariance from data: the largest subspace that supports SI laws, found by training
without the group (:mod:`.discovery`), and the SI optimality gap, the price of confining the
parameters to ``E^G`` (:mod:`.gap`); their built-in studies and files (:mod:`.studies`)."""

from .discovery import Discovery, DiscoveryStep, discover_subspace, random_line
from .gap import SIGap, counterexample, si_gap

__all__ = ["Discovery", "DiscoveryStep", "SIGap", "counterexample", "discover_subspace",
           "random_line", "si_gap"]
