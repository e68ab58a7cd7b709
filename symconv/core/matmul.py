"""Matrix products (``nn.Linear``, and later every aten matrix product): counts under each convention.

A product of an (m × k) matrix by a (k × n) one makes m·n outputs, each of k
products summed by k − 1 additions; a bias adds one addition per output. Every
product reaches the output, so the docs and exact conventions agree (the docs
pages' Linear rule): m·n·(2k − 1 + bias). macs counts m·k·n.
"""

from __future__ import annotations

import sympy as sp

from .conventions import get_convention

rows = sp.Symbol("rows", integer=True, positive=True)        # m: rows of the result (a Linear's input rows)
inner = sp.Symbol("inner", integer=True, positive=True)      # k: the contracted size (in_features)
columns = sp.Symbol("columns", integer=True, positive=True)  # n: columns of the result (out_features)
PARAMETERS = (rows, inner, columns)


def matmul_total(bias: bool, convention: str = "docs") -> sp.Expr:
    """Operations of an (m × k)·(k × n) product, plus a bias when ``bias``."""
    if get_convention(convention).name == "macs":
        return rows * inner * columns
    return rows * columns * (2 * inner - 1 + int(bias))
