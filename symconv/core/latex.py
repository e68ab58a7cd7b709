"""LaTeX in the docs pages' notation, printed by a customised SymPy printer.

The pages write ``\\text{kernel\\_size[0]}``, ``\\times`` for products, and their
terms in a reading order: sizes before the layer's arguments (``(H_{in} - 1)
\\times \\text{stride[0]} - 2 \\times \\text{padding[0]} + …``), batch and channels
first in a total (``N \\times C_{in} \\times C_{out} …``), constants last. SymPy
orders terms by its own canonical key; :class:`PagePrinter` reorders each sum and
product by the rank of the symbols it holds (:data:`RANK`), which changes the
printing only, never the expression.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .symbols import LATEX_NAMES
from .text import over_one_denominator

GREEK = {"psi": r"\psi", "lambda": r"\lambda", "gamma": r"\gamma"}

#: reading order of the symbols, by name (an axis' symbols share the rank of their kind, then the axis)
_ORDER = ("N", "C_in", "C_out", "groups", "in", "out", "stride", "padding", "padding_right", "dilation",
          "kernel_size", "output_padding", "S", "Z", "additions_per_filter")


def _rank(symbol: sp.Symbol) -> tuple[int, int, str]:
    name = symbol.name
    kind, _, axis = name.rpartition("_") if re.search(r"_\d$", name) else (name, "", "0")
    if re.fullmatch(r"[DHWL]_(in|out)", name):
        kind, axis = name[2:], str("DHWL".index(name[0]))
    elif re.fullmatch(r"[SZ]_[A-Z]", name):
        kind, axis = name[0], str("DHWL".index(name[2]))
    rank = _ORDER.index(kind) if kind in _ORDER else len(_ORDER)
    return rank, int(axis), name


def _key(term: sp.Basic) -> tuple:
    """Terms with earlier-ranked symbols first; numbers last."""
    ranks = sorted(_rank(s) for s in term.free_symbols)
    return (0, ranks) if ranks else (1, [])


class PagePrinter(LatexPrinter):
    """SymPy's LaTeX printer with ``\\times`` products, the pages' symbol names and their term order."""

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__({"mul_symbol": "times", **(settings or {})})

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr.name in LATEX_NAMES:
            return LATEX_NAMES[expr.name]
        return super()._print_Symbol(expr, style)

    def _as_ordered_terms(self, expr: sp.Basic, order: str | None = None) -> list[sp.Basic]:
        if isinstance(expr, sp.Add):
            return sorted(expr.args, key=_key)
        return super()._as_ordered_terms(expr, order)

    def _print_Mul(self, expr: sp.Mul) -> str:
        # numbers first (2 \times …), then factors by rank; the base printer keeps the order it is given
        number, factors = expr.as_coeff_mul()
        if len(factors) < 2:
            return super()._print_Mul(expr)
        ordered = sorted(factors, key=_key)
        with sp.evaluate(False):
            rebuilt = sp.Mul(number, *ordered) if number != 1 else sp.Mul(*ordered)
        return super()._print_Mul(rebuilt) if rebuilt.args == ((number,) if number != 1 else ()) + tuple(ordered) \
            else super()._print_Mul(expr)

    def _rounded(self, expr: sp.Basic, exp: str | None, left: str, right: str) -> str:
        # a fraction over one denominator, as the pages write an output size: \lfloor \frac{H - 3}{2} \rfloor
        over = over_one_denominator(expr.args[0])
        inner = self._print(expr.args[0]) if over is None else rf"\frac{{{self._print(over[0])}}}{{{over[1]}}}"
        tex = rf"\left{left}{{{inner}}}\right{right}"
        return tex if exp is None else rf"{tex}^{{{exp}}}"

    def _print_floor(self, expr: sp.Basic, exp: str | None = None) -> str:
        return self._rounded(expr, exp, r"\lfloor", r"\rfloor")

    def _print_ceiling(self, expr: sp.Basic, exp: str | None = None) -> str:
        return self._rounded(expr, exp, r"\lceil", r"\rceil")


def to_latex(expr: sp.Basic) -> str:
    """LaTeX of an expression, e.g. ``\\frac{C_{in} \\times C_{out}}{\\text{groups}}``."""
    return PagePrinter({"order": "none"}).doprint(expr)


def equation(lhs: str, expr: sp.Basic) -> str:
    """``lhs = <expr>`` with ``lhs`` given in LaTeX or as a quantity name (psi, lambda, gamma)."""
    return f"{GREEK.get(lhs, lhs)} = {to_latex(expr)}"
