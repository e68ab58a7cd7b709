"""LaTeX in the docs pages' notation, printed by a customised SymPy printer."""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .symbols import LATEX_NAMES

GREEK = {"psi": r"\psi", "lambda": r"\lambda", "gamma": r"\gamma"}


class PagePrinter(LatexPrinter):
    """SymPy's LaTeX printer with ``\\times`` products and the pages' symbol names."""

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__({"mul_symbol": "times", **(settings or {})})

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr.name in LATEX_NAMES:
            return LATEX_NAMES[expr.name]
        return super()._print_Symbol(expr, style)


def to_latex(expr: sp.Basic) -> str:
    """LaTeX of an expression, e.g. ``\\frac{C_{in} \\times C_{out}}{\\text{groups}}``."""
    return PagePrinter().doprint(expr)


def equation(lhs: str, expr: sp.Basic) -> str:
    """``lhs = <expr>`` with ``lhs`` given in LaTeX or as a quantity name (psi, lambda, gamma)."""
    return f"{GREEK.get(lhs, lhs)} = {to_latex(expr)}"
