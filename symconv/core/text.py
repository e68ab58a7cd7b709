"""Formulas in sizes as plain text, each floor and ceiling over one denominator as torch's documentation writes
output sizes: ``floor((H - 3)/2) + 1``, where SymPy's own printing distributes the division, ``floor(H/2 - 3/2)``.

Printing only: the text parses back (``sympy.sympify``) to the same expression. SymPy is loaded only when a
formula is printed, so that a concrete profile's table never loads it.
"""

from __future__ import annotations

import sys
from functools import cache
from math import lcm
from typing import Any


def over_one_denominator(arg: Any) -> tuple[Any, int] | None:
    """A sum of terms with rational coefficients as (numerator, denominator), the denominator the least common
    one above 1 (``H/2 - 3/2``: ``(H - 3, 2)``); None for anything else: a single term (``H/4``), a term divided
    by a name (a page's ``L/s``)."""
    import sympy as sp
    if not isinstance(arg, sp.Add):
        return None
    parts = [term.as_coeff_Mul() for term in arg.args]
    if not all(isinstance(c, sp.Rational) and sp.denom(rest) == 1 for c, rest in parts):
        return None
    coefficients = [c for c, _ in parts]
    denominator = lcm(*(int(c.q) for c in coefficients))
    return (sp.expand(arg * denominator), denominator) if denominator > 1 else None


@cache
def _printer() -> Any:
    from sympy.printing.str import StrPrinter

    class SizeTextPrinter(StrPrinter):
        """SymPy's text printer with floors and ceilings of one fraction."""

        def _rounded(self, name: str, expr: Any) -> str:
            over = over_one_denominator(expr.args[0])
            if over is None:
                return self._print_Function(expr)
            numerator, denominator = over
            return f"{name}(({self._print(numerator)})/{denominator})"

        def _print_floor(self, expr: Any) -> str:
            return self._rounded("floor", expr)

        def _print_ceiling(self, expr: Any) -> str:
            return self._rounded("ceiling", expr)

    return SizeTextPrinter()


def formula_text(value: object) -> str:
    """A number, a size, a formula or a condition on sizes as text (``floor((H - 3)/2) + 1``)."""
    sympy = sys.modules.get("sympy")  # without SymPy loaded, nothing to print is SymPy's
    if sympy is None or not isinstance(value, sympy.Basic):
        return str(value)
    return _printer().doprint(value)


def sizes_text(sizes: Any) -> str:
    """A shape as text, each size as :func:`formula_text` writes it: ``(1, 8, floor((H - 3)/2) + 1, W)``."""
    return "(" + ", ".join(map(formula_text, sizes)) + ")"
