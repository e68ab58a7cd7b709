"""Render the core's SymPy definitions as code: pure Python and checked C, committed and checked for staleness.

``python -m symconv.numeric.codegen`` writes two files from the same resolved
expressions that :meth:`symconv.core.model.CostModel.lambdify` uses:

* ``_scalar_generated.py``: each axis' output size, S and Z, every layer kind's
  multiplications, additions, γ and total under every convention (functions of
  the channels and the per-axis L, L_out, k, S, Z), the three gradients of the
  backward pass, the matrix-product counts and torch's acceptance rules with their
  messages. Counting a layer or a model runs
  this code and never compiles SymPy at run time.
* ``_native_generated.h``: the axis quantities, every layer kind's quantities
  (ψ, multiplications, additions, λ, γ, total) under every convention and the
  acceptance rules as checked int64 C, for the compiled path (``_native.c``):
  ``additions_per_filter`` and vectorised lambdified quantities.

``--check`` exits 1 when a committed file is stale (a test does the same).

Both printers follow the integer-division rules of :mod:`symconv.core.printing`
(every division a floor division of the whole numerator, Piecewise as lazy
conditionals). In C every operation is checked: an overflow or a zero divisor
sets ``*e`` and the caller falls back to the Python path, which uses unbounded ints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import sympy as sp
from sympy.printing.c import C99CodePrinter

from ..core import backward, matmul, rules
from ..core.conventions import CONVENTIONS
from ..core.model import CostModel, cost_model
from ..core.names import LAYER_KINDS, PADDING_MODES, kind_of
from ..core.printing import IntegerDivision, ScalarPrinter

HERE = Path(__file__).parent
GENERATED_C = HERE / "_native_generated.h"
GENERATED_PY = HERE / "_scalar_generated.py"

#: the per-kind quantities of a layer's count, and whether each depends on the bias
QUANTITIES = (("multiplications", False), ("additions", False), ("gamma", True), ("total", True))


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
        raise ValueError(f"{type(expr).__name__} has no C rendering")

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


# --- what is generated, from the core -------------------------------------------------------------

def axis_model(transposed: bool, asymmetric: bool = False) -> CostModel:
    """The one-axis model whose axis quantities stand for every axis of that family."""
    return cost_model(kind_of(1, transposed), asymmetric=asymmetric)


def axis_quantities(model: CostModel) -> dict[str, sp.Expr]:
    """L_out, S and Z of the model's axis, in its parameters only."""
    a = model.axes[0]
    return {"L_out": model.resolve(a.L_out), "S": model.resolve(a.S), "Z": model.resolve(a.Z)}


def gradient_axis_quantities(model: CostModel) -> dict[str, sp.Expr]:
    """Z_in and Z_tap of the model's axis (what its gradients touch), in its parameters only."""
    a = model.axes[0]
    return {"Zin": model.resolve(backward.input_coverage(a, model.transposed)),
            "Ztap": model.resolve(backward.tap_coverage(a, model.transposed))}


def count_quantity(kind: str, quantity: str, convention: str, bias: bool) -> sp.Expr:
    """A layer quantity in the channels and the per-axis (L, L_out, k, S, Z): ``resolve(through="additions")``."""
    model = cost_model(kind)
    return model.resolve(model.quantity(quantity, convention=convention, bias=bias), through="additions")


def _prefix(transposed: bool) -> str:
    return "t" if transposed else "p"


# --- Python -------------------------------------------------------------------------------------------

def _py_function(printer: ScalarPrinter, name: str, params: Sequence[sp.Symbol], expr: sp.Basic) -> str:
    args = ", ".join(p.name for p in params)
    return f"def {name}({args}):\n    return {printer.doprint(expr)}\n"


class _Functions:
    """Generated functions, each expression once: a second request for it returns the first name."""

    def __init__(self, printer: ScalarPrinter) -> None:
        self.printer, self.code, self.names = printer, [], {}

    def __call__(self, name: str, params: Sequence[sp.Symbol], expr: sp.Basic) -> str:
        key = (tuple(params), expr)
        if key not in self.names:
            taken, unique, i = set(self.names.values()), name, 1
            while unique in taken:
                unique, i = f"{name}_{i}", i + 1
            self.names[key] = unique
            self.code.append(_py_function(self.printer, unique, params, expr))
        return self.names[key]


def _py_checks(define: _Functions, name: str, model: CostModel, params: Sequence[sp.Symbol],
               ruleset: Sequence[rules.Rule]) -> str:
    """A table entry for a rule set: the two checks (the layer's own arguments; the input) and the messages.

    Each check is one generated function returning the index of the first broken
    rule of its phase, or -1: the rules run in order, so a later one may assume the
    earlier ones hold (the output size divides by a stride already checked >= 1).
    """
    checks = []
    for phase, with_input in (("arguments", False), ("input", True)):
        lines = [f"def {name}_{phase}({', '.join(p.name for p in params)}):",
                 f'    """Index of the first broken rule on the {phase}, or -1."""']
        for i, rule in enumerate(ruleset):
            if rule.needs_input(model) == with_input:
                lines += [f"    if not ({define.printer.doprint(rule.holds)}):", f"        return {i}"]
        define.code.append("\n".join(lines + ["    return -1", ""]))
        checks.append(f"{name}_{phase}")
    messages = []
    for i, rule in enumerate(ruleset):
        value = "None" if rule.value is None else define(f"{name}_value{i}", params, rule.value)
        messages.append(f"        ({rule.message!r}, {value}),")
    return f"{checks[0]}, {checks[1]}, (\n" + "\n".join(messages) + "\n    )"


def generate_python() -> str:
    """The generated pure-Python module, deterministic."""
    printer = ScalarPrinter()
    define = _Functions(printer)
    for transposed in (True, False):
        model = axis_model(transposed, asymmetric=not transposed)
        for quantity, expr in {**axis_quantities(model), **gradient_axis_quantities(model)}.items():
            define(f"{_prefix(transposed)}_{quantity}", model.axis_parameters(0), expr)
    table, needs = [], []
    for kind in LAYER_KINDS:
        model = cost_model(kind)
        params = model.count_parameters()
        for convention in CONVENTIONS:
            used: set[sp.Symbol] = set()
            for quantity, by_bias in QUANTITIES:
                for bias in ((True, False) if by_bias else (True,)):
                    suffix = ("_bias" if bias else "_nobias") if by_bias else ""
                    expr = count_quantity(kind, quantity, convention, bias)
                    used |= expr.free_symbols
                    name = define(f"{kind}_{convention}_{quantity}{suffix}", params, expr)
                    for b in ((bias,) if by_bias else (True, False)):
                        table.append(f"    ({kind!r}, {convention!r}, {quantity!r}, {b}): {name},")
            needs.append(f"    ({kind!r}, {convention!r}): ({any(a.S in used for a in model.axes)}, "
                         f"{any(a.Z in used for a in model.axes)}),")
    grads = []
    for kind in LAYER_KINDS:
        model = cost_model(kind)
        for convention in CONVENTIONS:
            for which, expr in backward.gradients(model, convention).items():
                name = define(f"{kind}_{convention}_{which}", backward.count_parameters(model), expr)
                grads.append(f"    ({kind!r}, {convention!r}, {which!r}): {name},")
    matmuls = []
    for convention in CONVENTIONS:
        for bias in (True, False):
            name = define(f"matmul_{convention}_{'bias' if bias else 'nobias'}", matmul.PARAMETERS,
                          matmul.matmul_total(bias, convention))
            matmuls.append(f"    ({convention!r}, {bias}): {name},")
    sparse = []
    for bias in (True, False):
        name = define(f"sparse_matmul_exact_{'bias' if bias else 'nobias'}", matmul.SPARSE_PARAMETERS,
                      matmul.sparse_matmul_total(bias))
        sparse.append(f"    {bias}: {name},")
    rule_tables = []
    for transposed, modes in ((True, ("zeros",)), (False, PADDING_MODES)):
        model = axis_model(transposed, not transposed)
        for mode in modes:
            entry = _py_checks(define, f"_{_prefix(transposed)}_{mode}", model, model.axis_parameters(0),
                               rules.axis_rules(model, 0, mode))
            rule_tables.append(f"    ({transposed}, {mode!r}): ({entry}),")
    model = axis_model(True)
    layer_entry = _py_checks(define, "_layer", model, model.parameters()[:4], rules.layer_rules(model))
    imports = [f"from {module} import {', '.join(sorted(names))}"
               for module, names in sorted(printer.module_imports.items())]
    head = ['"""Generated by `python -m symconv.numeric.codegen` from symconv\'s SymPy definitions: do not edit.',
            "",
            "Axis functions take (L_in, kernel_size, stride, padding, dilation, output_padding) for transposed",
            "layers and (L_in, kernel_size, stride, padding, padding_right, dilation) for plain ones.",
            '"""', "", "# flake8: noqa", "", *imports, "", ""]
    tables = ["#: (kind, convention, quantity, bias) -> f(N, C_in, C_out, groups, *(L, L_out, k, S, Z) per axis)",
              "QUANTITIES = {", *table, "}", "",
              "#: (kind, convention) -> (needs S, needs Z): the axis counts the convention's quantities use",
              "NEEDS = {", *needs, "}", "",
              "#: (kind, convention, gradient) -> f(N, C_in, C_out, groups, *(L, L_out, k, S, Z_in, Z_tap) per axis)",
              "GRADIENTS = {", *grads, "}", "",
              "#: (convention, bias) -> f(rows, inner, columns) of a matrix product",
              "MATMUL = {", *matmuls, "}", "",
              "#: bias -> f(stored, lines, per_line): the exact convention's count of a product with one sparse factor",
              "SPARSE_MATMUL = {", *sparse, "}", "",
              "#: (transposed, padding_mode) -> (check of the arguments, check of the input, ((message, value), ...)):",
              "#: each check takes the axis arguments and returns the index of the first broken rule, or -1",
              "AXIS_RULES = {", *rule_tables, "}", "",
              "#: the same for the layer-wide rules, of (N, C_in, C_out, groups)",
              f"LAYER_RULES = ({layer_entry})", ""]
    return "\n".join(head) + "\n\n".join(define.code) + "\n\n" + "\n".join(tables)


# --- C ------------------------------------------------------------------------------------------------

def _c_axis_functions(transposed: bool) -> list[str]:
    """One C function per axis quantity (L_out, S, Z), and the acceptance check, of the axis parameters."""
    model = axis_model(transposed)
    expected = ["L_in", "kernel_size", "stride", "padding", "dilation"] + (["output_padding"] if transposed else [])
    params = model.axis_parameters(0)
    if [p.name for p in params] != expected:  # _native.c calls them in this order
        raise ValueError(f"axis parameters {[p.name for p in params]} are not {expected}")
    names = {p: p.name for p in params}
    signature = ", ".join(f"i64 {p.name}" for p in params)
    out = []
    for quantity, expr in axis_quantities(model).items():
        body = CheckedCPrinter(names).doprint(expr)
        out.append(f"static i64 {_prefix(transposed)}_{quantity}({signature}, int *e)\n{{\n    return {body};\n}}\n")
    checks = " &&\n        ".join(CheckedCPrinter(names).doprint(r.holds) for r in rules.axis_rules(model, 0))
    out.append(f"/* torch accepts the axis (symconv.core.rules, zeros padding), in order */\n"
               f"static int {_prefix(transposed)}_accepts({signature}, int *e)\n{{\n    return {checks};\n}}\n")
    return out


#: the quantities the compiled path evaluates, in the order of the FORMS table's last index
C_QUANTITIES = (("psi", True), ("multiplications", True), ("additions", True), ("lambda", True),
                ("gamma", True), ("gamma", False), ("total", True), ("total", False))


def _c_layer_check() -> str:
    """The layer-wide rules (batch, channels, groups) as one C check."""
    model = axis_model(True)
    names = {p: p.name for p in model.parameters()[:4]}
    checks = " &&\n        ".join(CheckedCPrinter(names).doprint(r.holds) for r in rules.layer_rules(model))
    signature = ", ".join(f"i64 {p.name}" for p in model.parameters()[:4])
    return (f"/* torch accepts the batch, channels and groups (symconv.core.rules), in order */\n"
            f"static int layer_accepts({signature}, int *e)\n{{\n    return {checks};\n}}\n")


class _CForms:
    """Generated C forms of layer quantities, each expression once; ``(name, needs S, needs Z)`` per request."""

    def __init__(self) -> None:
        self.code: list[str] = []
        self.made: dict[sp.Expr, tuple[str, bool, bool]] = {}

    def __call__(self, kind: str, quantity: str, convention: str, bias: bool) -> tuple[str, bool, bool]:
        model = cost_model(kind)
        expr = count_quantity(kind, quantity, convention, bias)
        names = {sym: f"ch[{i}]" for i, sym in enumerate(model.parameters()[:4])}
        for a in model.axes:
            for symbol, array in ((a.L, "L"), (a.L_out, "Lo"), (a.k, "k"), (a.S, "S"), (a.Z, "Z")):
                names[symbol] = f"{array}[{a.index}]"
        free = expr.free_symbols
        if not free <= set(names):
            raise ValueError(f"{quantity} of {kind} depends on {sorted(s.name for s in free - set(names))}")
        key = (model.transposed, model.ndim, expr)
        if key not in self.made:
            name = f"{_prefix(model.transposed)}{model.ndim}_{len(self.made)}"
            body = CheckedCPrinter(names).doprint(expr)
            self.code.append(
                f"/* {kind}, {convention}, {quantity}{'' if bias else ' without bias'}: {expr} */\n"
                f"static i64 {name}(const i64 *ch, const i64 *L, const i64 *Lo, const i64 *k, const i64 *S, "
                f"const i64 *Z, int *e)\n"
                f"{{\n    (void)ch; (void)L; (void)Lo; (void)k; (void)S; (void)Z; (void)e;\n    return {body};\n}}\n")
            self.made[key] = (name, any(a.S in free for a in model.axes), any(a.Z in free for a in model.axes))
        return self.made[key]


def generate_c() -> str:
    """The whole generated header, deterministic."""
    parts = ["/* Generated by `python -m symconv.numeric.codegen` from symconv's SymPy definitions: do not edit. */\n"]
    parts += _c_axis_functions(True) + _c_axis_functions(False) + [_c_layer_check()]
    conventions = list(CONVENTIONS)
    forms = _CForms()
    table = []
    for transposed in (False, True):
        rows = []
        for ndim in (1, 2, 3):
            per_convention = []
            for convention in conventions:
                cells = [forms(kind_of(ndim, transposed), q, convention, bias) for q, bias in C_QUANTITIES]
                per_convention.append("{" + ", ".join(f"{{{n}, {int(ns)}, {int(nz)}}}" for n, ns, nz in cells) + "}")
            rows.append("{" + ",\n       ".join(per_convention) + "}")
        table.append("    {" + ",\n     ".join(rows) + "}")
    parts += forms.code
    names = ", ".join(f'"{c}"' for c in conventions)
    quantities = ", ".join(f'"{q}"' if bias else f'"{q}_nobias"' for q, bias in C_QUANTITIES)
    parts.append(f"static const char *const CONVENTION_NAMES[{len(conventions)}] = {{{names}}};\n")
    parts.append(f"static const char *const QUANTITY_NAMES[{len(C_QUANTITIES)}] = {{{quantities}}};\n")
    parts.append("".join(f"#define Q_{(q if bias else q + '_nobias').upper()} {i}\n"
                         for i, (q, bias) in enumerate(C_QUANTITIES)))
    parts.append(f"/* [transposed][ndim - 1][convention][quantity] */\n"
                 f"static const struct form FORMS[2][3][{len(conventions)}][{len(C_QUANTITIES)}] = {{\n"
                 + ",\n".join(table) + "\n};\n")
    return "\n".join(parts)


def outputs() -> dict[Path, str]:
    """Every generated file and its current content."""
    return {GENERATED_PY: generate_python(), GENERATED_C: generate_c()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m symconv.numeric.codegen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs; write nothing")
    args = parser.parse_args(argv)
    files = outputs()
    if args.check:
        stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
        for path in stale:
            print(f"{path} is stale: run python -m symconv.numeric.codegen", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path} ({len(text):,} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
