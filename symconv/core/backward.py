"""A convolution's backward pass: the operation counts of its three gradients, under each convention.

Per axis, a layer's valid (input i, tap t, output j) triples are plain
``j in [0, L_out), t in [0, k), i = j*s + t*d - p_left in [0, L)`` and transposed
``i in [0, L), t in [0, k), j = i*s + t*d - p in [0, L_out)``; the n-d set is the
product of the axes'. Their number per axis is the forward's S (every triple is one
product that reaches the output). With Z_in and Z_tap the input positions and the
taps some triple touches, and ψ = C_in·C_out/groups:

* exact: only products that a gradient keeps, and the additions that combine them,
    grad_input  = N·(ψ·(2ΠS − ΠZ_in) + C_in·ΠZ_in·(C_out/groups − 1)),
    grad_weight = ψ·(2·N·ΠS − ΠZ_tap),
    grad_bias   = C_out·(N·ΠL_out − 1);
* docs: the pages' method applied to the convolutions backward runs. grad_input is
  the adjoint layer (a transposed layer for a plain one and the reverse, from the
  output size back to the input size) counted as the pages count it, without bias;
  every grad_weight element is a sum of N·ΠW products (W the output size of a
  plain layer, the input size of a transposed one, as its adjoint kernel);
  grad_bias as exact;
* macs: grad_input and grad_weight each cost the forward's multiply-accumulates;
  grad_bias none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp

from .conventions import get_convention
from .overlap import PlainCoverage, TapCoverage, TransposedCoverage
from .symbols import Axis, C_in, C_out, N, _symbol, groups

if TYPE_CHECKING:
    from .model import CostModel

GRADIENTS = ("grad_input", "grad_weight", "grad_bias")
#: each gradient's name in the pages' LaTeX, as the left side of its equation
GRADIENT_LATEX = {which: r"\text{" + which.replace("_", r"\_") + "}" for which in GRADIENTS}


@dataclass(frozen=True)
class GradientAxis:
    """An axis' symbols for the backward pass: its forward symbols, and the positions gradients touch."""

    axis: Axis
    Z_in: sp.Symbol   # input positions some triple touches
    Z_tap: sp.Symbol  # taps some triple touches


def gradient_axis(ax: Axis) -> GradientAxis:
    letter = ax.letter
    return GradientAxis(ax, _symbol(f"Zin_{letter}", rf"Z^{{in}}_{{{letter}}}", per_axis=True, nonnegative=True),
                        _symbol(f"Ztap_{letter}", rf"Z^{{tap}}_{{{letter}}}", per_axis=True, nonnegative=True))


def input_coverage(ax: Axis, transposed: bool) -> sp.Expr:
    """Z_in: the coverage counters with the roles of input and output exchanged."""
    if transposed:  # i with some i*s + t*d - p in [0, L_out)
        return PlainCoverage(ax.L_out, ax.k, ax.s, ax.p, ax.d, ax.L)
    return TransposedCoverage(ax.L_out, ax.k, ax.s, ax.p, ax.d, ax.L)  # i = j*s + t*d - p for some j, t


def tap_coverage(ax: Axis, transposed: bool) -> sp.Expr:
    """Z_tap: taps with some admissible input (transposed) or output (plain) index."""
    n, window = (ax.L, ax.L_out) if transposed else (ax.L_out, ax.L)
    return TapCoverage(n, ax.k, ax.s, ax.p, ax.d, window)


def gradients(model: "CostModel", convention: str = "exact") -> dict[str, sp.Expr]:
    """grad_input, grad_weight and grad_bias in the channels and per-axis L, L_out, k, S, Z_in, Z_tap."""
    name = get_convention(convention).name
    axes = [gradient_axis(a) for a in model.axes]
    psi = model.psi
    prod = lambda xs: sp.Mul(*xs)  # noqa: E731
    S, L, L_out, K = (prod(getattr(a.axis, f) for a in axes) for f in ("S", "L", "L_out", "k"))
    Z_in, Z_tap = prod(a.Z_in for a in axes), prod(a.Z_tap for a in axes)
    bias = C_out * (N * L_out - 1)
    if name == "exact":
        return {"grad_input": N * (psi * (2 * S - Z_in) + C_in * Z_in * (C_out / groups - 1)),
                "grad_weight": psi * (2 * N * S - Z_tap), "grad_bias": bias}
    if name == "docs":
        if model.transposed:  # the adjoint is a plain layer from L_out to L
            per_filter = L * (2 * K - 1)
            window = L
        else:  # the adjoint is a transposed layer from L_out to L: ΠL·Πk products, sum(y - 1) = ΠS - ΠL
            per_filter = L * K + S - L
            window = L_out
        return {"grad_input": N * (psi * per_filter + C_in * L * (C_out / groups - 1)),
                "grad_weight": psi * K * (2 * N * window - 1), "grad_bias": bias}
    macs = model.total(bias=False, convention="macs")
    return {"grad_input": macs, "grad_weight": macs, "grad_bias": sp.Integer(0)}


def count_parameters(model: "CostModel") -> tuple[sp.Symbol, ...]:
    """The symbols of :func:`gradients`, in a fixed order: channels, then per axis L, L_out, k, S, Z_in, Z_tap."""
    per_axis = []
    for a in model.axes:
        g = gradient_axis(a)
        per_axis += [a.L, a.L_out, a.k, a.S, g.Z_in, g.Z_tap]
    return (N, C_in, C_out, groups, *per_axis)
