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

The **hybrid flux** (``flux="hybrid"``, :func:`~solvers.pde.reference.hybrid_transport`) takes
the linear diffusion out of ``ξ`` (``ξ = U + W ⋆ ρ + H'(ρ)``) into the flux,
``F = F_adv − β (ρ_{j+1} − ρ_j)/h``, and uses for ``F_adv`` the central
``½(ρ_j u_j + ρ_{j+1} u_{j+1})`` with node velocities ``u_j = −(ξ_{j+1} − ξ_{j−1})/(2h)``
wherever that keeps both cells' coefficients non-negative (``u_j ≥ −2β/h`` and
``u_{j+1} ≤ 2β/h``: cell Péclet numbers ``|u| h/(2β) ≤ 1``), and the upwind flux above
elsewhere (Spalding's hybrid differencing). Where every face is central the discrete moments
follow the continuous ones exactly: summing by parts, ``d/dt Σ_j z_j ρ_j h = Σ_j ρ_j u_j h``
and ``d/dt Σ_j z_j² ρ_j h = 2 Σ_j ρ_j z_j u_j h + 2β Σ_j ρ_j h`` (up to the mass in the first and
last cells), so for ``W = |z|²/2`` the mean is conserved and the variance solves
``dVar/dt = −2 Var + 2β`` up to the time stepping alone; the upwind flux errs there by
``O(h²)``. It keeps the mass to rounding and ``ρ ≥ 0`` under the bound
``ς Δt Σ_i (5 a_i/(2h_i) + 2β/h_i²) ≤ 1`` (``a_i`` the largest face or node speed on axis
``i``: a cell's weight left after a stage, with a central face on one side and an upwind one on
the other, is at least ``1 − ς Δt (5a/4 + β/h) 2/h`` of each half of its reconstruction); the
free-energy decay is not proven for the central faces: it is measured (``tests/test_pde.py``)
and the ``free_energy`` observable shows it. It pays on grids fine enough for ``β``
(``h ≲ 2β / max|u|``), where the upwind flux's ``O(h²)`` numerical flux is the largest error.

Modules: :mod:`~solvers.pde.grid` (the grid, FFT convolutions), :mod:`~solvers.pde.reference`
(numpy kernels) and :mod:`~solvers.pde.compiled` (Numba, same calls),
:mod:`~solvers.pde.integrators` (state, step, stable step).
"""

from . import grid, integrators, reference  # noqa: F401
