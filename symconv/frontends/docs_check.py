"""Check the equations of a documentation page against the engine.

Every display equation, and every inline one that states a quantity (``\\(\\gamma =
…\\)``), gets one verdict:

* ``proven``: SymPy shows it equal to the engine's expression (under the docs
  convention and the exact one too, or under the convention its label names);
* ``docs only``: proven under the docs convention, while the exact convention
  differs (the exact form and a layer where they differ are given);
* ``wrong``: a valid layer of the searched space where the page's value, computed
  exactly as written (a division without floor brackets is a rational number),
  is not the engine's;
* ``unproven``: SymPy cannot prove it and the search found no counterexample (the
  space searched is named);
* ``not understood``: with the reason (a left side that is no quantity, an
  unknown name, LaTeX the parser cannot read);
* ``too large to check``: readable, but past the per-equation budget.

Labels are read from the page (a ``cases`` row, the sentence just before, a tab,
a heading): an equation under "bias=True" is checked with the bias only, and one
under a named convention against that convention only.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Sequence

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..core.backward import GRADIENTS, gradient_axis, gradients
from ..core.conventions import CONVENTIONS
from ..core.errors import SymconvError
from ..core.latex import to_latex
from ..core.model import CostModel, cost_model
from ..core.names import LAYER_KINDS, canonical_kind
from ..core.symbols import AXIS_LETTERS, N, additions_per_filter
from ..numeric.layer import Layer, axis_accepted
from ..numeric.layer_counts import axis_counts, gradient_axis_counts
from . import texparse
from .page_scan import Math, scan

PROVEN, DOCS_ONLY, WRONG, UNPROVEN = "proven", "docs only", "wrong", "unproven"
NOT_UNDERSTOOD, TOO_LARGE = "not understood", "too large to check"
VERDICTS = (PROVEN, DOCS_ONLY, WRONG, UNPROVEN, NOT_UNDERSTOOD, TOO_LARGE)
PSI, LAMBDA, GAMMA = (texparse.GREEK_SYMBOLS[k] for k in (r"\psi", r"\lambda", r"\gamma"))
BUDGET = 2.0  # seconds of SymPy work per equation
SEARCHED = 3000  # layers of the counterexample search, per layer kind
#: the search space, named in reports
SPACE = ("N ≤ 3, groups ≤ 3, C_in and C_out ≤ 3·groups, bias True and False; per axis input 1..7, "
         "kernel_size 1..4, stride 1..3, padding 0..4, dilation 1..3, output_padding < max(stride, dilation)")


@dataclass
class Verdict:
    """The check of one equation (or one branch of a ``cases`` equation)."""

    number: int
    tex: str
    verdict: str
    quantity: str = ""
    bias: bool | None = None
    detail: str = ""
    exact_tex: str = ""
    inline: bool = False

    def line(self) -> str:
        what = self.quantity + ("" if self.bias is None else f", bias={self.bias}")
        kind = "inline" if self.inline else "eq"
        head = f"[{self.verdict}] {kind} {self.number}" + (f" ({what})" if what else "")
        text = " ".join(self.tex.split())
        out = f"{head}: {text[:110]}{'…' if len(text) > 110 else ''}"
        if self.detail:
            out += f"\n    {self.detail}"
        if self.exact_tex:
            out += f"\n    exact: {self.exact_tex}"
        return out


@dataclass
class PageReport:
    path: str
    kind: str
    verdicts: list[Verdict] = field(default_factory=list)
    error: str = ""  # why the page could not be checked at all

    @property
    def wrong(self) -> int:
        return sum(v.verdict == WRONG for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        return {name: sum(v.verdict == name for v in self.verdicts) for name in VERDICTS}

    def text(self) -> str:
        if self.error:
            return f"{self.path}: not checked: {self.error}"
        blocks = len({(v.inline, v.number) for v in self.verdicts})
        lines = [f"{self.path}: {self.kind}, {blocks} equations, {len(self.verdicts)} verdicts"]
        lines += [v.line() for v in self.verdicts]
        lines.append(", ".join(f"{n} {k}" for k, n in self.counts().items() if n or k in (PROVEN, WRONG)))
        return "\n".join(lines)


# --- the page ----------------------------------------------------------------------------------------

def display_equations(text: str) -> list[str]:
    """Display math of a page, in order: ``$$…$$``, ``\\[…\\]``, ``\\begin{equation}…\\end{equation}``."""
    return [_body(m) for m in scan(text) if m.display and not m.error]


def _body(m: Math) -> str:
    return re.sub(r"\\(begin|end)\{equation\*?\}", "", m.body).strip()


def page_kind(text: str) -> str:
    """The layer a page documents, from its first mention of torch.nn.<Layer> (or a title naming it)."""
    m = re.search(r"torch\.nn\.(Conv(?:Transpose)?[123]d)\b", text) or \
        re.search(r"^#\s+(Conv(?:Transpose)?[123]d)\b", text, re.M)
    if not m:
        raise SymconvError("the page names no torch.nn convolution layer (e.g. torch.nn.Conv2d); give --layer")
    return m.group(1)


def _split_top(tex: str, sep: str) -> list[str]:
    """Split at ``sep`` outside braces and \\left…\\right pairs."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        if tex.startswith(r"\left", i) or tex.startswith(r"\begin", i):
            depth += 1
        elif tex.startswith(r"\right", i) or tex.startswith(r"\end", i):
            depth -= 1
        elif tex[i] == "{":
            depth += 1
        elif tex[i] == "}":
            depth -= 1
        elif depth == 0 and tex.startswith(sep, i):
            parts.append(tex[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(tex[start:])
    return parts


_CASE_BIAS = re.compile(r"bias\}?\s*=\s*(?:\\text\s*\{\s*)?(True|False)")


def _branches(rhs: str) -> list[tuple[str, bool | None]]:
    """A ``cases`` right side as (expression, bias) rows; anything else as one row."""
    m = re.search(r"\\begin\{cases\}(.*)\\end\{cases\}", rhs, re.S)
    if not m:
        return [(rhs, None)]
    rows = []
    for row in re.split(r"\\\\", m.group(1)):
        if not row.strip():
            continue
        expr, _, cond = row.partition("&")
        bias = _CASE_BIAS.search(cond)
        rows.append((expr.strip().rstrip(","), None if bias is None else bias.group(1) == "True"))
    return rows


def _quantity(lhs: str, model: CostModel) -> tuple[str, int]:
    """(quantity name, axis) stated by a left side; SymconvError when it is none of ours."""
    text = texparse.normalise(lhs).replace(" ", "")
    for greek, name in ((r"\psi", "psi"), (r"\lambda", "lambda"), (r"\gamma", "gamma")):
        if text == greek:
            return name, 0
    m = re.fullmatch(r"([A-Z])_\{?out\}?", text)
    if m and m.group(1) in AXIS_LETTERS[model.ndim]:
        return "output_size", AXIS_LETTERS[model.ndim].index(m.group(1))
    if re.fullmatch(r"\\text\{" + model.kind + r"\}_\{?ops\}?", text):
        return "total", 0
    for word in ("multiplications", "additions", "additions_per_filter", *GRADIENTS):
        if text == r"\text{" + word.replace("_", r"\_") + "}":
            return word, 0
    raise SymconvError(f"the left side {lhs.strip()!r} is not a quantity symconv computes for {model.kind}")


# --- the budget ----------------------------------------------------------------------------------------

class _OverBudget(Exception):
    pass


@contextmanager
def _budget(seconds: float) -> Iterator[None]:
    """Interrupt SymPy after ``seconds`` (a timer signal; where none can be set, the parser's limits alone)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise _OverBudget

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- exact evaluation ----------------------------------------------------------------------------------

class _FractionPrinter(PythonCodePrinter):
    """Python on Fractions: a division is exact, floor and ceiling are math's, literals are Fractions."""

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"Fraction({expr.p}, {expr.q})"

    def _print_Integer(self, expr: sp.Integer) -> str:
        return f"Fraction({int(expr)})"

    def _print_Min(self, expr: sp.Basic) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Max(self, expr: sp.Basic) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_floor(self, expr: sp.Basic) -> str:
        return f"floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr: sp.Basic) -> str:
        return f"ceil({self._print(expr.args[0])})"


def _exact_function(symbols: Sequence[sp.Symbol], expr: sp.Expr) -> Callable[..., Fraction]:
    return sp.lambdify(list(symbols), expr, modules=[{"Fraction": Fraction, "floor": math.floor, "ceil": math.ceil,
                                                      "min": min, "max": max}],
                       printer=_FractionPrinter({"fully_qualified_modules": False}), dummify=False,
                       docstring_limit=0)


@dataclass(frozen=True)
class _Row:
    layer: Layer
    shape: tuple[int, ...]
    values: dict[sp.Symbol, int]  # every symbol a page or the engine may use, bias and convention aside


def _axis_options(transposed: bool, rng: random.Random) -> tuple[int, ...]:
    while True:
        L, k, s, d = rng.randint(1, 7), rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 3)
        p, op = rng.randint(0, 4), rng.randint(0, max(s, d) - 1) if transposed else 0
        if axis_accepted(transposed, L, k, s, p, d, op):
            return L, k, s, p, d, op


@lru_cache(maxsize=None)
def search_space(kind: str) -> tuple[_Row, ...]:
    """Valid layers of a kind for the counterexample search, smallest first.

    The smallest layers first (so a witness is small), then random draws over the
    whole of :data:`SPACE`: every argument of every axis varies, channels, groups
    and batch too.
    """
    ndim, transposed = LAYER_KINDS[kind]
    small = sorted(((L, k, s, p, d, op) for L in range(1, 4) for k in range(1, 4) for s in range(1, 3)
                    for d in range(1, 3) for p in range(0, 3) for op in (range(2) if transposed else (0,))
                    if axis_accepted(transposed, L, k, s, p, d, op)), key=sum)[: (24, 8, 4)[ndim - 1]]
    channels = [(n, ci, co, g) for n in (1, 2) for g in (1, 2) for ci in (g, 2 * g) for co in (g, 2 * g)]
    draws = sorted(itertools.product(channels, itertools.product(small, repeat=ndim)),
                   key=lambda r: sum(r[0]) + sum(map(sum, r[1])))
    rng = random.Random(0)
    for _ in range(SEARCHED):
        g = rng.randint(1, 3)
        draws.append(((rng.randint(1, 3), g * rng.randint(1, 3), g * rng.randint(1, 3), g),
                      tuple(_axis_options(transposed, rng) for _ in range(ndim))))
    model = cost_model(kind)
    rows = []
    for (n, ci, co, g), axes in draws:
        fields = list(zip(*axes))
        layer = Layer(kind, ci, co, fields[1], fields[2], fields[3], fields[4], fields[5], g)
        values = {N: n, model.parameters()[1]: ci, model.parameters()[2]: co, model.parameters()[3]: g}
        counts = axis_counts(layer, fields[0])
        for a, ax in enumerate(model.axes):
            for symbol, v in zip(model.axis_parameters(a), axes[a]):
                values[symbol] = v
            values[ax.L_out], values[ax.S], values[ax.Z] = counts[a]
        values[additions_per_filter] = math.prod(c[1] for c in counts) - math.prod(c[0] for c in counts)
        for ax, (_, _, Z_in, Z_tap) in zip(model.axes, gradient_axis_counts(layer, fields[0])):
            g = gradient_axis(ax)
            values[g.Z_in], values[g.Z_tap] = Z_in, Z_tap
        rows.append(_Row(layer, (n, ci, *fields[0]), values))
    return tuple(rows)


# --- the check -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    """What a right side is compared with: the engine's expression of a quantity under a convention."""

    model: CostModel
    quantity: str
    axis: int
    bias: bool
    convention: str

    def expression(self) -> sp.Expr:
        m = self.model
        if self.quantity == "additions_per_filter":
            return m.resolve(m.additions("docs"), through="additions")
        if self.quantity in GRADIENTS:
            return gradients(m, self.convention)[self.quantity]
        return m.quantity(self.quantity, convention=self.convention, bias=self.bias, axis=self.axis)

    def greek(self) -> dict[sp.Symbol, sp.Expr]:
        """ψ, λ and γ of this convention and bias, for a right side written with them."""
        m = self.model
        return {PSI: m.psi, LAMBDA: m.lam(self.convention), GAMMA: m.gamma(self.bias, self.convention)}


def _base(expr: sp.Expr, target: _Target) -> sp.Expr:
    """An expression in the layer's parameters and counts: ψ, λ, γ and additions_per_filter written out."""
    expr = expr.xreplace(target.greek())
    return expr.xreplace({additions_per_filter: target.model.resolve(additions_per_filter, through="additions")})


def _proven(page: sp.Expr, target: _Target) -> bool:
    diff = _base(page, target) - _base(target.expression(), target)
    return diff == 0 or sp.simplify(diff) == 0 or sp.expand(diff) == 0


def _witness(page: sp.Expr, target: _Target) -> str | None:
    """The first layer of the search space where the page's value, exactly as written, is not the engine's."""
    page, engine = _base(page, target), _base(target.expression(), target)
    symbols = sorted(page.free_symbols | engine.free_symbols, key=lambda s: s.name)
    f, g = _exact_function(symbols, page), _exact_function(symbols, engine)
    for row in search_space(target.model.kind):
        args = [Fraction(row.values[s]) for s in symbols]
        try:
            mine = f(*args)
        except (ZeroDivisionError, ValueError, OverflowError) as err:
            mine = f"undefined ({type(err).__name__})"
        theirs = g(*args)
        if mine != theirs:
            shown = mine if not isinstance(mine, Fraction) else (mine.numerator if mine.denominator == 1 else mine)
            bias = f", bias={target.bias}" if target.quantity in ("gamma", "total") else ""
            return (f"{row.layer.constructor()} on input {row.shape}{bias}: page {shown}, "
                    f"engine {int(theirs)}")
    return None


def _allowed(model: CostModel) -> set[sp.Symbol]:
    names = set(model.parameters()) | {additions_per_filter, PSI, LAMBDA, GAMMA}
    for a in model.axes:
        g = gradient_axis(a)  # also what makes their LaTeX names known to the parser
        names |= {a.L_out, a.S, a.Z, g.Z_in, g.Z_tap}
    return names


def _check_side(model: CostModel, statement: Math, number: int, quantity: str, axis: int, expr_tex: str,
                bias: bool | None) -> Verdict:
    label = quantity if quantity != "output_size" else f"output size, axis {axis}"
    verdict = lambda kind, b=bias, detail="", exact="": Verdict(  # noqa: E731
        number, statement.body, kind, label, b, detail, exact, not statement.display)
    try:
        with _budget(BUDGET):
            allowed = _allowed(model)
            expr = texparse.parse(expr_tex)
            unknown = sorted(s.name for s in expr.free_symbols - allowed)
            if unknown:
                return verdict(NOT_UNDERSTOOD, detail=f"unknown name {', '.join(unknown)}")
            return _judge(model, expr, quantity, axis, bias, statement.convention, verdict)
    except texparse.TooLarge as err:
        return verdict(TOO_LARGE, detail=str(err))
    except SymconvError as err:
        return verdict(NOT_UNDERSTOOD, detail=f"cannot read {expr_tex.strip()[:60]!r}: {err}")
    except (_OverBudget, RecursionError, MemoryError):
        return verdict(TOO_LARGE, detail=f"more than the {BUDGET:g} s budget")


def _judge(model: CostModel, expr: sp.Expr, quantity: str, axis: int, bias: bool | None,
           convention: str | None, verdict) -> Verdict:
    depends = quantity in ("gamma", "total")
    biases = [bias] if bias is not None else ([True, False] if depends else [True])
    shown = (lambda b: b if depends else None)
    if convention is not None:  # the page names its convention: that one only
        for b in biases:
            if _proven(expr, _Target(model, quantity, axis, b, convention)):
                return verdict(PROVEN, shown(b), f"equal to the engine's expression ({convention} convention)")
        return _refuted(model, expr, quantity, axis, biases, [convention], verdict)
    for b in biases:
        docs = _Target(model, quantity, axis, b, "docs")
        if _proven(expr, docs):
            if expr.free_symbols & {PSI, LAMBDA, GAMMA}:
                return verdict(PROVEN, None, "the definition N·(ψ·λ + γ)")
            exact = _Target(model, quantity, axis, b, "exact")
            witness = None if _proven(expr, exact) else _witness(expr, exact)
            if witness is None:
                return verdict(PROVEN, shown(b), "equal to the engine's expression")
            return verdict(DOCS_ONLY, shown(b), f"differs from the exact convention at {witness}",
                           to_latex(exact.expression()))
    for name in ("exact", "macs"):
        for b in biases:
            if _proven(expr, _Target(model, quantity, axis, b, name)):
                return verdict(PROVEN, shown(b), f"equal to the engine's expression ({name} convention)")
    return _refuted(model, expr, quantity, axis, biases, list(CONVENTIONS), verdict)


def _refuted(model, expr, quantity, axis, biases, conventions, verdict) -> Verdict:
    """Wrong with a witness under the first convention, or unproven when no layer of the space differs."""
    details = []
    for name in conventions:
        for b in biases:
            witness = _witness(expr, _Target(model, quantity, axis, b, name))
            if witness is None:
                return verdict(UNPROVEN, b if quantity in ("gamma", "total") else None,
                               f"SymPy cannot prove it and no layer differs ({name} convention; searched: "
                               f"{len(search_space(model.kind)):,} valid layers, {SPACE})")
            if name == conventions[0]:
                details.append(witness)
    return verdict(WRONG, detail="differs at " + "; ".join(details))


def check_statement(model: CostModel, number: int, statement: Math) -> list[Verdict]:
    """Verdicts for one piece of math (a chain a = b = c checks each right side); [] for inline math that
    states no quantity."""
    inline = not statement.display
    if statement.error:
        return [] if inline else [Verdict(number, statement.body, NOT_UNDERSTOOD, detail=statement.error)]
    tex = texparse.strip_wrappers(_body(statement))
    sides = _split_top(tex, "=")
    if len(sides) < 2:
        return [] if inline else [Verdict(number, statement.body, NOT_UNDERSTOOD,
                                          detail="no '=' at the top level")]
    try:
        quantity, axis = _quantity(sides[0], model)
    except SymconvError as err:
        return [] if inline else [Verdict(number, statement.body, NOT_UNDERSTOOD, detail=str(err))]
    verdicts = []
    for side, rhs in enumerate(sides[1:], start=1):
        for expr_tex, case_bias in _branches(rhs):
            bias = case_bias if case_bias is not None else statement.bias
            v = _check_side(model, statement, number, quantity, axis, expr_tex, bias)
            if len(sides) > 2:
                v.detail = f"right side {side} of {len(sides) - 1}: {v.detail}"
            verdicts.append(v)
    return verdicts


def check_text(text: str, path: str = "<page>", layer: str | None = None) -> PageReport:
    """Check every equation of a page's text (``layer`` names the layer where the page does not)."""
    kind = canonical_kind(layer) if layer else page_kind(text)
    model = cost_model(kind)
    report = PageReport(path, kind)
    numbers = {True: 0, False: 0}
    for statement in scan(text):
        numbers[statement.display] += 1
        report.verdicts += check_statement(model, numbers[statement.display], statement)
    return report


def check_page(path: str | Path, layer: str | None = None) -> PageReport:
    """Check a page file (Markdown or text); SymconvError when it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise SymconvError(f"cannot read page {str(path)!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise SymconvError(f"cannot read page {str(path)!r}: not UTF-8 text") from None
    return check_text(text, str(path), layer)


def check_pages(paths: Sequence[str | Path], layer: str | None = None) -> list[PageReport]:
    """Check several pages; one that cannot be read or names no layer gets its own report, the others theirs."""
    reports = []
    for path in paths:
        try:
            reports.append(check_page(path, layer))
        except SymconvError as err:
            reports.append(PageReport(str(path), "", error=str(err)))
    return reports
