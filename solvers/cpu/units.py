"""Layered units as compile-time constants of the compiled kernels.

A kernel receives the unit as a :class:`CompiledUnit` argument, whose numba type carries the
unit's layer table: numba compiles (and caches) each kernel once per unit shape it is called
with, and the tile passes (:func:`solvers.cpu.tiles.forward`,
:func:`solvers.cpu.tiles.backpropagate`) are generated from the table while the kernel is typed,
with every trip count and row offset a constant. The sizes of the tile buffers are attributes of
the unit, in Python and in compiled code alike (``unit.rows``, ``unit.width``,
``unit.out_row``).
"""

from __future__ import annotations

import functools

from numba import types
from numba.extending import NativeValue, models, overload_attribute, register_model, unbox

from ..layered import UnitSpec

N_OUT, N_IN, W_OFFSET, B_OFFSET, ACTIVATED, ROW = range(6)


def _sizes(table):
    """``(rows, width, out_row)``: the rows ``R = Σ_l n_l`` of the tile buffers, the most outputs
    ``W`` of a layer (``g``, ``g_next`` hold ``∂/∂z`` of a layer: its outputs, or the inputs of
    the one above) and the first row of the unit's output."""
    rows = table[-1][ROW] + table[-1][N_OUT]
    width = max(layer[N_OUT] for layer in table)
    return rows, width, table[-1][ROW]


class UnitType(types.Type):
    """The numba type of a :class:`CompiledUnit`: one type per layer table, with no run-time
    value."""

    def __init__(self, table: tuple[tuple[int, ...], ...]):
        self.table = table
        self.rows, self.width, self.out_row = _sizes(table)
        super().__init__(name=f"CompiledUnit({table})")


register_model(UnitType)(models.OpaqueModel)


@unbox(UnitType)
def _unbox_unit(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


def _constant_attribute(name):
    @overload_attribute(UnitType, name, inline="always")
    def _attribute(unit):
        value = getattr(unit, name)
        return lambda unit: value


for _name in ("rows", "width", "out_row"):
    _constant_attribute(_name)


class CompiledUnit:
    """A unit's layer table as a kernel argument (see the module docstring).

    ``table``: per layer ``(n_out, n_in, w_offset, b_offset (−1: none), activated, row)``, the
    layer's :class:`solvers.layered.Layer` and the first row of its outputs in the tile
    buffers."""

    def __init__(self, table: tuple[tuple[int, ...], ...]):
        self.table = table
        self.rows, self.width, self.out_row = _sizes(table)
        self._numba_type_ = UnitType(table)  # read by numba's dispatch, without a lookup

    def __repr__(self):
        return f"CompiledUnit({self.table})"


@functools.lru_cache(maxsize=64)
def compiled_unit(spec: UnitSpec) -> CompiledUnit:
    """The :class:`CompiledUnit` of ``spec``."""
    table, row = [], 0
    for layer in spec.layers:
        table.append((layer.n_out, layer.n_in, layer.w_offset, layer.b_offset,
                      int(layer.activated), row))
        row += layer.n_out
    return CompiledUnit(tuple(table))
