"""Code printers' shared rules: every division an exact floor division of integers.

:class:`IntegerDivision` holds the rules once; the target language's spelling of
floor division, ceiling division and modulo are hooks, so the Python printer here,
the NumPy printer and the checked-C printer of :mod:`symconv.numeric` share them.
Counter functions print themselves (their ``_pythoncode``, ``_numpycode`` and
``_ccode``), so no printer keeps a table of names.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter


class IntegerDivision:
    """Printer rules under which every division is an exact floor division of integers."""

    def _floor_div(self, num: str, den: str) -> str:
        return f"(({num})//({den}))"

    def _ceil_div(self, num: str, den: str) -> str:
        return f"(-((-({num}))//({den})))"

    def _modulo(self, a: str, b: str) -> str:
        return f"(({a}) % ({b}))"

    def _divide(self, expr: sp.Expr) -> str | None:
        num, den = sp.fraction(sp.together(expr))
        if den == 1:
            return None
        return self._floor_div(self._print(num), self._print(den))

    def _print_Mul(self, expr: sp.Expr) -> str:
        return self._divide(expr) or super()._print_Mul(expr)

    def _print_Pow(self, expr: sp.Expr, rational: bool = False) -> str:
        if expr.exp.is_Integer and expr.exp < 0:
            return self._floor_div("1", self._print(expr.base ** -expr.exp))
        return super()._print_Pow(expr, rational)

    def _print_floor(self, expr: sp.Expr) -> str:
        return self._divide(expr.args[0]) or self._print(expr.args[0])

    def _print_ceiling(self, expr: sp.Expr) -> str:
        num, den = sp.fraction(sp.together(expr.args[0]))
        if den == 1:
            return self._print(num)
        return self._ceil_div(self._print(num), self._print(den))

    def _print_Mod(self, expr: sp.Expr) -> str:
        return self._modulo(self._print(expr.args[0]), self._print(expr.args[1]))


class ScalarPrinter(IntegerDivision, PythonCodePrinter):
    """Plain Python on ints: exact at any size, Piecewise as lazy conditional expressions.

    Names of other modules print bare (``lattice_count``) and are recorded in
    ``module_imports``, which lambdify and the code generator turn into imports.
    """

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__({"fully_qualified_modules": False, **(settings or {})})

    def _print_Min(self, expr: sp.Expr) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Max(self, expr: sp.Expr) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"
