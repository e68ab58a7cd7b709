"""A concrete layer's counts as closed forms in symbolic input sizes.

With numeric kernel, stride, padding, dilation and output_padding, every per-axis
count is a closed form of the input size L, exact for every L at which torch
accepts the layer, with no counter function left in it:

* beyond a threshold of a few units (the crops of padding are complete, the taps
  of a residue class meet), S and Z are linear in L for a transposed axis, and
  for a plain axis L_out times a number minus a function of L modulo the stride
  (a Piecewise over the residues, a constant where they agree);
* below the threshold, a table of exact values, one per input size.

Both parts are derived from the structure of the count map (see the functions'
docstrings), and tests compare them with the exact counters over every layer of
the grid and every input size up to past the thresholds.

The output sizes are the cost model's, and torch's acceptance rules
(:mod:`.rules`) become conditions on the sizes: the domain of the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import counters
from .conventions import get_convention
from .errors import SymconvError
from .model import cost_model
from .names import LAYER_KINDS, kind_of
from .rules import axis_rules, layer_rules
from .symbols import C_in, C_out, N, groups

Expr = sp.Expr


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _saturated_lattice(q: int, k: int, s: int, d: int) -> int:
    """A(q; n) once n is large enough that no tap is cut short by n (n >= ⌈q/s⌉)."""
    return sum(max(0, _ceil_div(q - t * d, s)) for t in range(k))


def _by_residue(values: list[int], residue: Expr) -> Expr:
    """A function of ``residue`` (in [0, len(values))) given by its values: linear in it where they are
    (always for two residues), a Piecewise over the residues otherwise."""
    step = values[1] - values[0] if len(values) > 1 else 0
    if all(v == values[0] + step * r for r, v in enumerate(values)):
        return values[0] + step * residue
    return sp.Piecewise(*((v, sp.Eq(residue, r)) for r, v in enumerate(values[:-1])), (values[-1], True))


@lru_cache(maxsize=65536)  # S, Z, Z_in and Z_tap each ask it at every size below their thresholds
def _exact_output(transposed: bool, n: int, k: int, s: int, p: int, pr: int, d: int, op: int) -> int:
    """L_out of one axis at a numeric input size, by the cost model."""
    model = cost_model(kind_of(1, transposed), asymmetric=not transposed)
    return int(model.output_size(0).xreplace(_axis_values(model, n, k, s, p, pr, d, op)))


def _exact_axis(transposed: bool, n: int, k: int, s: int, p: int, pr: int, d: int, op: int) -> tuple[int, int, int]:
    """(L_out, S, Z) of one axis at a numeric input size, by the exact counters."""
    L_out = _exact_output(transposed, n, k, s, p, pr, d, op)
    if L_out < 1:
        return L_out, 0, 0
    if transposed:
        S = n * k - counters.lattice_count(p, n, k, s, d) - counters.lattice_count(p - op, n, k, s, d)
        return L_out, S, counters.transposed_coverage(n, k, s, p, d, L_out)
    q_right = (L_out - 1) * s + d * (k - 1) + 1 - n - p
    S = L_out * k - counters.lattice_count(p, L_out, k, s, d) - counters.lattice_count(q_right, L_out, k, s, d)
    return L_out, S, counters.plain_coverage(n, k, s, p, d, L_out)


def _transposed_forms(L: Expr, k: int, s: int, p: int, d: int, op: int) -> tuple[Expr, Expr, int]:
    """S and Z of a transposed axis for L >= the threshold returned, where both are linear in L.

    S: both crops are complete once L >= ⌈p/s⌉. Z: in each residue class of t·d − p
    modulo s, the taps cover unit intervals [a, L − 1 + b] of the output (numeric a,
    b); once L − 1 + min b >= max a they all meet, and the class covers
    L + max b − min a units.
    """
    S = L * k - _saturated_lattice(p, k, s, d) - _saturated_lattice(p - op, k, s, d)
    C = d * (k - 1) - 2 * p + op + 1  # L_out = (L − 1)·s + C
    classes: dict[int, list[tuple[int, int]]] = {}
    for t in range(k):
        base = t * d - p
        residue, unit = base % s, base // s
        edge = (C - 1 - residue) // s  # the class's last unit is L − 1 + edge
        classes.setdefault(residue, []).append((max(unit, 0), min(unit, edge)))
    Z = sp.Integer(0)
    threshold = max(1, _ceil_div(max(p, p - op), s))
    for ends in classes.values():
        lows, highs = [a for a, _ in ends], [b for _, b in ends]
        Z += L + max(highs) - min(lows)
        threshold = max(threshold, max(lows) - min(highs) + 1)
    return S, Z, threshold


def _plain_forms(L: Expr, L_out: Expr, k: int, s: int, p: int, pr: int, d: int) -> tuple[Expr, Expr, int]:
    """S and Z of a plain axis for L >= the threshold returned: L_out times a number, minus a
    function of L modulo s.

    S: the crops A(p) and A(q_right) are complete once L_out >= ⌈max(p, pr)/s⌉, and
    q_right = pr − ((L + p + pr − d(k−1) − 1) mod s). Z: once L >= d the taps are
    contiguous, and an output misses the input only if all its taps fall before it
    (a number of outputs) or after it (a function of (L − 1 + p) mod s).
    """
    c = p + pr - d * (k - 1) - 1  # L_out = ⌊(L + c)/s⌋ + 1
    saturated = max(0, _ceil_div(p, s), _ceil_div(pr, s))
    S = L_out * k - _saturated_lattice(p, k, s, d) - _by_residue(
        [_saturated_lattice(pr - r, k, s, d) for r in range(s)], sp.Mod(L + c, s))
    before = max(0, _ceil_div(p - d * (k - 1), s))
    delta = pr - d * (k - 1)
    after = _by_residue([max(0, (r + delta) // s) for r in range(s)], sp.Mod(L - 1 + p, s))
    Z = L_out - before - after
    threshold = max(1, s * (saturated - 1) - c, d if k > 1 else 1)  # L_out >= saturated, and L >= d
    return S, Z, threshold


def _with_small_sizes(form: Expr, x: sp.Symbol, threshold: int, exact) -> Expr:
    """``form`` in the size ``x`` (proven for x >= threshold), with the exact values of smaller sizes where
    it differs from them.

    Each smaller size is checked: where the form gives the exact value too, no case is
    needed, so most layers need none. Sizes torch refuses (no output) are outside the
    domain and left to the form.
    """
    cases = []
    for n in range(1, threshold):
        L_out, value = exact(n)
        if L_out >= 1 and value != form.xreplace({x: n}):
            cases.append((n, value))
    if not cases:
        return form
    last = max(n for n, _ in cases)
    return sp.Piecewise((form, x > last), *((v, sp.Eq(x, n)) for n, v in cases), (form, True))


def _axis_values(model, L, k, s, p, pr, d, op) -> dict:
    a = model.axes[0]
    values = {a.L: L, a.k: k, a.s: s, a.p: p, a.d: d, a.op: op}
    if model.asymmetric:
        values[a.pr] = pr
    return values


@dataclass(frozen=True)
class SizedAxis:
    """One axis' counts in its (symbolic) input size, and the conditions torch needs of that size."""

    L: Expr
    L_out: Expr
    S: Expr
    Z: Expr
    conditions: tuple[sp.Basic, ...]


@lru_cache(maxsize=4096)
def sized_axis(transposed: bool, L: Expr, k: int, s: int, p: int, pr: int, d: int, op: int,
               padding_mode: str = "zeros") -> SizedAxis:
    """L_out, S and Z of one axis as closed forms in its input size L (an int or a SymPy expression)."""
    L = sp.sympify(L)
    x = sp.Symbol("L_axis", integer=True, positive=True)  # the forms are built in x, then x -> L
    model = cost_model(kind_of(1, transposed), asymmetric=not transposed)
    values = _axis_values(model, L, k, s, p, pr, d, op)
    L_out = model.output_size(0).xreplace(values)
    if transposed:
        S, Z, threshold = _transposed_forms(x, k, s, p, d, op)
    else:
        x_out = model.output_size(0).xreplace(_axis_values(model, x, k, s, p, pr, d, op))
        S, Z, threshold = _plain_forms(x, x_out, k, s, p, pr, d)

    def exact(n: int, which: int) -> tuple[int, int]:
        counts = _exact_axis(transposed, n, k, s, p, pr, d, op)
        return counts[0], counts[which]

    S = _with_small_sizes(S, x, threshold, lambda n: exact(n, 1))
    Z = _with_small_sizes(Z, x, threshold, lambda n: exact(n, 2))
    S, Z = S.xreplace({x: L}), Z.xreplace({x: L})
    conditions = []
    for rule in axis_rules(model, 0, padding_mode):
        holds = rule.holds.xreplace(values)
        if holds is not sp.true:
            conditions.append(holds)
    return SizedAxis(L, L_out, S, Z, tuple(conditions))


# --- the backward pass: the input positions and the taps the gradients touch -----------------------------------

def _exact_gradient_axis(transposed: bool, n: int, k: int, s: int, p: int, pr: int, d: int,
                         op: int) -> tuple[int, int, int]:
    """(L_out, Z_in, Z_tap) of one axis at a numeric input size, by the exact counters (see backward)."""
    L_out = _exact_output(transposed, n, k, s, p, pr, d, op)
    if L_out < 1:
        return L_out, 0, 0
    if transposed:
        return L_out, counters.plain_coverage(L_out, k, s, p, d, n), counters.tap_coverage(n, k, s, p, d, L_out)
    return L_out, counters.transposed_coverage(L_out, k, s, p, d, n), counters.tap_coverage(L_out, k, s, p, d, n)


def _first_size(holds, bound: int) -> int:
    """The smallest input size from which a condition that, once true, stays true (it only asks more of
    quantities that grow with the size) holds."""
    for n in range(1, bound + 1):
        if holds(n):
            return n
    raise AssertionError(f"no size up to {bound} meets the condition")  # the derivation's bound is wrong


def _plain_input_form(L: Expr, k: int, s: int, p: int, pr: int, d: int) -> tuple[Expr, int]:
    """Z_in of a plain axis for L >= the threshold returned: ``classes``·⌊L/s⌋ plus a function of L mod s.

    The inputs tap t reads are i = j·s + t·d − p, j in [0, L_out). In the residue
    class ρ of t·d − p modulo s they are the units [u_t, u_t + L_out − 1] (i = m·s + ρ),
    cut to [0, ⌊(L − 1 − ρ)/s⌋]. Once L_out is at least the widest gap between a
    class's u_t, its units are contiguous; with L = q·s + r, both ends are q plus a
    number that depends on r only.
    """
    c = p + pr - d * (k - 1) - 1  # L_out = ⌊(L + c)/s⌋ + 1
    classes: dict[int, list[int]] = {}
    for t in range(k):
        classes.setdefault((t * d - p) % s, []).append((t * d - p) // s)

    def ends(r: int) -> list[tuple[int, int]]:  # per class, at L = q·s + r: (last unit − q, first unit)
        return [(min(max(us) + (r + c) // s, (r - 1 - rho) // s), max(min(us), 0)) for rho, us in classes.items()]

    values = [sum(high - low + 1 for high, low in ends(r)) for r in range(s)]
    step = values[1] - values[0] if s > 1 else len(classes)
    if values == [values[0] + step * r for r in range(s)] and step * s == len(classes):
        form = step * L + values[0]  # s·⌊L/s⌋ + L mod s = L
    else:
        form = len(classes) * sp.floor(L / s) + _by_residue(values, sp.Mod(L, s))

    def holds(n: int) -> bool:
        q, r = divmod(n, s)
        L_out = q + (r + c) // s + 1
        if L_out < 1:
            return False
        for us, (high, low) in zip(classes.values(), ends(r)):
            us = sorted(set(us))
            if any(b - a > L_out for a, b in zip(us, us[1:])) or q + high < low - 1:
                return False
        return True

    return form, _first_size(holds, 4 * (k * d + p + pr + s) + 8)


def _transposed_input_form(L: Expr, k: int, s: int, p: int, d: int, op: int) -> tuple[Expr, int]:
    """Z_in of a transposed axis for L >= the threshold returned, where it is linear in L.

    Tap t reaches the output from inputs i in [⌈(p − t·d)/s⌉⁺, L − 1 + min(0, e_t)],
    e_t = ⌊(C − 1 + p − t·d)/s⌋ with L_out = (L − 1)·s + C; once every such interval is
    nonempty and they overlap, Z_in spans from the lowest start to the highest end.
    """
    C = d * (k - 1) - 2 * p + op + 1
    lows = [max(0, _ceil_div(p - t * d, s)) for t in range(k)]
    highs = [min(0, (C - 1 + p - t * d) // s) for t in range(k)]  # each interval's end, less L − 1

    def holds(n: int) -> bool:
        if (n - 1) * s + C < 1:
            return False
        intervals = sorted((low, n - 1 + high) for low, high in zip(lows, highs))
        reach = intervals[0][0] - 1
        for low, high in intervals:
            if high < low or low > reach + 1:
                return False
            reach = max(reach, high)
        return True

    return L + max(highs) - min(lows), _first_size(holds, 4 * (k * d + p + s + op) + 8)


@lru_cache(maxsize=4096)
def sized_gradient_axis(transposed: bool, L: Expr, k: int, s: int, p: int, pr: int, d: int,
                        op: int) -> tuple[Expr, Expr]:
    """Z_in and Z_tap of one axis as closed forms in its input size L (an int or a SymPy expression).

    Z_tap grows with L (a larger input only adds triples) up to k, and is k from the
    first size where it reaches k; below their thresholds both take the exact values.
    """
    L = sp.sympify(L)
    x = sp.Symbol("L_axis", integer=True, positive=True)
    if transposed:
        Z_in, threshold = _transposed_input_form(x, k, s, p, d, op)
    else:
        Z_in, threshold = _plain_input_form(x, k, s, p, pr, d)

    def exact(n: int, which: int) -> tuple[int, int]:
        counts = _exact_gradient_axis(transposed, n, k, s, p, pr, d, op)
        return counts[0], counts[which]

    every_tap = _first_size(lambda n: exact(n, 2)[1] == k, 4 * (k * d + p + pr + s + op) + 8)
    Z_in = _with_small_sizes(Z_in, x, threshold, lambda n: exact(n, 1))
    Z_tap = _taps_form(x, k, every_tap, lambda n: exact(n, 2))
    return Z_in.xreplace({x: L}), Z_tap.xreplace({x: L})


def _taps_form(x: sp.Symbol, k: int, every_tap: int, exact) -> Expr:
    """Z_tap: k from ``every_tap`` on; below it Min(k, a·x + b) where one line gives every exact value (it then
    gives k from ``every_tap`` on too), else the exact values as cases."""
    values = [(n, v) for n in range(1, every_tap) for L_out, v in [exact(n)] if L_out >= 1]
    if values:
        n0, v0 = values[0]
        for a in range(1, k + 1):
            b = v0 - a * n0
            if a * every_tap + b >= k and all(min(k, a * n + b) == v for n, v in values):
                return sp.Min(k, a * x + b)
    return _with_small_sizes(sp.Integer(k), x, every_tap, exact)


@dataclass(frozen=True)
class SizedCount:
    """A layer's counts under one convention as closed forms in symbolic sizes, and their domain."""

    convention: str
    batch: Expr
    input_size: tuple[Expr, ...]
    output_size: tuple[Expr, ...]
    psi: Expr
    multiplications: Expr
    additions: Expr
    lam: Expr
    gamma: Expr
    total: Expr
    domain: tuple[sp.Basic, ...]

    def as_dict(self) -> dict[str, Expr]:
        return {"psi": self.psi, "multiplications": self.multiplications, "additions": self.additions,
                "lambda": self.lam, "gamma": self.gamma, "total": self.total}


def _sized_axes(kind: str, kernel_size: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
                padding_right: tuple[int, ...], dilation: tuple[int, ...], output_padding: tuple[int, ...],
                padding_mode: str, spatial: tuple[Expr, ...]) -> tuple[list[tuple], list[sp.Basic]]:
    """Each axis' SizedAxis and the parameters it was derived with (a data padding mode's axis is the unpadded
    layer's on the padded input), and the conditions torch needs of the sizes."""
    transposed = LAYER_KINDS[kind][1]
    axes, domain = [], []
    for a, L in enumerate(spatial):
        L = sp.sympify(L)
        params = (kernel_size[a], stride[a], padding[a], padding_right[a], dilation[a], output_padding[a])
        axis = sized_axis(transposed, L, *params, padding_mode)
        domain += axis.conditions
        if padding_mode != "zeros":  # reflect/replicate/circular pad with data: an unpadded layer on the padded input
            L = L + padding[a] + padding_right[a]
            params = (kernel_size[a], stride[a], 0, 0, dilation[a], output_padding[a])
            axis = sized_axis(transposed, L, *params)
        axes.append((axis, params))
    return axes, domain


def _kept(kind: str, spatial: tuple[Expr, ...], domain: list[sp.Basic]) -> tuple[sp.Basic, ...]:
    """The conditions of a domain that are not always true, once each; SymconvError where one is never true."""
    kept = []
    for condition in domain:
        if condition is sp.false:
            raise SymconvError(f"{kind} never runs on input sizes {tuple(spatial)}: a condition torch needs is false")
        if condition is not sp.true and condition not in kept:
            kept.append(condition)
    return tuple(kept)


def _layer_domain(model, values: dict, batch: Expr, spatial: tuple[Expr, ...]) -> list[sp.Basic]:
    """torch's layer-wide rules on these sizes, and sizes written as expressions positive."""
    return [r.holds.xreplace(values) for r in layer_rules(model)] + \
        [sp.Ge(v, 1) for v in (batch, *spatial) if not sp.sympify(v).is_Symbol]


def sized_count(kind: str, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                stride: tuple[int, ...], padding: tuple[int, ...], padding_right: tuple[int, ...],
                dilation: tuple[int, ...], output_padding: tuple[int, ...], groups_: int, bias: bool,
                padding_mode: str, batch: Expr, spatial: tuple[Expr, ...], convention: str) -> SizedCount:
    """The counts of a layer with numeric parameters on a (symbolic) input, under ``convention``."""
    name = get_convention(convention).name
    model = cost_model(kind)
    values: dict = {N: batch, C_in: in_channels, C_out: out_channels, groups: groups_}
    axes, domain = _sized_axes(kind, kernel_size, stride, padding, padding_right, dilation, output_padding,
                               padding_mode, spatial)
    for ax, (axis, params) in zip(model.axes, axes):
        values.update({ax.L: axis.L, ax.L_out: axis.L_out, ax.k: params[0], ax.S: axis.S, ax.Z: axis.Z})
    domain += _layer_domain(model, values, batch, spatial)

    def value(quantity: str) -> Expr:
        expr = model.resolve(model.quantity(quantity, convention=name, bias=bias), through="additions")
        return expr.xreplace(values)

    mult, add = value("multiplications"), value("additions")
    return SizedCount(name, sp.sympify(batch), tuple(sp.sympify(v) for v in spatial),
                      tuple(axis.L_out for axis, _ in axes), sp.Integer(in_channels * out_channels // groups_), mult,
                      add, mult + add, value("gamma"), value("total"), _kept(kind, spatial, domain))


def sized_gradients(kind: str, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                    stride: tuple[int, ...], padding: tuple[int, ...], padding_right: tuple[int, ...],
                    dilation: tuple[int, ...], output_padding: tuple[int, ...], groups_: int, padding_mode: str,
                    batch: Expr, spatial: tuple[Expr, ...],
                    convention: str) -> tuple[dict[str, Expr], tuple[sp.Basic, ...]]:
    """The backward pass's counts of a layer with numeric parameters on a (symbolic) input, under ``convention``
    (grad_input, grad_weight, grad_bias, as :func:`symconv.core.backward.gradients` defines them), and their
    domain (the forward's)."""
    from .backward import gradient_axis, gradients
    model = cost_model(kind)
    transposed = LAYER_KINDS[kind][1]
    values: dict = {N: batch, C_in: in_channels, C_out: out_channels, groups: groups_}
    axes, domain = _sized_axes(kind, kernel_size, stride, padding, padding_right, dilation, output_padding,
                               padding_mode, spatial)
    for ax, (axis, params) in zip(model.axes, axes):
        Z_in, Z_tap = sized_gradient_axis(transposed, axis.L, *params)
        g = gradient_axis(ax)
        values.update({ax.L: axis.L, ax.L_out: axis.L_out, ax.k: params[0], ax.S: axis.S, g.Z_in: Z_in,
                       g.Z_tap: Z_tap})
    domain += _layer_domain(model, values, batch, spatial)
    counts = {which: sp.sympify(expr).xreplace(values) for which, expr in gradients(model, convention).items()}
    return counts, _kept(kind, spatial, domain)
