"""Matrix products (``nn.Linear``, and later every aten matrix product): counts under each convention.

A product of an (m × k) matrix by a (k × n) one makes m·n outputs, each of k
products summed by k − 1 additions; a bias adds one addition per output. Every
product reaches the output, so the docs and exact conventions agree (the docs
pages' Linear rule): m·n·(2k − 1 + bias). macs counts m·k·n.

A sparse factor stores some of its elements (the coalesced ones of a COO, CSR or
CSC matrix), and only those are multiplied. The exact convention counts what that
leaves, as it skips a convolution's products with padded zeros: an output whose
line (a row of a left factor, a column of a right one) stores r elements sums r
products by r − 1 additions, plus one for a bias; a line storing none leaves its
outputs at the bias, or zero, with no operation. The docs and macs conventions read
the shapes, as the pages' rule and the peers' m·k·n do, dense or not.
"""

from __future__ import annotations

import sympy as sp

from .conventions import get_convention

rows = sp.Symbol("rows", integer=True, positive=True)        # m: rows of the result (a Linear's input rows)
inner = sp.Symbol("inner", integer=True, positive=True)      # k: the contracted size (in_features)
columns = sp.Symbol("columns", integer=True, positive=True)  # n: columns of the result (out_features)
PARAMETERS = (rows, inner, columns)

stored = sp.Symbol("stored", integer=True, nonnegative=True)      # the elements the sparse factor stores
lines = sp.Symbol("lines", integer=True, nonnegative=True)        # its lines storing at least one element
per_line = sp.Symbol("per_line", integer=True, positive=True)     # outputs per line: the other factor's other size
SPARSE_PARAMETERS = (stored, lines, per_line)


def matmul_total(bias: bool, convention: str = "docs") -> sp.Expr:
    """Operations of an (m × k)·(k × n) product, plus a bias when ``bias``."""
    if get_convention(convention).name == "macs":
        return rows * inner * columns
    return rows * columns * (2 * inner - 1 + int(bias))


def sparse_matmul_total(bias: bool) -> sp.Expr:
    """Exact operations of a product with one sparse factor, plus a bias when ``bias``: summed over its lines,
    each of ``per_line`` outputs, 2·r − 1 + bias operations for a line storing r elements, none for an empty one."""
    return per_line * (2 * stored - lines + int(bias) * lines)
