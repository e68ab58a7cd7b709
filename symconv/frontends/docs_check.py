"""Check the display equations of a documentation page against the engine.

Each equation gets one verdict:

* ``proven``: SymPy shows it equal to the engine's expression, and it holds under
  the exact convention too;
* ``docs only``: proven equal under the docs convention, but the exact
  convention differs (the exact form and a layer where they differ are given);
* ``wrong``: not equal; the smallest valid layer where the numbers differ is given;
* ``not understood``: with the reason (never silently skipped).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import sympy as sp

from ..core.errors import SymconvError
from ..core.latex import to_latex
from ..core.model import CostModel, cost_model
from ..core.names import LAYER_KINDS
from ..core.symbols import AXIS_LETTERS, N
from ..numeric.compile import evaluate_on_columns
from ..numeric.layer import Layer, axis_accepted
from . import texparse

PROVEN, DOCS_ONLY, WRONG, NOT_UNDERSTOOD = "proven", "docs only", "wrong", "not understood"
_DISPLAY = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\begin\{equation\}(.+?)\\end\{equation\}", re.S)
PSI, LAMBDA, GAMMA = (texparse.GREEK_SYMBOLS[k] for k in (r"\psi", r"\lambda", r"\gamma"))


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

    def line(self) -> str:
        what = self.quantity + ("" if self.bias is None else f", bias={self.bias}")
        head = f"[{self.verdict}] eq {self.number}" + (f" ({what})" if what else "")
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

    @property
    def wrong(self) -> int:
        return sum(v.verdict == WRONG for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        return {name: sum(v.verdict == name for v in self.verdicts)
                for name in (PROVEN, DOCS_ONLY, WRONG, NOT_UNDERSTOOD)}

    def text(self) -> str:
        blocks = len({v.number for v in self.verdicts})
        lines = [f"{self.path}: {self.kind}, {blocks} display equations, {len(self.verdicts)} verdicts"]
        lines += [v.line() for v in self.verdicts]
        lines.append(", ".join(f"{n} {k}" for k, n in self.counts().items()))
        return "\n".join(lines)


def display_equations(text: str) -> list[str]:
    """Display math of a page, in order: ``$$…$$``, ``\\[…\\]``, ``\\begin{equation}…\\end{equation}``."""
    found = []
    for m in _DISPLAY.finditer(text):
        body = next(g for g in m.groups() if g is not None)
        body = re.sub(r"\\(begin|end)\{equation\*?\}", "", body)
        found.append(body.strip())
    return found


def page_kind(text: str) -> str:
    """The layer a page documents, from its first mention of torch.nn.<Layer>."""
    m = re.search(r"torch\.nn\.(Conv(?:Transpose)?[123]d)\b", text)
    if not m:
        raise SymconvError("the page names no torch.nn convolution layer (e.g. torch.nn.Conv2d)")
    return m.group(1)


def _split_top(tex: str, sep: str) -> list[str]:
    """Split at ``sep`` outside braces and \\left…\\right pairs."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        if tex.startswith(r"\left", i) or tex.startswith(r"\begin", i):
            depth += 1
        elif tex.startswith(r"\right", i) or tex.startswith(r"\end", i):
            depth -= 1
        elif tex[i] in "{":
            depth += 1
        elif tex[i] in "}":
            depth -= 1
        elif depth == 0 and tex.startswith(sep, i):
            parts.append(tex[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(tex[start:])
    return parts


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
        bias = re.search(r"bias\}?\s*=\s*\\?(?:text\{)?(True|False)", cond)
        rows.append((expr.strip().rstrip(","), None if bias is None else bias.group(1) == "True"))
    return rows


def _quantity(lhs: str, model: CostModel) -> tuple[str, int]:
    """(quantity name, axis) stated by a left side; SymconvError when it is none of ours."""
    text = texparse.normalise(lhs).replace(" ", "")
    for greek, name in ((r"\psi", "psi"), (r"\lambda", "lambda"), (r"\gamma", "gamma")):
        if text == greek:
            return name, 0
    m = re.fullmatch(r"([A-Z])_\{out\}", text)
    if m and m.group(1) in AXIS_LETTERS[model.ndim]:
        return "output_size", AXIS_LETTERS[model.ndim].index(m.group(1))
    if re.fullmatch(r"\\text\{" + model.kind + r"\}_\{?ops\}?", text):
        return "total", 0
    raise SymconvError(f"the left side {lhs.strip()!r} is not a quantity symconv computes for {model.kind}")


def _equal(a: sp.Expr, b: sp.Expr) -> bool:
    diff = sp.simplify(a - b)
    return diff == 0 or sp.simplify(sp.expand(diff)) == 0


@lru_cache(maxsize=None)
def _small_layers(kind: str) -> tuple[dict[str, np.ndarray], list[Layer], list[tuple[int, ...]]]:
    """Small valid layers of a kind, smallest first, as parameter columns and as specs."""
    ndim, transposed = LAYER_KINDS[kind]
    options = sorted(((L, k, s, p, d, op) for L in range(1, 5) for k in range(1, 4) for s in range(1, 3)
                      for d in range(1, 3) for p in range(0, 3) for op in (range(2) if transposed else (0,))
                      if axis_accepted(transposed, L, k, s, p, d, op)), key=sum)[: (40, 14, 7)[ndim - 1]]
    channels = [(n, ci, co, g) for n in (1, 2) for g in (1, 2) for ci in (g, 2 * g) for co in (g, 2 * g)]
    rows = sorted(((ch, axes) for ch in channels for axes in itertools.product(options, repeat=ndim)),
                  key=lambda r: sum(r[0]) + sum(sum(a) for a in r[1]))
    model = cost_model(kind)
    cols: dict[str, list[int]] = {name: [] for name in (s.name for s in model.parameters())}
    specs, shapes = [], []
    for (n, ci, co, g), axes in rows:
        for name, v in zip(("N", "C_in", "C_out", "groups"), (n, ci, co, g)):
            cols[name].append(v)
        for a, ax in enumerate(model.axes):
            for sym, v in zip(model.axis_parameters(a), axes[a]):
                cols[sym.name].append(v)
        fields = list(zip(*axes))
        specs.append(Layer(kind, ci, co, fields[1], fields[2], fields[3], fields[4], fields[5], g))
        shapes.append((n, ci, *fields[0]))
    return {k: np.array(v, dtype=np.int64) for k, v in cols.items()}, specs, shapes


def _first_difference(model: CostModel, a: sp.Expr, b: sp.Expr) -> str | None:
    """The smallest small valid layer where two expressions differ, described; None if none."""
    cols, specs, shapes = _small_layers(model.kind)
    va = evaluate_on_columns(model, a, cols)
    vb = evaluate_on_columns(model, b, cols)
    diff = np.flatnonzero(va != vb)
    if not diff.size:
        return None
    i = diff[0]
    return f"{specs[i].constructor()} on input {shapes[i]}: page {va[i]}, engine {vb[i]}"


def _reference(model: CostModel, quantity: str, axis: int, bias: bool, convention: str,
               expr: sp.Expr) -> sp.Expr:
    if quantity == "total" and expr.free_symbols & {PSI, LAMBDA, GAMMA}:
        return N * (PSI * LAMBDA + GAMMA)  # the definition, whatever the convention
    return model.quantity(quantity, convention=convention, bias=bias, axis=axis)


def check_equation(model: CostModel, number: int, tex: str) -> list[Verdict]:
    """Verdicts for one display equation (a chain a = b = c checks each right side)."""
    sides = _split_top(texparse.strip_wrappers(tex), "=")
    if len(sides) < 2:
        return [Verdict(number, tex, NOT_UNDERSTOOD, detail="no '=' at the top level")]
    try:
        quantity, axis = _quantity(sides[0], model)
    except SymconvError as err:
        return [Verdict(number, tex, NOT_UNDERSTOOD, detail=str(err))]
    verdicts = []
    for side, rhs in enumerate(sides[1:], start=1):
        for expr_tex, bias in _branches(rhs):
            v = _check_side(model, number, tex, quantity, axis, expr_tex, bias)
            if len(sides) > 2:
                v.detail = f"right side {side} of {len(sides) - 1}: {v.detail}"
            verdicts.append(v)
    return verdicts


def _check_side(model: CostModel, number: int, tex: str, quantity: str, axis: int, expr_tex: str,
                bias: bool | None) -> Verdict:
    label = quantity if quantity != "output_size" else f"output size, axis {axis}"
    try:
        expr = texparse.parse(expr_tex)
    except SymconvError as err:
        return Verdict(number, tex, NOT_UNDERSTOOD, label, bias, f"cannot read {expr_tex.strip()[:60]!r}: {err}")
    depends = quantity in ("gamma", "total")
    biases = [bias] if bias is not None else ([True, False] if depends else [True])
    for b in biases:
        docs = _reference(model, quantity, axis, b, "docs", expr)
        if _equal(expr, docs):
            shown = b if depends else None
            if expr.free_symbols & {PSI, LAMBDA, GAMMA}:
                return Verdict(number, tex, PROVEN, label, None, "the definition N·(ψ·λ + γ)")
            exact = _reference(model, quantity, axis, b, "exact", expr)
            witness = _first_difference(model, expr, exact)
            if witness is None:
                return Verdict(number, tex, PROVEN, label, shown, "equal to the engine's expression")
            return Verdict(number, tex, DOCS_ONLY, label, shown, f"differs from the exact convention at {witness}",
                           to_latex(exact))
    if expr.free_symbols & {PSI, LAMBDA, GAMMA}:
        return Verdict(number, tex, WRONG, label, bias, "not N·(ψ·λ + γ)")
    details = []
    for b in biases:
        docs = _reference(model, quantity, axis, b, "docs", expr)
        witness = _first_difference(model, expr, docs)
        if witness is None:
            return Verdict(number, tex, NOT_UNDERSTOOD, label, b if depends else None,
                           "agrees with the engine on every small layer, but SymPy could not prove it")
        details.append((f"bias={b}: " if depends else "") + witness)
    return Verdict(number, tex, WRONG, label, bias, "differs at " + "; ".join(details))


def check_text(text: str, path: str = "<page>") -> PageReport:
    """Check every display equation of a page's text."""
    kind = page_kind(text)
    model = cost_model(kind)
    report = PageReport(path, kind)
    for number, tex in enumerate(display_equations(text), start=1):
        report.verdicts += check_equation(model, number, tex)
    return report


def check_page(path: str | Path) -> PageReport:
    """Check a page file (Markdown or text); SymconvError when it cannot be read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise SymconvError(f"cannot read page {str(path)!r}: {err.strerror}") from None
    return check_text(text, str(path))
