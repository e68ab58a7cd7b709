"""Counting conventions: what a multiplication, an addition and an aggregation are.

A convention is data handed to the model, not a fork of it: three functions of
the model giving per-filter multiplications, per-filter additions and the
filter aggregation γ. λ = multiplications + additions and
total = N·(ψ·λ + γ) hold under every convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import sympy as sp

from .names import CONVENTION_DESCRIPTIONS, convention_name
from .symbols import C_in, C_out, additions_per_filter, groups

if TYPE_CHECKING:
    from .model import CostModel


@dataclass(frozen=True)
class Convention:
    """One way to count; ``description`` is what reports print beside the numbers."""

    name: str
    description: str
    multiplications: Callable[["CostModel"], sp.Expr]
    additions: Callable[["CostModel"], sp.Expr]
    aggregation: Callable[["CostModel", bool], sp.Expr]


def _docs_additions(m: "CostModel") -> sp.Expr:
    # Plain: k-1 additions per output element. Transposed: the pages' ones-convolution
    # measurement sum(y - 1), a symbol until resolved to ΠS - ΠL_out.
    return additions_per_filter if m.transposed else m.out_elements * (m.kernel_elements - 1)


DOCS = Convention(
    "docs",
    CONVENTION_DESCRIPTIONS["docs"],
    multiplications=lambda m: m.out_elements * m.kernel_elements,
    additions=_docs_additions,
    aggregation=lambda m, bias: C_out * m.out_elements * (C_in / groups - 1 + int(bias)),
)

EXACT = Convention(
    "exact",
    CONVENTION_DESCRIPTIONS["exact"],
    multiplications=lambda m: m.sum_elements,
    additions=lambda m: m.sum_elements - m.reached_elements,
    aggregation=lambda m, bias: C_out * (m.reached_elements * (C_in / groups - 1) + int(bias) * m.out_elements),
)

MACS = Convention(
    "macs",
    CONVENTION_DESCRIPTIONS["macs"],
    multiplications=lambda m: (m.in_elements if m.transposed else m.out_elements) * m.kernel_elements,
    additions=lambda m: sp.Integer(0),
    aggregation=lambda m, bias: sp.Integer(0),
)

CONVENTIONS: dict[str, Convention] = {c.name: c for c in (DOCS, EXACT, MACS)}


def get_convention(name: str | Convention) -> Convention:
    """Look a convention up by name (case-insensitive); SymconvError naming an unknown one."""
    if isinstance(name, Convention):
        return name
    return CONVENTIONS[convention_name(name)]
