"""Closed forms of the count-map sums S and Z, and the hybrid expressions built from them.

Per spatial axis a transposed convolution places input i and tap t at
``m = i*s + t*d`` of an uncropped line ``[0, F]``, ``F = (L-1)s + d(k-1)``; the
output keeps ``m`` in ``[p, p + L_out)``. By the symmetry ``m -> F - m`` the
pairs cropped at either end are counted by one lattice function

    A(q) = #{(i, t) : 0 <= i < n, 0 <= t < k, i*s + t*d < q},

so ``S = L*k - A_L(p) - A_L(p - op)``. A plain convolution is the same picture
with the roles of input and output swapped: ``S = L_out*k - A_{L_out}(p) -
A_{L_out}(q_r)``. Each *candidate* below is a closed form with the condition
under which it is claimed to hold; the grid check in :mod:`symconv.oracle.validate`
confirms or rejects it. The hybrid of a quantity is ``Piecewise`` over its
accepted candidates, ending in an exact counter (a SymPy function that evaluates
on integers and lambdifies to the vectorised counter) for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import sympy as sp

from . import counters
from .symbols import Axis


class _ExactCounter(sp.Function):
    """A SymPy function evaluated by an exact integer counter once its arguments are numbers.

    It prints itself: as a call of its pure-Python counter (``_pythoncode``), of the
    vectorised one in :mod:`symconv.numeric.vector_counters` (``_numpycode``) and of
    the checked C one in ``_native.c`` (``_ccode``), with the same arguments.
    """

    is_integer = True
    is_nonnegative = True
    _count: Callable[..., int]
    _name: str   # the counter's name in every language
    _tex: str

    @classmethod
    def eval(cls, *args):
        if all(a.is_Integer for a in args):
            return sp.Integer(cls._count(*(int(a) for a in args)))
        return None

    def _arguments(self, printer) -> list[str]:
        return [printer._print(a) for a in self.args]

    def _latex(self, printer) -> str:
        return self._tex + r"\left(" + ", ".join(self._arguments(printer)) + r"\right)"

    def _call_in(self, module: str, printer) -> str:
        return f"{printer._module_format(f'{module}.{self._name}')}({', '.join(self._arguments(printer))})"

    def _pythoncode(self, printer) -> str:
        return self._call_in("symconv.core.counters", printer)

    def _numpycode(self, printer) -> str:
        return self._call_in("symconv.numeric.vector_counters", printer)

    def _ccode(self, printer) -> str:
        return printer._call(self._name, *self._arguments(printer))


class LatticeCount(_ExactCounter):
    """A(q; n, k, s, d): pairs with i*s + t*d < q, 0 <= i < n, 0 <= t < k."""

    nargs = 5
    _count = staticmethod(counters.lattice_count)
    _name = "lattice_count"
    _tex = r"\mathcal{A}"


class TransposedCoverage(_ExactCounter):
    """Z of a transposed axis: output positions j hit by some i*s + t*d - p (L, k, s, p, d, L_out)."""

    nargs = 6
    _count = staticmethod(counters.transposed_coverage)
    _name = "transposed_coverage"
    _tex = r"\mathcal{Z}^{T}"


class PlainCoverage(_ExactCounter):
    """Z of a plain axis: output positions j with some tap in the input (L, k, s, p, d, L_out)."""

    nargs = 6
    _count = staticmethod(counters.plain_coverage)
    _name = "plain_coverage"
    _tex = r"\mathcal{Z}"


class TapCoverage(_ExactCounter):
    """Taps t with some a*s + t*d - p in [0, W), a in [0, n): what a weight gradient reaches (n, k, s, p, d, W)."""

    nargs = 6
    _count = staticmethod(counters.tap_coverage)
    _name = "tap_coverage"
    _tex = r"\mathcal{T}"


class Gcd(_ExactCounter):
    """gcd(a, b) of integers (SymPy's own gcd treats symbols as polynomials and returns 1)."""

    nargs = 2
    _count = staticmethod(counters.gcd)
    _name = "gcd"
    _tex = r"\gcd"


# --- A(q): closed forms by family -----------------------------------------------------------
# Min and Max are built unevaluated: with symbolic arguments SymPy would try to order them
# under assumptions (a third of a second per hybrid); numbers substituted later evaluate them.

def _min(*args: sp.Expr) -> sp.Expr:
    return sp.Min(*args, evaluate=False)


def _max(*args: sp.Expr) -> sp.Expr:
    return sp.Max(*args, evaluate=False)


def _tri(x: sp.Expr) -> sp.Expr:
    """x(x+1)/2 for x > 0, else 0: pairs of non-negative integers with i + t < x."""
    m = _max(x, 0)
    return m * (m + 1) / 2


@dataclass(frozen=True)
class Family:
    """A closed form of A(q; n, k, s, d) and the condition (on q >= 1) under which it holds."""

    name: str
    why: str
    form: Callable[[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr], sp.Expr]
    condition: Callable[[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr], sp.Basic]


def _unit_step(q: sp.Expr, n: sp.Expr, k: sp.Expr, s: sp.Expr) -> sp.Expr:
    """#{(i, t) : i*s + t < q, i < n, t < k}: f inputs keep all k taps, inputs f..m-1 keep q - i*s."""
    f = _min(n, _max(0, sp.floor((q - k) / s) + 1))
    m = _min(n, sp.ceiling(q / s))
    return k * f + (m - f) * q - s * (_tri(m - 1) - _tri(f - 1))


def _divided_step(q: sp.Expr, n: sp.Expr, k: sp.Expr, s: sp.Expr, d: sp.Expr) -> sp.Expr:
    """A(q) when s divides d: tap t keeps ⌈(q − t·d)/s⌉ = ⌈q/s⌉ − t·d/s inputs, an arithmetic series.

    The first ``full`` taps keep all n inputs; taps up to ``taps`` keep the series' terms.
    """
    taps = _min(k, sp.ceiling(q / d))
    full = _min(taps, _max(0, sp.ceiling((q - (n - 1) * s) / d)))
    return (full * n + (taps - full) * sp.ceiling(q / s)
            - sp.floor(d / s) * (taps * (taps - 1) - full * (full - 1)) / 2)


A_FAMILIES: tuple[Family, ...] = (
    Family("first input only", "q <= s: only i = 0 can reach below q",
           lambda q, n, k, s, d: _min(k, sp.ceiling(q / d)),
           lambda q, n, k, s, d: q <= s),
    Family("first tap only", "q <= d: only t = 0 can reach below q",
           lambda q, n, k, s, d: _min(n, sp.ceiling(q / s)),
           lambda q, n, k, s, d: q <= d),
    Family("stride equals dilation", "s = d: i + t < ceil(q/s), a truncated triangle by inclusion-exclusion",
           lambda q, n, k, s, d: (lambda x: _tri(x) - _tri(x - n) - _tri(x - k) + _tri(x - n - k))(
               sp.ceiling(q / s)),
           lambda q, n, k, s, d: sp.Eq(s, d)),
    Family("no overlap", "s > d(k-1): each input's taps stay inside its own stride block",
           lambda q, n, k, s, d: _min(n * k, k * sp.floor(q / s) + _min(k, sp.ceiling(sp.Mod(q, s) / d))),
           lambda q, n, k, s, d: s > d * (k - 1)),
    Family("unit dilation", "d = 1: taps are consecutive, so each input keeps min(k, q - i*s) of them",
           lambda q, n, k, s, d: _unit_step(q, n, k, s),
           lambda q, n, k, s, d: sp.Eq(d, 1)),
    Family("unit stride", "s = 1: the same count with inputs and taps swapped",
           lambda q, n, k, s, d: _unit_step(q, k, n, d),
           lambda q, n, k, s, d: sp.Eq(s, 1)),
    Family("stride divides dilation", "d = m·s: tap t keeps ⌈q/s⌉ − m·t inputs, an arithmetic series",
           _divided_step,
           lambda q, n, k, s, d: sp.Eq(sp.Mod(d, s), 0)),
    Family("dilation divides stride", "s = m·d: the same series with inputs and taps swapped",
           lambda q, n, k, s, d: _divided_step(q, k, n, d, s),
           lambda q, n, k, s, d: sp.Eq(sp.Mod(s, d), 0)),
)


@lru_cache(maxsize=None)
def lattice(q: sp.Expr, n: sp.Expr, k: sp.Expr, s: sp.Expr, d: sp.Expr, *,
            families: tuple[Family, ...] = A_FAMILIES, fallback: bool = True) -> sp.Expr:
    """Hybrid A(q): 0 for q <= 0, then the first family whose condition holds, else the counter.

    Without ``fallback`` the last family is used unconditionally, so a candidate can
    be evaluated (and shown wrong) outside its condition too.
    """
    pieces = [(sp.Integer(0), q <= 0)]
    pieces += [(f.form(q, n, k, s, d), f.condition(q, n, k, s, d)) for f in families]
    if fallback:
        pieces.append((LatticeCount(q, n, k, s, d), True))
    else:
        pieces[-1] = (pieces[-1][0], True)
    return sp.Piecewise(*pieces)


def closed_condition(q: sp.Expr, n: sp.Expr, k: sp.Expr, s: sp.Expr, d: sp.Expr,
                     families: tuple[Family, ...] = A_FAMILIES) -> sp.Basic:
    """Where A(q) resolves without the counter."""
    return sp.Or(q <= 0, *(f.condition(q, n, k, s, d) for f in families))


# --- per-axis S and Z ----------------------------------------------------------------------

def right_crop(ax: Axis, transposed: bool) -> sp.Expr:
    """q of the lattice count that the far end of the axis crops."""
    if transposed:
        return ax.p - ax.op
    return (ax.L_out - 1) * ax.s + ax.d * (ax.k - 1) + 1 - ax.L - ax.p


def s_sum(ax: Axis, transposed: bool, crop: Callable[..., sp.Expr] | None = None, **lattice_options) -> sp.Expr:
    """S: products that land in the output, uncropped count minus both crops.

    ``crop`` counts one end's cropped pairs, A(q, n, k, s, d): by default the hybrid
    :func:`lattice`; :class:`LatticeCount` gives the definition itself.
    """
    crop = crop or (lambda *args: lattice(*args, **lattice_options))
    n = ax.L if transposed else ax.L_out
    return n * ax.k - crop(ax.p, n, ax.k, ax.s, ax.d) - crop(right_crop(ax, transposed), n, ax.k, ax.s, ax.d)


@dataclass(frozen=True)
class Candidate:
    """A closed form claimed for an oracle quantity under a condition.

    ``quantity`` is "S", "Z" (per axis) or "docs_additions" (whole layer);
    ``in_hybrid`` says whether the hybrid uses it (naive candidates are kept to be
    shown rejected); ``display`` is the same form of one axis written for reading
    (S and the lattice count A left as symbols), where it differs.
    """

    name: str
    transposed: bool
    quantity: str
    build: Callable[[tuple[Axis, ...]], tuple[sp.Expr, sp.Basic]]
    in_hybrid: bool = True
    note: str = ""
    display: Callable[[Axis], tuple[sp.Expr, sp.Basic]] | None = None

    def readable(self, ax: Axis) -> tuple[sp.Expr, sp.Basic]:
        """The candidate on one axis as a reader sees it."""
        return self.display(ax) if self.display else self.build((ax,))


def _z_full_transposed(ax: Axis) -> tuple[sp.Expr, sp.Basic]:
    cond = sp.Or(sp.And(sp.Eq(ax.d, 1), ax.s <= ax.k), sp.And(sp.Eq(ax.s, 1), ax.d <= ax.L))
    return ax.L_out - sp.Max(0, ax.op - ax.p), cond


def _z_plain_contiguous(ax: Axis) -> tuple[sp.Expr, sp.Basic]:
    left = sp.Max(0, sp.ceiling((ax.p - ax.d * (ax.k - 1)) / ax.s))
    right = sp.Max(0, ax.L_out - 1 - sp.floor((ax.L - 1 + ax.p) / ax.s))
    return ax.L_out - left - right, sp.Or(ax.d <= ax.L, sp.Eq(ax.k, 1))


DIVIDING = tuple(f for f in A_FAMILIES if "divides" in f.name)


def _divide_each_other(s: sp.Expr, d: sp.Expr) -> sp.Basic:
    return sp.Or(sp.Eq(sp.Mod(d, s), 0), sp.Eq(sp.Mod(s, d), 0))


def _z_transposed_dividing(ax: Axis, crop: Callable[..., sp.Expr] | None = None) -> tuple[sp.Expr, sp.Basic]:
    """Z as :func:`counters.transposed_coverage`'s two rectangles, each a difference of
    lattice counts in closed form: gcd(s, d) = min(s, d) when one divides the other.

    ``crop`` gives A(q, n, k, s, d): by default the divisibility families' closed
    forms; :class:`LatticeCount` keeps A as a call, for reading.
    """
    L, k, s, p, d = ax.L, ax.k, ax.s, ax.p, ax.d
    g = _min(s, d)
    s1, d1 = sp.floor(s / g), sp.floor(d / g)
    crop = crop or (lambda *args: lattice(*args, families=DIVIDING, fallback=False))

    def rect(i0, n, t0, taps):
        shift = i0 * s + t0 * d
        return crop(p + ax.L_out - shift, n, taps, s, d) - crop(p - shift, n, taps, s, d)

    low = _max(0, L - d1)
    z = rect(0, L, 0, _min(s1, k)) + sp.Piecewise((0, k <= s1), (rect(low, L - low, s1, k - s1), True))
    return z, _divide_each_other(s, d)


def _floor_sum_dividing(c: sp.Expr, m: sp.Expr, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """Σ_{u<c} ⌊(a·u + b)/m⌋ when a divides m or m divides a.

    m = j·a makes it Σ ⌊(u + B)/j⌋ with B = ⌊b/a⌋, a difference F(c + B) − F(B) of
    F(x) = Σ_{v<x} ⌊v/j⌋ = j·Q(Q−1)/2 + (x − jQ)·Q, Q = ⌊x/j⌋ (valid for every integer x).
    """
    # at least 1: numpy evaluates every branch of a Piecewise, this one also where a does not divide m
    j, big = _max(1, sp.floor(m / a)), sp.floor(b / a)

    def partial(x):
        whole = sp.floor(x / j)
        return j * whole * (whole - 1) / 2 + (x - j * whole) * whole

    return sp.Piecewise((sp.floor(a / m) * c * (c - 1) / 2 + c * sp.floor(b / m), sp.Eq(sp.Mod(a, m), 0)),
                        (partial(c + big) - partial(big), True))


class FloorSum(sp.Function):
    """Σ_{u<c} ⌊(a·u + b)/m⌋ as a symbol (c, m, a, b), for reading a form that holds it in closed form."""

    nargs = 4

    def _latex(self, printer) -> str:
        return r"\Phi\left(" + ", ".join(printer._print(a) for a in self.args) + r"\right)"


def _z_plain_dividing(ax: Axis, floor_sum: Callable[..., sp.Expr] | None = None) -> tuple[sp.Expr, sp.Basic]:
    """Z as :func:`counters.plain_coverage` computes it, its floor sums closed when s and d divide each other
    (``floor_sum=FloorSum`` keeps them as calls, for reading)."""
    L, k, s, p, d = ax.L, ax.k, ax.s, ax.p, ax.d
    floor_sum = floor_sum or _floor_sum_dividing
    inside = _max(0, _min(ax.L_out - 1, sp.floor((L - 1 + p) / s)) - _max(0, sp.ceiling(p / s)) + 1)
    low = _max(0, sp.ceiling((p - (k - 1) * d) / s))
    count = _max(0, _min(ax.L_out - 1, sp.ceiling(p / s) - 1) - low + 1)
    start = low * s - p
    edge = sp.Piecewise((count, L >= d), (floor_sum(count, d, s, start) - floor_sum(count, d, s, start - L), True))
    return inside + edge, _divide_each_other(s, d)


def _per_axis(fn: Callable[[Axis], tuple[sp.Expr, sp.Basic]]):
    """Lift a one-axis candidate to a tuple of axes (1-d candidates read axis 0)."""
    return lambda axes: fn(axes[0])


def _uncropped(axes: tuple[Axis, ...], declared: Callable[[Axis], sp.Basic]) -> tuple[sp.Expr, sp.Basic]:
    expr = sp.Mul(*(a.L * a.k for a in axes)) - sp.Mul(*(a.L_out for a in axes))
    return expr, sp.And(*(declared(a) for a in axes))


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("uncropped product, as designed", True, "docs_additions",
              lambda axes: _uncropped(axes, lambda a: sp.true), in_hybrid=False,
              note="Π(L·k) − ΠL_out claimed everywhere: ignores the products padding crops"),
    Candidate("uncropped product, no padding", True, "docs_additions",
              lambda axes: _uncropped(axes, lambda a: sp.Eq(a.p, 0)),
              note="Π(L·k) − ΠL_out where no axis is cropped"),
    *(Candidate(f"S, crops by '{f.name}'", True, "S",
                _per_axis(lambda a, f=f: (s_sum(a, True, families=(f,), fallback=False),
                                          s_closed_condition(a, True, (f,)))),
                note=f.why) for f in A_FAMILIES),
    Candidate("Z = L_out, every position reached", True, "Z",
              _per_axis(lambda a: (a.L_out, sp.true)), in_hybrid=False,
              note="ignores gaps (stride > dilation·kernel) and positions output_padding adds"),
    Candidate("Z, full coverage", True, "Z", _per_axis(_z_full_transposed),
              note="unit dilation with stride <= kernel, or unit stride with dilation <= L"),
    Candidate("Z by rectangles, stride and dilation divide one another", True, "Z",
              _per_axis(_z_transposed_dividing),
              note="one pair per position (the smallest tap), two rectangles of lattice counts in closed form",
              display=lambda a: _z_transposed_dividing(a, crop=LatticeCount)),
    Candidate("Z = S, every position hit at most once", True, "Z",
              _per_axis(lambda a: (hybrid_s(a, True),
                                   sp.Or(a.d >= a.L * Gcd(a.s, a.d), a.s >= a.k * Gcd(a.s, a.d)))),
              note="i·s + t·d is one-to-one iff d/gcd(s,d) >= L or s/gcd(s,d) >= k "
                   "(contains 'no overlap', s > d(k-1))",
              display=lambda a: (a.S, sp.Or(a.d >= a.L * Gcd(a.s, a.d), a.s >= a.k * Gcd(a.s, a.d)))),
    *(Candidate(f"S, crops by '{f.name}'", False, "S",
                _per_axis(lambda a, f=f: (s_sum(a, False, families=(f,), fallback=False),
                                          s_closed_condition(a, False, (f,)))),
                note=f.why) for f in A_FAMILIES),
    Candidate("Z, contiguous taps", False, "Z", _per_axis(_z_plain_contiguous),
              note="dilation <= L: a position misses the input only if all its taps fall on one side"),
    Candidate("Z, stride and dilation divide one another", False, "Z", _per_axis(_z_plain_dividing),
              note="outputs left of the input reach it where their first tap is L-near a multiple of d: "
                   "floor sums of an arithmetic progression",
              display=lambda a: _z_plain_dividing(a, floor_sum=FloorSum)),
)


def s_closed_condition(ax: Axis, transposed: bool, families: tuple[Family, ...] = A_FAMILIES) -> sp.Basic:
    """Where both crops of S resolve by the given families, without the counter."""
    n = ax.L if transposed else ax.L_out
    return sp.And(closed_condition(ax.p, n, ax.k, ax.s, ax.d, families),
                  closed_condition(right_crop(ax, transposed), n, ax.k, ax.s, ax.d, families))


@lru_cache(maxsize=None)
def hybrid_s(ax: Axis, transposed: bool) -> sp.Expr:
    """S of one axis: closed forms of both crops where a family holds, the counter elsewhere."""
    return s_sum(ax, transposed)


@lru_cache(maxsize=None)
def hybrid_z(ax: Axis, transposed: bool) -> sp.Expr:
    """Z of one axis: Piecewise over the accepted Z candidates, then the exact counter."""
    pieces = []
    for cand in CANDIDATES:
        if cand.quantity == "Z" and cand.transposed == transposed and cand.in_hybrid:
            pieces.append(cand.build((ax,)))
    counter = TransposedCoverage if transposed else PlainCoverage
    pieces.append((counter(ax.L, ax.k, ax.s, ax.p, ax.d, ax.L_out), True))
    return sp.Piecewise(*pieces)
