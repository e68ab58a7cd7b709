"""torch.nn.Linear: its operation count under each convention, written once symbolically.

Per input row, each of the ``out`` outputs is ``in`` products summed by
``in - 1`` additions, plus one addition for the bias. Every product reaches the
output, so the docs and exact conventions agree; macs counts ``out·in``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .conventions import get_convention

rows = sp.Symbol("rows", integer=True, positive=True)
in_features = sp.Symbol("in_features", integer=True, positive=True)
out_features = sp.Symbol("out_features", integer=True, positive=True)


def linear_total(bias: bool, convention: str = "docs") -> sp.Expr:
    """Operations of a Linear layer on ``rows`` input rows."""
    if get_convention(convention).name == "macs":
        return rows * out_features * in_features
    return rows * out_features * (2 * in_features - 1 + int(bias))


@lru_cache(maxsize=None)
def _compiled(bias: bool, convention: str):
    return sp.lambdify((rows, in_features, out_features), linear_total(bias, convention), modules=[])


def count_linear(in_f: int, out_f: int, bias: bool, input_shape: tuple[int, ...], convention: str = "docs") -> int:
    """Exact operations of ``Linear(in_f, out_f, bias)`` on an input of ``input_shape`` (..., in_f)."""
    shape = tuple(input_shape)
    if not shape or shape[-1] != in_f:
        raise ValueError(f"input shape {shape!r} must end in in_features={in_f}")
    n_rows = 1
    for v in shape[:-1]:
        n_rows *= v
    return int(_compiled(bias, get_convention(convention).name)(n_rows, in_f, out_f))
