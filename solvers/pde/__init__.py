"""A finite-volume solver of Wasserstein gradient flows on a uniform grid in one or two
dimensions: ``∂_t ρ = ς ∇·(ρ ∇ξ)``, ``ξ = δF/δρ = U + W ⋆ ρ + β log ρ + H'(ρ)``, no flux
through the box's boundary.

The scheme is the upwind finite-volume method of Carrillo, Chertock and Huang (Commun. Comput.
Phys. 17, 2015). Per axis, with ``h`` the spacing and ``ξ_j`` the chemical potential at the
centres, the face ``j + ½`` carries the velocity ``u = −(ξ_{j+1} − ξ_j)/h`` and the flux
``F = u⁺ ρ^E_j + u⁻ ρ^W_{j+1}``, where ``ρ^{E,W}_j = ρ_j ± s_j`` are minmod reconstructions
(:func:`solvers.pde.reference.half_jumps`), non-negative when ``ρ`` is; then
``dρ_j/dt = −ς (F_{j+½} − F_{j−½})/h``. Hence:

- the mass ``Σ ρ_j |C|`` is conserved to rounding (the fluxes telescope, zero at the walls);
- ``ρ ≥ 0`` under the step bound of :mod:`solvers.pde.integrators`;
- the discrete free energy ``F_h(ρ) = Σ_j (U_j ρ_j + ½ ρ_j (W ⋆ ρ)_j + β ρ_j log ρ_j + H(ρ_j))|C|``,
  whose gradient is ``ξ_j |C|``, decreases along the semi-discrete flow:
  ``dF_h/dt = −ς Σ_faces (u⁺² ρ^E + u⁻² ρ^W) |C| ≤ 0``;
- the scheme is second order in space where the solution is smooth (first order at extrema,
  where minmod clips, and in the first and last cells), and the time stepping (SSP-RK2) is
  second order.

Modules: :mod:`~solvers.pde.grid` (the grid, FFT convolutions), :mod:`~solvers.pde.reference`
(numpy kernels) and :mod:`~solvers.pde.compiled` (Numba, same calls),
:mod:`~solvers.pde.integrators` (state, step, stable step).
"""

from . import grid, integrators, reference  # noqa: F401
