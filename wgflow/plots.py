"""Figures of a run (matplotlib, object-oriented: ``ax=`` in, axes out).

Particle views use coordinates in an orthonormal basis adapted to ``E^G``: ``e₁, e₂`` span (part
of) ``E^G``, ``e₃`` is the direction orthogonal to ``E^G`` along which the students spread most.
The 3-D view shows the ``E^G`` plane; the edge-on view looks along ``e₂`` so that ``E^G`` is a line
(``e₃ = 0``) and any distance from it is visible. Curves of observables say in their axis label
how the observable was computed (:attr:`wgflow.Result.methods`: sliced W₂, Gauss–Hermite
quadrature with its points, …). A grid PDE run's density (:class:`wgflow.pde.PDEResult`) is a
heat map in 2-D and a curve in 1-D, with particles overlaid in the grid's coordinates
(:func:`density`, :func:`grid_coordinates`).
"""

from __future__ import annotations

import numpy as np

#: axis labels of the observables
LABELS = {"risk": "population risk", "teacher_l2": "teacher–student L² error",
          "distance_to_EG": "distance to E^G", "distance_to_WI": "distance to WI"}


def method_label(result, name: str) -> str:
    """How ``result`` computed the observable ``name``, in words: ``"sliced W₂ (a lower bound)"``,
    ``"exact W₂"``, ``"Gauss–Hermite quadrature, 32 points per dimension"``, …"""
    method = result.method(name)
    if method in ("exact", "sliced"):
        return f"{method} W₂" + (" (a lower bound)" if method == "sliced" else "")
    if method == "quadrature":
        points = (result.config.get("population") or {}).get("points_per_dim")
        return "Gauss–Hermite quadrature" + (f", {points} points per dimension"
                                             if points else "")
    return method.replace("-", " ")


def observable(result, name: str, ax=None):
    """The observable ``name`` against MF time (log scale; exact zeros drawn at the smallest
    positive float), its axis label saying how it was computed."""
    ax = ax or _axes()
    values = np.maximum(result.observable(name), np.finfo(float).tiny)
    ax.semilogy(result.times, values, marker=".")
    label = LABELS.get(name, name)
    ax.set(xlabel="MF time t", ylabel=f"{label}\n({method_label(result, name)})", title=label)
    return ax


def risk(result, ax=None):
    """Population risk against MF time (log scale)."""
    return observable(result, "risk", ax)


def distance_to_EG(result, ax=None):
    """``RMD(μ_t, (P_G)_# μ_t)`` against MF time."""
    return observable(result, "distance_to_EG", ax)


def view_basis(eg_basis: np.ndarray, particles: np.ndarray) -> np.ndarray:
    """``(D, 3)`` orthonormal columns: up to two of ``E^G``, then directions orthogonal to
    ``E^G`` by decreasing spread of ``particles`` (zero columns when ``D < 3``)."""
    dim = particles.shape[1]
    u, s, _ = np.linalg.svd(np.eye(dim) - eg_basis @ eg_basis.T)
    complement = u[:, s > 0.5]
    if complement.shape[1]:
        coords = particles @ complement
        _, _, vt = np.linalg.svd(coords - coords.mean(0))
        complement = complement @ vt.T
    basis = np.concatenate([eg_basis[:, :2], complement], axis=1)[:, :3]
    return np.pad(basis, ((0, 0), (0, 3 - basis.shape[1])))


def particles_3d(result, eg_basis, frame: int = -1, ax=None):
    """Teacher squares, student dots and the ``E^G`` plane in the basis of :func:`view_basis`."""
    if ax is None:
        import matplotlib.pyplot as plt
        ax = plt.figure(figsize=(5, 5)).add_subplot(projection="3d")
    students = result.particles[frame]
    basis = view_basis(eg_basis, students)
    s = students @ basis
    lim = 1.1 * max(np.abs(s).max(), 1e-12)
    if eg_basis.shape[1] >= 2:
        u, v = np.meshgrid(np.linspace(-lim, lim, 2), np.linspace(-lim, lim, 2))
        ax.plot_surface(u, v, 0 * u, alpha=0.15, color="tab:green")
    if result.teacher is not None:
        t = result.teacher @ basis
        ax.scatter(t[:, 0], t[:, 1], t[:, 2], marker="s", s=40, color="tab:red", label="teacher")
    ax.scatter(s[:, 0], s[:, 1], s[:, 2], s=8, color="tab:blue", label="students")
    ax.set(xlabel="e1 (E^G)", ylabel="e2 (E^G)", zlabel="e3 (⊥ E^G)",
           title=f"particles at t = {result.times[frame]:.3g}\n"
                 "projection: e1, e2 span E^G, e3 ⊥ E^G of largest student spread")
    ax.legend(loc="upper left")
    return ax


def particles_edge_on(result, eg_basis, frame: int = -1, ax=None):
    """The same view seen along ``e₂``: ``E^G`` is the line ``e₃ = 0``."""
    ax = ax or _axes()
    students = result.particles[frame]
    basis = view_basis(eg_basis, students)
    s = students @ basis
    ax.axhline(0.0, color="tab:green", label="E^G")
    if result.teacher is not None:
        t = result.teacher @ basis
        ax.scatter(t[:, 0], t[:, 2], marker="s", s=40, color="tab:red", label="teacher")
    ax.scatter(s[:, 0], s[:, 2], s=8, color="tab:blue", label="students")
    ax.set(xlabel="e1 (E^G)", ylabel="e3 (⊥ E^G)", title="edge-on view of E^G")
    ax.legend()
    return ax


def grid_coordinates(result, particles: np.ndarray) -> np.ndarray:
    """Particles ``(N, D)`` in the coordinates of the grid of the PDE ``result``: ``θ B`` (the
    orthogonal projection onto ``E^G``, in the basis ``B``) for ``E^G`` coordinates, else
    ``θ`` itself."""
    particles = np.asarray(particles, dtype=float)
    return particles if result.basis is None else particles @ result.basis


def density(result, frame: int = -1, particles=None, ax=None):
    """The density of ``frame`` of a PDE ``result``: a heat map in 2-D, a curve in 1-D, with
    ``particles (N, k)`` in grid coordinates (:func:`grid_coordinates`) overlaid as dots (2-D)
    or a histogram on the grid's cells (1-D)."""
    ax = ax or _axes()
    rho, centers = result.density[frame], result.centers
    axis = "z" if result.basis is not None else "θ"
    where = " (E^G coordinates)" if result.basis is not None else ""
    if rho.ndim == 1:
        ax.plot(centers[0], rho, color="tab:blue", label="PDE density")
        if particles is not None:
            h = centers[0][1] - centers[0][0]
            edges = np.append(centers[0] - h / 2, centers[0][-1] + h / 2)
            ax.hist(particles[:, 0], bins=edges, density=True, alpha=0.4, color="tab:orange",
                    label=f"{len(particles)} particles")
        ax.set(xlabel=f"{axis}{where}", ylabel="density")
        ax.legend()
    else:
        mesh = ax.pcolormesh(centers[0], centers[1], rho.T, shading="nearest", cmap="viridis")
        ax.figure.colorbar(mesh, ax=ax, label="density")
        if particles is not None:
            ax.scatter(particles[:, 0], particles[:, 1], s=5, color="white", edgecolors="black",
                       linewidths=0.3, label=f"{len(particles)} particles")
            ax.legend(loc="upper right")
        ax.set(xlabel=f"{axis}1{where}", ylabel=f"{axis}2", aspect="equal")
    ax.set_title(f"density at t = {result.times[frame]:.3g}")
    return ax


def _axes():
    import matplotlib.pyplot as plt
    return plt.figure(figsize=(5, 4)).add_subplot()
