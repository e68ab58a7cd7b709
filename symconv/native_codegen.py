"""The overlap engine's hybrids rendered as C, for the compiled path of ``additions_per_filter``.

``python -m symconv.native_codegen`` writes ``symconv/_native_generated.h`` from
the same resolved SymPy expressions that :func:`symconv.counts.axis_functions`
and :func:`symconv.counts.compiled` lambdify: each axis' output size, S and Z,
and the additions per filter of every layer kind under every convention. The
hand-written ``symconv/_native.c`` supplies the exact counters and the Python
binding. ``--check`` exits 1 when the committed file is stale (a test does the same).

The C follows the integer printer's rules (every division a floor division of
the whole numerator, Piecewise as lazy conditionals). Every operation is checked
in int64: an overflow or a zero divisor sets ``*e`` and the caller falls back to
the Python path, which uses unbounded ints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import sympy as sp
from sympy.printing.c import C99CodePrinter

from . import overlap
from .conventions import CONVENTIONS
from .counts import axis_functions, compiled
from .model import layer
from .numeric import IntegerDivision

GENERATED = Path(__file__).with_name("_native_generated.h")

#: SymPy counter functions -> the C counters of _native.c (same argument order)
_COUNTERS = {
    overlap.LatticeCount: "lattice_count",
    overlap.TransposedCoverage: "transposed_coverage",
    overlap.PlainCoverage: "plain_coverage",
    overlap.Gcd: "gcd_",
}


class CheckedCPrinter(IntegerDivision, C99CodePrinter):
    """C on int64 where every operation goes through a checked helper of _native.c."""

    def __init__(self, names: dict[sp.Symbol, str]) -> None:
        super().__init__()
        self.names = names

    def _call(self, fn: str, *args: str) -> str:
        return f"{fn}({', '.join(args)}, e)"

    def _fold(self, fn: str, args: Sequence[sp.Basic]) -> str:
        code = self._print(args[0])
        for a in args[1:]:
            code = self._call(fn, code, self._print(a))
        return code

    def _floor_div(self, num: str, den: str) -> str:
        return self._call("fdiv_", num, den)

    def _ceil_div(self, num: str, den: str) -> str:
        return self._call("cdiv_", num, den)

    def _modulo(self, a: str, b: str) -> str:
        return self._call("mod_", a, b)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names[expr]

    def _print_Integer(self, expr: sp.Integer) -> str:
        return f"{int(expr)}LL"

    def _print_Rational(self, expr: sp.Rational) -> str:
        raise ValueError(f"a bare rational {expr} has no exact integer rendering")

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return self._fold("add_", expr.as_ordered_terms())

    def _print_Mul(self, expr: sp.Mul) -> str:
        return self._divide(expr) or self._fold("mul_", expr.as_ordered_factors())

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        if not expr.exp.is_Integer:
            raise ValueError(f"{expr}: only integer powers have an exact rendering")
        if expr.exp < 0:
            return self._floor_div("1LL", self._print(expr.base ** -expr.exp))
        return self._fold("mul_", [expr.base] * int(expr.exp))

    def _print_Min(self, expr: sp.Min) -> str:
        return self._fold("min_", expr.args)

    def _print_Max(self, expr: sp.Max) -> str:
        return self._fold("max_", expr.args)

    def _print_Function(self, expr: sp.Function) -> str:
        name = _COUNTERS.get(type(expr))
        if name is None:
            raise ValueError(f"{type(expr).__name__} has no C counter")
        return self._call(name, *(self._print(a) for a in expr.args))

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        code = None
        for value, condition in reversed(expr.args):
            if code is None:
                if condition != sp.true:
                    raise ValueError("a Piecewise without a final True branch is not total")
                code = self._print(value)
            else:
                code = f"({self._print(condition)} ? {self._print(value)} : {code})"
        return code

    def _print_Relational(self, expr: sp.core.relational.Relational) -> str:
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr: sp.And) -> str:
        return "(" + " && ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr: sp.Or) -> str:
        return "(" + " || ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr: sp.Not) -> str:
        return f"(!{self._print(expr.args[0])})"

    def _print_BooleanTrue(self, expr: sp.Basic) -> str:
        return "1"

    def _print_BooleanFalse(self, expr: sp.Basic) -> str:
        return "0"


def _axis_functions(transposed: bool) -> list[str]:
    """One C function per axis quantity (L_out, S, Z) from the axis parameters."""
    prefix = "t" if transposed else "p"
    expected = ["L_in", "kernel_size", "stride", "padding", "dilation"] + (["output_padding"] if transposed else [])
    out = []
    for quantity, fn in zip(("L_out", "S", "Z"), axis_functions(transposed)):
        if list(fn.names) != expected:  # _native.c calls them in this order
            raise ValueError(f"axis parameters {fn.names} are not {expected}")
        names = {p: p.name for p in fn.params}
        signature = ", ".join(f"i64 {p.name}" for p in fn.params)
        body = CheckedCPrinter(names).doprint(fn.expr)
        out.append(f"static i64 {prefix}_{quantity}({signature}, int *e)\n{{\n    return {body};\n}}\n")
    return out


def _additions_function(kind: str, convention: str) -> tuple[str, str, bool, bool]:
    """(name, C function, needs S, needs Z) of the additions per filter of one layer kind."""
    model = layer(kind)
    fn = compiled(kind, "additions", convention)
    names = {}
    for a in model.axes:
        for symbol, array in ((a.L, "L"), (a.L_out, "Lo"), (a.k, "k"), (a.S, "S"), (a.Z, "Z")):
            names[symbol] = f"{array}[{a.index}]"
    free = sp.sympify(fn.expr).free_symbols
    if not free <= set(names):
        raise ValueError(f"additions of {kind} depend on {sorted(s.name for s in free - set(names))}")
    name = f"{'t' if model.transposed else 'p'}{model.ndim}_{convention}"
    body = CheckedCPrinter(names).doprint(fn.expr)
    code = (f"/* {kind}, {convention}: {fn.expr} */\n"
            f"static i64 {name}(const i64 *L, const i64 *Lo, const i64 *k, const i64 *S, const i64 *Z, int *e)\n"
            f"{{\n    (void)L; (void)Lo; (void)k; (void)S; (void)Z;\n    return {body};\n}}\n")
    return name, code, any(a.S in free for a in model.axes), any(a.Z in free for a in model.axes)


def generate() -> str:
    """The whole generated header, deterministic."""
    parts = ["/* Generated by `python -m symconv.native_codegen` from symconv's SymPy hybrids: do not edit. */\n"]
    parts += _axis_functions(True) + _axis_functions(False)
    conventions = list(CONVENTIONS)
    table = []
    for transposed in (False, True):
        rows = []
        for ndim in (1, 2, 3):
            kind = f"{'ConvTranspose' if transposed else 'Conv'}{ndim}d"
            cells = []
            for convention in conventions:
                name, code, needs_s, needs_z = _additions_function(kind, convention)
                parts.append(code)
                cells.append(f"{{{name}, {int(needs_s)}, {int(needs_z)}}}")
            rows.append("{" + ", ".join(cells) + "}")
        table.append("    {" + ",\n     ".join(rows) + "}")
    names = ", ".join(f'"{c}"' for c in conventions)
    parts.append(f"static const char *const CONVENTION_NAMES[{len(conventions)}] = {{{names}}};\n")
    parts.append(f"/* [transposed][ndim - 1][convention] */\n"
                 f"static const struct additions_form ADDITIONS[2][3][{len(conventions)}] = {{\n"
                 + ",\n".join(table) + "\n};\n")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symconv.native_codegen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs; write nothing")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = GENERATED.read_text() if GENERATED.exists() else ""
        if current != text:
            print(f"{GENERATED} is stale: run python -m symconv.native_codegen", file=sys.stderr)
            return 1
        return 0
    GENERATED.write_text(text)
    print(f"wrote {GENERATED} ({len(text):,} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
