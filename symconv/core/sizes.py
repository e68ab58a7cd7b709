"""Sizes as users write them, and formulas in them.

A size is an int, a name or an expression in names (``"H"``, ``"8*h"``,
``"2*k+1"``); names stand for positive integers. Expressions are read with
Python's ``ast`` (integers, names, ``+``, ``-``, ``*`` and integer powers), never
``eval``. A :class:`Formula` is a count in those names with its domain: the
conditions on the sizes under which it is exact (torch's acceptance rules, and
what tracing the model assumed). It prints collected by monomial, gives LaTeX in
the pages' notation, evaluates exactly and refuses sizes outside its domain.
"""

from __future__ import annotations

import ast
import numbers
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import takewhile
from typing import Any, Callable, Sequence

import sympy as sp

from .errors import SymconvError
from .text import formula_text

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCAN = 256  # sizes tried when a condition on one name is described as a threshold


def size_symbol(name: str) -> sp.Symbol:
    """The symbol of a size name: a positive integer."""
    if not _NAME.fullmatch(name):
        raise SymconvError(f"size name {name!r} must be a Python identifier (letters, digits, _)")
    return sp.Symbol(name, integer=True, positive=True)


def _read(node: ast.AST, text: str) -> sp.Expr:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sp.Integer(node.value)
    if isinstance(node, ast.Name):
        return size_symbol(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _read(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Pow)):
        left, right = _read(node.left, text), _read(node.right, text)
        if isinstance(node.op, ast.Pow):
            if not (right.is_Integer and right >= 0):
                raise SymconvError(f"size {text!r}: only non-negative integer powers are sizes")
            return left ** right
        return {ast.Add: sp.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sp.Mul}[type(node.op)](left, right)
    raise SymconvError(f"size {text!r} must be an integer, a name or an expression in names with +, -, * "
                       f"(e.g. 8*h, 2*k+1)")


def parse_size(value: Any) -> int | sp.Expr:
    """An int stays an int; a name or an expression in names becomes a SymPy expression."""
    if isinstance(value, bool):
        raise SymconvError(f"size {value!r} must be an integer, a name or an expression, not a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, sp.Expr):
        return value.xreplace({s: size_symbol(s.name) for s in value.free_symbols})
    if isinstance(value, str):
        text = value.strip()
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError:
            raise SymconvError(f"size {value!r} is not an integer, a name or an expression in names") from None
        expr = _read(tree.body, value)
        return int(expr) if expr.is_Integer else expr
    raise SymconvError(f"size {value!r} must be an integer, a name or an expression in names")


def positive_size(label: str, value: Any) -> int:
    """A size given as a number as an int (numpy's integers too); SymconvError naming ``label`` for anything else,
    a bool or a float among them, and for a size below 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise SymconvError(f"{label}={value!r} must be a positive integer")
    return int(value)


def is_symbolic(shape: Sequence[Any]) -> bool:
    """Whether a shape holds a name or an expression (not only ints)."""
    return any(not isinstance(v, int) or isinstance(v, bool) for v in shape)


def _shifts(names: Sequence[sp.Symbol], lower: dict[sp.Symbol, int]) -> tuple[dict, dict]:
    """name -> bound + a non-negative integer, and back: SymPy then decides what the domain settles
    (Min(4·h, 3) is 3 for h >= 1, a condition L <= 2 is False for L >= 3)."""
    fresh = {s: sp.Symbol(f"{s.name}_", integer=True, nonnegative=True) for s in names}
    return ({s: fresh[s] + lower.get(s, 1) for s in names}, {fresh[s]: s - lower.get(s, 1) for s in names})


def _decided(condition: sp.Basic, lower: dict[sp.Symbol, int]) -> sp.Basic:
    """A condition as the domain's lower bounds decide it (True or False), or as it is."""
    there, _ = _shifts(sorted(condition.free_symbols, key=lambda s: s.name), lower)
    decided = condition.xreplace(there)
    return decided if decided in (sp.true, sp.false) else condition


def _implied(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> bool:
    """Whether a condition holds at every size from the domain's lower bounds on, read through factors that only
    grow with the sizes and are positive at the bounds (a size derived from the input's, as an output size): a ≠ b
    or a > b where a − b is a positive multiple of such factors (1 mod such a factor above 1 is not 0), an or / and
    of such conditions, an or whose conditions on one name hold at every size (T = 1 or T**2 >= 2)."""
    if isinstance(cond, sp.Or):  # one of its conditions implied, or those on one name true at every size
        return any(_implied(c, lower) for c in cond.args) or any(
            _holds_from(sp.Or(*alone), name, lower.get(name, 1)) or _implied_above(cond, name, lower)
            for name in cond.free_symbols if (alone := [c for c in cond.args if c.free_symbols == {name}]))
    if isinstance(cond, sp.And):
        return all(_implied(c, lower) for c in cond.args)
    if not isinstance(cond, (sp.Ne, sp.Gt, sp.Ge, sp.Lt, sp.Le)):
        return False
    difference = cond.lhs - cond.rhs if isinstance(cond, (sp.Ne, sp.Gt, sp.Ge)) else cond.rhs - cond.lhs
    # torch writes a product's size over a divisor it cancels, floor(4*a*b/4): expanded, the floor of an integer
    difference = difference.replace(lambda e: isinstance(e, sp.floor), lambda e: sp.floor(sp.expand(e.args[0])))
    if _at_least(difference, 1 if isinstance(cond, (sp.Ne, sp.Gt, sp.Lt)) else 0, lower):  # integers: > 0 is >= 1
        return True
    coefficient, factors = sp.factor_list(difference)
    if coefficient == 0 or (not isinstance(cond, sp.Ne) and coefficient < 0):
        return False

    def nonzero(f: sp.Basic) -> bool:
        if isinstance(f, sp.Mod) and f.args[0] == 1:
            return _at_least(f.args[1], 2, lower)  # 1 mod m is 1 for m >= 2
        return _at_least(f, 1, lower)

    return all(nonzero(f) if isinstance(cond, sp.Ne) else _at_least(f, 1, lower) for f, _ in factors)


def _at_least(f: sp.Basic, bound: int, lower: dict[sp.Symbol, int]) -> bool:
    """Whether an expression in sizes is at least ``bound`` at every size from the names' ``lower`` ones on: it
    only grows with them, and is there."""
    return _nondecreasing(f, lower) and bool(f.xreplace({s: lower.get(s, 1) for s in f.free_symbols}) >= bound)


def _equations_of(cond: sp.Or) -> dict[sp.Symbol, set[int]]:
    """The sizes an or's equations name, by name (``L = 3 or L = 4 or …``: {L: {3, 4}})."""
    named: dict[sp.Symbol, set[int]] = {}
    for c in cond.args:
        if isinstance(c, sp.Eq) and c.lhs.is_Symbol and c.rhs.is_Integer:
            named.setdefault(c.lhs, set()).add(int(c.rhs))
    return named


def _implied_above(cond: sp.Or, name: sp.Symbol, lower: dict[sp.Symbol, int]) -> bool:
    """Whether an or holds through its equations naming the sizes of ``name`` from its least one up (``L = 3 or
    L = 4 or …``, sizes joined to a domain) and, above them, through one of its other conditions."""
    named = _equations_of(cond).get(name, set())
    above = lower.get(name, 1)
    while above in named:
        above += 1
    rest = [c for c in cond.args if not (isinstance(c, sp.Eq) and c.lhs == name)]
    return above > lower.get(name, 1) and any(_implied(c, {**lower, name: above}) for c in rest)


_FAR = 10 ** 9  # sizes far beyond the scan, where a threshold still holds and an upper bound no longer does


def holds_at(cond: sp.Basic, name: sp.Symbol, n: int) -> bool:
    """Whether a condition on one name holds at size ``n`` (see :func:`_holds`)."""
    return _holds(cond, {name: n})


def _holds(cond: sp.Basic, values: dict[sp.Symbol, int]) -> bool:
    """Whether a condition holds at the given sizes; not where it is undefined there (1 mod floor(H/4) at H < 4,
    which the domain excludes by another of its conditions)."""
    try:
        return bool(cond.xreplace(values))
    except ZeroDivisionError:
        return False


@lru_cache(maxsize=4096)  # a joined size's needs are read again at each step of joining and of printing
def _holds_from(cond: sp.Basic, name: sp.Symbol, start: int) -> bool:
    """Whether a condition on one name holds at ``start``, the _SCAN sizes after it and far beyond (a threshold,
    not an equality, a parity that happens to hold where the scan ends, or a bound above the scan: a branch taken
    up to L = 300)."""
    sizes = (*range(start, start + _SCAN + 1), *range(_FAR, _FAR + 8))
    return all(holds_at(cond, name, n) for n in sizes)


def _solved(cond: sp.Basic) -> tuple[sp.Symbol, sp.Integer] | None:
    """A linear equation (or inequation) in one name, solved for it: (name, size); None for any other."""
    if not isinstance(cond, (sp.Eq, sp.Ne)) or len(cond.free_symbols) != 1:
        return None
    (name,) = cond.free_symbols
    difference = cond.lhs - cond.rhs
    if difference.is_polynomial(name) and sp.degree(difference, name) == 1:
        root = sp.solve(difference, name)[0]
        if root.is_Integer:
            return name, root
    return None


_FLIPPED = {sp.Gt: sp.Lt, sp.Ge: sp.Le, sp.Lt: sp.Gt, sp.Le: sp.Ge}


def _solved_bound(cond: sp.Basic) -> sp.Basic | None:
    """A linear inequality in one name as a bound on the name (``12 < 12*N``: ``N > 1``); None for any other, or
    where the bound is not a whole number."""
    if type(cond) not in _FLIPPED or len(cond.free_symbols) != 1:
        return None
    (name,) = cond.free_symbols
    difference = cond.lhs - cond.rhs
    if not (difference.is_polynomial(name) and sp.degree(difference, name) == 1):
        return None
    slope = difference.coeff(name, 1)
    root = -difference.coeff(name, 0) / slope
    if not root.is_Integer:
        return None
    return (type(cond) if slope > 0 else _FLIPPED[type(cond)])(name, root)


def _residue(cond: sp.Basic, name: sp.Symbol, start: int) -> tuple[int, int] | None:
    """(m, r) where a condition on one name holds, over the _SCAN sizes from ``start``, exactly at the sizes
    ≡ r (mod m), for a modulus m up to 8; None for any other condition."""
    sizes = range(start, start + _SCAN + 1)
    holds = [holds_at(cond, name, n) for n in sizes]
    return next(((m, r) for m in range(2, 9) for r in range(m)
                 if all(h == (n % m == r) for n, h in zip(sizes, holds))), None)


def as_residues(cond: sp.Basic) -> sp.Basic:
    """An equation in one name whose sides repeat with it (floors of it over whole numbers: an output_padding or a
    padding that follows the size, ``Eq(H - 2*floor(H/2 - 1/2), 1)``) as the residues where it holds
    (``Eq(Mod(H, 2), 1)``), proven by writing the name as period·q + r; any other condition as it is."""
    if not isinstance(cond, sp.Eq) or len(cond.free_symbols) != 1:
        return cond
    (name,) = cond.free_symbols
    difference = cond.lhs - cond.rhs
    period = 1
    for atom in difference.atoms(sp.floor, sp.ceiling, sp.Mod):
        inner, modulus = atom.args if isinstance(atom, sp.Mod) else (atom.args[0], sp.Integer(1))
        step = sp.diff(inner, name) / modulus  # the atom's argument grows by this per unit of the name
        if not step.is_Rational:
            return cond
        period = sp.ilcm(period, step.q)
    if period == 1 or period > 8:
        return cond
    q = sp.Symbol("q", integer=True, nonnegative=True)
    holds = []
    for r in range(period):
        value = sp.expand(difference.xreplace({name: period * q + r}))
        if value.free_symbols:  # a part that grows with the name: not periodic
            return cond
        holds.append(value == 0)
    if all(holds):
        return sp.true
    return sp.Or(*(sp.Eq(sp.Mod(name, period), r) for r in range(period) if holds[r]))


def any_of(conditions: Sequence[sp.Basic]) -> sp.Basic:
    """Where one of the conditions holds: true where, among them, residues of a name (``Eq(Mod(H, 2), r)``) cover
    every residue."""
    union = sp.Or(*conditions)
    residues: dict[sp.Basic, set[int]] = {}
    for c in union.args if isinstance(union, sp.Or) else (union,):
        if isinstance(c, sp.Eq) and isinstance(c.lhs, sp.Mod) and c.lhs.args[0].is_Symbol and c.rhs.is_Integer:
            residues.setdefault(c.lhs, set()).add(int(c.rhs))
    covered = any(found == set(range(int(mod.args[1]))) for mod, found in residues.items())
    return sp.true if covered else union


def _residue_text(name: sp.Symbol, m: int, r: int) -> str:
    return f"{name.name} {('even', 'odd')[r]}" if m == 2 else f"{name.name} ≡ {r} (mod {m})"


@lru_cache(maxsize=4096)  # a domain's conditions are read again at each step of widening it and of printing it
def normalized(cond: sp.Basic) -> sp.Basic:
    """A condition in one form of those torch's tracing writes it in: a linear (in)equation or inequality in one
    name solved for it (``Ne(16*T, 16)``: ``Ne(T, 1)``; ``12 < 12*N``: ``N > 1``); a product of sizes not 1,
    however it is written (``Ne(Mod(1, B), 0)``: ``Ne(B, 1)``; ``Ne(H*W, H)``, ``Ne(H*Mod(1, W), 0)``,
    ``W < H*W``: ``Ne(W, 1)``, ``Ne(W, 1)``, ``Ne(H, 1)``; ``1 < H*W``, ``H**2*W**2 >= 2``: ``Ne(H*W, 1)``) and
    what holds at every size as true (``8*N*W >= 8*N``); sizes not all 1 (``B ≠ 1 or T ≠ 1``, ``H > 1 or
    W ≠ 1``: ``Ne(B*T, 1)``, ``Ne(H*W, 1)``); an inequality with the name on the left (``1 < T``: ``T > 1``)."""
    solved = _solved(cond)
    if solved is not None:
        return type(cond)(*solved)
    bound = _solved_bound(cond)
    if bound is not None:
        return bound
    if isinstance(cond, (sp.Eq, sp.Ne)):
        found = _one_where(cond.lhs - cond.rhs)
        if found is not None:
            return type(cond)(found[0], 1)
    if type(cond) in _FLIPPED:
        greater, lesser = (cond.lhs, cond.rhs) if isinstance(cond, (sp.Gt, sp.Ge)) else (cond.rhs, cond.lhs)
        found = _one_where(greater - lesser)
        if found is not None:  # P - 1 >= 0 at every size: above it where P is not 1, never below it
            sizes, sign = found
            strict = isinstance(cond, (sp.Gt, sp.Lt))
            if sign > 0:
                return sp.Ne(sizes, 1) if strict else sp.true
            return sp.false if strict else sp.Eq(sizes, 1)
    if isinstance(cond, sp.Or):
        products = [product_not_one(c) for c in cond.args]
        if all(p is not None for p in products):  # not all 1 in each part: not all 1 among them all
            return sp.Ne(sp.Mul(*set().union(*(p.free_symbols for p in products))), 1)
    canonical = getattr(cond, "canonical", cond)
    if isinstance(canonical, (sp.Gt, sp.Ge)) and canonical.rhs == (1 if isinstance(canonical, sp.Gt) else 2):
        sizes = _bases(canonical.lhs)
        if sizes is not None and not sizes.is_Symbol:
            return sp.Ne(sizes, 1)  # a product of sizes is at least 1: above 1 is not 1
    return canonical


def _bases(e: sp.Basic) -> sp.Expr | None:
    """The product of the sizes in a product of positive powers of sizes (``H**2*W``: ``H*W``, 1 exactly where
    it is), else None."""
    bases = []
    for f in (e.args if e.is_Mul else (e,)):
        base = f.base if isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp > 0 else f
        if not (base.is_Symbol and base.is_positive):
            return None
        bases.append(base)
    return sp.Mul(*bases)


def _one_where(difference: sp.Expr) -> tuple[sp.Expr, int] | None:
    """(P, sign) where ``difference`` is ``sign`` times a positive multiple (by factors positive at every size:
    numbers, powers of sizes, ``T + 1``) of ``P - 1`` or of ``Mod(1, P)``, P a product of sizes: 0 exactly where
    P is 1, of that sign elsewhere (``T**2 - 1``: T); else None."""
    if not difference.free_symbols or not all(s.is_positive for s in difference.free_symbols) or \
            difference.has(sp.Piecewise):  # not a polynomial in anything
        return None
    coefficient, factors = sp.factor_list(difference)
    rest = [(f, k) for f, k in factors if not f.is_positive]
    if coefficient == 0 or len(rest) != 1 or rest[0][1] != 1:
        return None
    f = rest[0][0]
    sizes = _bases(f.args[1]) if isinstance(f, sp.Mod) and f.args[0] == 1 else _bases(f + 1)
    return None if sizes is None else (sizes, 1 if coefficient > 0 else -1)


def product_not_one(cond: sp.Basic) -> sp.Expr | None:
    """The product of sizes a condition says is not 1, however torch wrote it (``Ne(N*W, 1)``, ``H > 1 or
    W ≠ 1``), else None: such a condition is false exactly where every size of the product is 1."""
    return _not_one(normalized(cond))


def _not_one(cond: sp.Basic) -> sp.Expr | None:
    """The product of sizes a normalized condition says is not 1 (``Ne(H*W, 1)``, ``H > 1``, ``N >= 2``), else
    None."""
    size = _said_not_one(cond)
    return size if size is not None and _bases(size) == size else None


def _said_not_one(cond: sp.Basic) -> sp.Expr | None:
    """What a normalized condition says is not 1, as torch writes it of a positive size (``x ≠ 1``, ``x > 1``,
    ``x >= 2``), else None."""
    if isinstance(cond, (sp.Ne, sp.Gt)) and cond.rhs == 1 or isinstance(cond, sp.Ge) and cond.rhs == 2:
        return cond.lhs
    return None


def tidied(conditions: Sequence[sp.Basic]) -> tuple[sp.Basic, ...]:
    """Conditions in normal form, once each, without ``Ne(x, 1)`` where ``x >= 2`` says it already."""
    out = tuple(dict.fromkeys(normalized(c) for c in conditions))
    above_one = {c.lhs for c in out if isinstance(c, (sp.Gt, sp.Ge)) and c in (sp.Gt(c.lhs, 1), sp.Ge(c.lhs, 2))}
    return tuple(c for c in out if not (isinstance(c, sp.Ne) and c.rhs == 1 and c.lhs in above_one))


def says_not_one(cond: sp.Basic, name: sp.Symbol, domain: Sequence[sp.Basic] = ()) -> bool:
    """Whether a condition says exactly that a (positive) size is not 1, as torch's tracing assumes where
    broadcasting would differ: ``Ne(N, 1)``, ``N > 1``, ``N >= 2``, ``Ne(16*T, 16)``, or through a product
    of positive sizes, ``Ne(16*H*N*W, 16*H*W)``, ``Ne(B*Mod(1, T), 0)`` (1 mod T is 0 at T = 1 only). A size
    derived from the input's, ``N*(floor(W/2) - 2) ≠ floor(W/2) - 2`` (a recurrent layer's steps), is positive
    where it grows with every name and is positive at the least sizes ``domain`` allows."""
    if normalized(cond) in (sp.Ne(name, 1), sp.Gt(name, 1), sp.Ge(name, 2)):
        return True
    if type(cond) in _FLIPPED and cond.free_symbols == {name}:  # a bound false at 1 only: T**2 >= 2
        difference = cond.lhs - cond.rhs if isinstance(cond, (sp.Gt, sp.Ge)) else cond.rhs - cond.lhs
        return _nondecreasing(difference) and not holds_at(cond, name, 1) and holds_at(cond, name, 2)
    if not isinstance(cond, sp.Ne):
        return False
    coefficient, factors = sp.factor_list(cond.lhs - cond.rhs)
    zero_at_one = (name - 1, sp.Mod(1, name))
    least: dict[sp.Symbol, int] | None = None

    def positive(f: sp.Basic) -> bool:
        nonlocal least
        if f.is_Symbol:
            return bool(f.is_positive)
        if name in f.free_symbols or not _nondecreasing(f):
            return False
        if least is None:
            names = sorted(set().union(*(c.free_symbols for c in domain), f.free_symbols), key=lambda s: s.name)
            least = least_sizes(domain, names)
        return bool(f.xreplace({s: least.get(s, 1) for s in f.free_symbols}) > 0)

    return coefficient != 0 and sum(f in zero_at_one for f, _ in factors) == 1 and \
        all(f in zero_at_one or positive(f) for f, _ in factors)


def _nondecreasing(e: sp.Basic, lower: dict[sp.Symbol, int] | None = None) -> bool:
    """Whether an expression in sizes grows (or stays) as any size grows: names, numbers, their sums, positive
    multiples of a name, of a product of names or of such an expression, positive powers of a name, floors,
    ceilings, maxima and minima of these; with the domain's ``lower`` bounds, also products of such factors that
    are not negative there."""
    if e.is_Symbol or e.is_Number:
        return True
    if isinstance(e, sp.Add):
        return all(_nondecreasing(a, lower) for a in e.args)
    if isinstance(e, sp.Mul):
        coefficient, rest = e.as_coeff_Mul()
        if coefficient <= 0:
            return False
        if not isinstance(rest, sp.Mul):
            return _nondecreasing(rest, lower)
        return all(f.is_Symbol or (lower is not None and _nondecreasing(f, lower) and
                                   bool(f.xreplace({s: lower.get(s, 1) for s in f.free_symbols}) >= 0))
                   for f in rest.args)
    if isinstance(e, (sp.floor, sp.ceiling, sp.Max, sp.Min)):
        return all(_nondecreasing(a, lower) for a in e.args)
    if isinstance(e, sp.Pow):  # a positive power of a name
        return e.base.is_Symbol and bool(e.base.is_positive) and e.exp.is_Integer and e.exp > 0
    return False


def _runs_as_bounds(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> sp.Basic:
    """An or naming the sizes of a name from its least one up (``W = 4 or W = 5 or W = 6 or W = 7 or …`` within
    ``W >= 4``, sizes joined to a domain) with them as one bound, ``W <= 7``."""
    if not isinstance(cond, sp.Or):
        return cond
    args = list(cond.args)
    for name, sizes in _equations_of(cond).items():
        start = lower.get(name, 1)
        if len(sizes) > 1 and sizes == set(range(start, start + len(sizes))):
            args = [c for c in args if not (isinstance(c, sp.Eq) and c.lhs == name)] + [sp.Le(name, max(sizes))]
    return sp.Or(*args, evaluate=False) if len(args) != len(cond.args) else cond


def _described(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> str:
    """A condition as a reader writes it: ``T = 256``, ``H ≠ 3`` (a linear equation in one name solved for it),
    ``W >= 3`` (a threshold above the name's ``lower`` size, ``floor(W/2 - 1/2) + 1 ≠ 1``),
    ``16*(floor(H/4) - 3)*(floor(W/4) - 3) = 400``, ``N ≠ 1 or H ≠ 1``."""
    factors = _factors_above_one(cond, lower)
    if factors is not None:  # the product of sizes above 1 as one of them above 1: H >= 3 or W >= 3
        cond = sp.Or(*(sp.Ne(f, 1) for f in factors), evaluate=False)
    if isinstance(cond, (sp.Or, sp.And)):
        word = " or " if isinstance(cond, sp.Or) else " and "
        return word.join(f"({_described(c, lower)})" if isinstance(c, (sp.Or, sp.And)) else _described(c, lower)
                         for c in cond.args)
    cond = _cancelled(cond, lower)
    bound = _threshold_of(cond, lower)
    if bound is not None:
        return f"{bound[0]} >= {bound[1]}"
    if not isinstance(cond, (sp.Eq, sp.Ne)):
        solved = _solved_bound(cond)  # within an or, as at the top: 8 < 8*N reads N > 1
        return formula_text(cond if solved is None else solved)
    lhs, rhs = _solved(cond) or (cond.lhs, cond.rhs)
    lhs, rhs = _contents_out(lhs), _contents_out(rhs)  # 8*(floor((H - 3)/2) + 1)*…, not (8*floor(…) + 8)*…
    return f"{formula_text(lhs)} {'=' if isinstance(cond, sp.Eq) else '≠'} {formula_text(rhs)}"


def _factors_above_one(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> tuple[sp.Expr, ...] | None:
    """The factors of a product of sizes that a (normalized) condition says is not 1, or above 1, where each is
    on one name, at least 1 from the names' ``lower`` sizes on, and not all are names (``H*W ≠ 1`` reads as it
    is): integers at least 1, the product is above 1 where one of them is."""
    size = _said_not_one(cond)
    if not isinstance(size, sp.Mul):
        return None
    factors = size.args
    if all(f.is_Symbol for f in factors) or not all(len(f.free_symbols) == 1 and _at_least(f, 1, lower)
                                                    for f in factors):
        return None
    return factors


def _cancelled(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> sp.Basic:
    """A comparison of a size with a multiple of it by other sizes, the size divided out where it is at least 1
    from the names' ``lower`` sizes on (``floor(W/4) < floor(H/4)*floor(W/4)``: ``1 < floor(H/4)``); any other
    condition as it is."""
    if not isinstance(cond, (sp.Ne, sp.Lt, sp.Gt)) or not cond.lhs.free_symbols or not _at_least(cond.lhs, 1, lower):
        return cond
    ratio = sp.cancel(cond.rhs / cond.lhs)
    if sp.fraction(ratio)[1] != 1 or len(ratio.free_symbols) >= len(cond.free_symbols):
        return cond
    out = type(cond)(1, ratio)
    return out if isinstance(out, sp.core.relational.Relational) else cond  # true throughout: as written


def threshold(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> tuple[sp.Symbol, int] | None:
    """(name, t) where a condition on one name is false from the name's ``lower`` size up to t and holds from t on
    (``floor(W/2 - 1/2) + 1 ≠ 1``: (W, 3)); None for any other condition."""
    if len(cond.free_symbols) != 1:
        return None
    (name,) = cond.free_symbols
    found = _threshold([cond], name, lower.get(name, 1))
    return None if found is None else (name, found)


def _threshold_of(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> tuple[sp.Symbol, int] | None:
    """:func:`threshold` above the name's least size of a condition other than a linear one (written as a reader
    would already)."""
    if _solved(cond) is not None or _solved_bound(cond) is not None:
        return None
    found = threshold(cond, lower)
    return found if found is not None and found[1] > lower.get(found[0], 1) else None


def reads_plainly(needs: sp.Basic, lower: dict[sp.Symbol, int]) -> bool:
    """Whether what a size joined to a domain needs of the other names is, beyond what their ``lower`` sizes
    settle, thresholds on them (``H >= 3``): the domain then reads ``W >= 3 or H >= 3``, where needs of their own
    would nest alternatives no reader follows."""
    rest = settled_parts(needs, lower)
    return rest is sp.true or all(threshold(c, lower) is not None
                                  for c in (rest.args if isinstance(rest, sp.And) else (rest,)))


def _follows(cond: sp.Basic, fact: sp.Basic, lower: dict[sp.Symbol, int]) -> bool:
    """Whether a condition holds wherever ``fact``, a size P of several names above 1, does and the names are
    at least their ``lower`` bounds: P written as 2 + t (t >= 0) and each name as its bound + n (n >= 0), it
    is decided true, or implied from t = n = 0 on (``N*P ≠ 1``, ``1 mod P ≠ 0``, ``P ≠ 1``)."""
    size = normalized(fact).lhs
    if not isinstance(size, sp.Mul) or not size.free_symbols <= cond.free_symbols:
        return False
    extra = sp.Symbol("t_", integer=True, nonnegative=True)
    there, _ = _shifts(sorted(cond.free_symbols, key=lambda s: s.name), lower)
    try:
        decided = cond.subs(size, extra + 2).xreplace(there)
    except (ZeroDivisionError, TypeError):
        return False
    return decided is sp.true or (decided is not sp.false and _implied(decided, dict.fromkeys(decided.free_symbols, 0)))


def first_size(conditions: Sequence[sp.Basic], name: sp.Symbol, upto: int = _SCAN, start: int = 1) -> int | None:
    """The least size from ``start`` up to ``upto`` where conditions on one name all hold, if there is one."""
    return next((n for n in range(start, upto + 1) if all(holds_at(c, name, n) for c in conditions)), None)


def _threshold(conditions: Sequence[sp.Basic], name: sp.Symbol, start: int = 1) -> int | None:
    """The least size from ``start`` on from which every condition holds for good, if there is one within _SCAN
    sizes of it."""
    first = first_size(conditions, name, start + _SCAN - 1, start)
    return first if first is not None and all(_holds_from(c, name, first) for c in conditions) else None


def _settled(domain: tuple[sp.Basic, ...], names: tuple[sp.Symbol, ...]) -> tuple[tuple, dict[sp.Symbol, int]]:
    """The domain with the parts of its conditions on several names that the names' least sizes settle read as
    true (``H = 4 and (W = 3 or W >= 5)`` within ``W >= 3``: ``H = 4``, a size joined below the least one), and
    the least sizes, again while that settles more (the condition may then be on one name, and raise its least
    size)."""
    lower = least_sizes(domain, names)
    for _ in range(3):
        settled = tuple(c if len(c.free_symbols) < 2 else settled_parts(c, lower) for c in domain)
        if settled == domain:
            break
        domain = tuple(c for c in settled if c is not sp.true)
        lower = least_sizes(domain, names)
    return domain, lower


def settled_parts(cond: sp.Basic, lower: dict[sp.Symbol, int]) -> sp.Basic:
    """A condition with its parts on one name (itself, if it is on one) that hold from the name's least size on
    read as true."""
    if len(cond.free_symbols) == 1:
        (name,) = cond.free_symbols
        if _holds_from(cond, name, lower.get(name, 1)):
            return sp.true
    if isinstance(cond, (sp.And, sp.Or)):
        return cond.func(*(settled_parts(c, lower) for c in cond.args))
    return cond


def joined_below(cond: sp.Basic, name: sp.Symbol, joined: dict[int, sp.Basic], least: int,
                 lower: dict[sp.Symbol, int]) -> sp.Basic:
    """``cond`` or one of the sizes of ``name`` below its ``least`` one joined to a domain, from the least down,
    each with what it needs of the other names (``joined``: size -> condition), ``cond or (W = 2 and X) or …``.
    Where every size ``cond`` leaves out is joined with the same X (``cond`` on the name alone, holding from
    ``least`` on), that is ``cond or X``, which a reader follows (``W >= 3 or H >= 3``). Otherwise sizes join
    while the other names' ``lower`` sizes settle what they need: alternatives with needs of their own would
    nest beyond reading."""
    sizes = {n: x for n, x in joined.items() if not (cond.free_symbols == {name} and holds_at(cond, name, n))}
    needs = set(sizes.values())
    if len(needs) == 1 and cond.free_symbols == {name} and _holds_from(cond, name, least) and \
            all(n in sizes for n in range(1, least) if not holds_at(cond, name, n)):
        return sp.Or(cond, *needs)
    kept = takewhile(lambda size: settled_parts(size[1], lower) is sp.true, sizes.items())
    return sp.Or(cond, *(sp.And(sp.Eq(name, n), x) for n, x in kept))


def least_sizes(conditions: Sequence[sp.Basic], names: Sequence[sp.Symbol]) -> dict[sp.Symbol, int]:
    """Each name's least size: where all its one-name conditions hold for good (H >= 3 and H ≠ 3: 4), else the
    largest threshold among them (an equality or a parity is then kept as written)."""
    return dict(_bounds(tuple(conditions), tuple(names)))


@lru_cache(maxsize=256)  # a profile's table asks it of every cell, with the same domain
def _bounds(conditions: tuple[sp.Basic, ...], names: tuple[sp.Symbol, ...]) -> tuple[tuple[sp.Symbol, int], ...]:
    bounds = {}
    for name in names:
        own = [c for c in conditions if c.free_symbols == {name}]
        joint = _threshold(own, name) if own else None
        bounds[name] = joint if joint is not None else max((_threshold([c], name) or 1 for c in own), default=1)
    return tuple(bounds.items())


def _apart(condition: sp.Basic, size: sp.Basic) -> bool:
    """Whether ``size``, an equation fixing one name (``Eq(H, 2)``), leaves ``condition`` false."""
    return isinstance(size, sp.Eq) and isinstance(size.lhs, sp.Symbol) and size.rhs.is_Integer and \
        condition.xreplace({size.lhs: size.rhs}) is sp.false


def _settle(node: sp.Basic, there: dict) -> sp.Basic:
    """A Piecewise, Min or Max reduced to what the domain leaves of it, in the original names
    (decided with every name at its lower bound plus a non-negative integer)."""
    if isinstance(node, sp.Piecewise):
        kept = []
        for value, condition in node.args:
            decided = condition.xreplace(there)
            if decided is sp.false:
                continue
            kept.append((value, sp.true if decided is sp.true else condition))
            if decided is sp.true:
                break
        if len(kept) > 2 and kept[0][0] == kept[-1][0] and kept[-1][1] is sp.true and \
                all(_apart(kept[0][1], condition) for _, condition in kept[1:-1]):
            kept = kept[1:]  # the form above the small sizes is the form otherwise: said once, last
        return kept[0][0] if len(kept) == 1 and kept[0][1] is sp.true else sp.Piecewise(*kept)
    least = isinstance(node, sp.Min)
    for candidate in node.args:
        if all(((other - candidate) if least else (candidate - other)).xreplace(there).is_nonnegative
               for other in node.args if other is not candidate):
            return candidate
    return node


def canonical(expr: sp.Expr, conditions: Sequence[sp.Basic] = ()) -> sp.Expr:
    """The expression simplified within its domain and collected by monomial of the names, or as the engine
    built it, products of output sizes, where that is shorter: ``432*(floor(H/2 - 3/2) + 1)*(floor(W/2 - 3/2)
    + 1)``, not ``(432*floor(W/2 - 3/2) + 432)*floor(H/2 - 3/2) + 432*floor(W/2 - 3/2) + 432``."""
    return _canonical(expr, tuple(conditions))


@lru_cache(maxsize=4096)  # a table asks it of every cell: a model's repeated blocks have the same totals
def _canonical(expr: sp.Expr, conditions: tuple[sp.Basic, ...]) -> sp.Expr:
    names = sorted(expr.free_symbols, key=lambda s: s.name)
    there, _ = _shifts(names, least_sizes(conditions, names))
    settled = expr.replace(lambda e: isinstance(e, (sp.Piecewise, sp.Min, sp.Max)), lambda e: _settle(e, there))
    settled = _merged_remainders(settled.replace(lambda e: isinstance(e, (sp.floor, sp.ceiling)), _unnested))
    expanded = sp.expand(settled)
    atoms = sorted((a for a in expanded.atoms(sp.Symbol, sp.floor, sp.ceiling, sp.Mod, sp.Min, sp.Max)
                    if a.free_symbols), key=sp.default_sort_key)
    collected = sp.collect(expanded, atoms) if atoms else expanded
    built = _contents_out(settled)
    return built if len(str(built)) <= len(str(collected)) else collected


def _unnested(rounded: sp.Basic) -> sp.Basic:
    """A floor of a floor divided by a whole number as one floor, ``floor(floor((H - 1)/16)/2)`` as
    ``floor((H - 1)/32)``, and ceilings alike: floor((floor(x) + m)/n) = floor((x + m)/n) for any real x and integers
    m and n > 0 (floor(x) + m is floor(x + m), and no integer lies strictly between it and x + m). Successive
    strided layers nest their output sizes so; one floor reads as torch's documentation writes the sizes."""
    kind = type(rounded)
    inner = [term for term in sp.Add.make_args(sp.expand(rounded.args[0])) if term.has(kind)]
    if len(inner) != 1:
        return rounded
    coefficient, nested = inner[0].as_coeff_Mul()
    shift = rounded.args[0] - inner[0]
    if type(nested) is not kind or not (coefficient.is_Rational and coefficient.p == 1 and coefficient.q > 0) or \
            not shift.is_number or not (shift * coefficient.q).is_Integer:
        return rounded
    return kind(coefficient * nested.args[0] + shift)


def _merged_remainders(expr: sp.Expr) -> sp.Expr:
    """A remainder of a floor, Mod(floor(x), n), as floor(x) - n*floor(x/n) where floor(x/n) is in the expression
    already: ``Mod(floor((H - 1)/16), 2) + 3*floor((H - 1)/32) + 1`` reads ``floor((H - 1)/16) + floor((H - 1)/32)
    + 1`` (Mod(a, n) is a - n*floor(a/n) for any real a and integer n > 0; the floor of a floor is one floor)."""
    present = expr.atoms(sp.floor)

    def merged(remainder: sp.Mod) -> sp.Expr:
        dividend, n = remainder.args
        if isinstance(dividend, sp.floor) and n.is_Integer and n > 0:
            quotient = _unnested(sp.floor(dividend / n))
            if quotient in present:
                return dividend - n * quotient
        return remainder

    return expr.replace(lambda e: isinstance(e, sp.Mod), merged)


def _contents_out(expr: sp.Expr) -> sp.Expr:
    """Each product's factors with their integer contents taken out into its coefficient, in each term of a
    sum: ``48*(3*a + 3)*(3*b + 3)`` is ``432*(a + 1)*(b + 1)``."""
    if isinstance(expr, sp.Add):
        return sp.Add(*map(_contents_out, expr.args))
    if not isinstance(expr, sp.Mul):
        return expr
    coefficient, factors = sp.Integer(1), []
    for factor in expr.args:
        content, rest = factor.primitive() if isinstance(factor, sp.Add) else (sp.Integer(1), factor)
        coefficient *= content
        factors.append(rest)
    return sp.Mul(coefficient, *factors)


@dataclass(frozen=True)
class Formula:
    """A count as an exact formula in size names, and the conditions on the sizes under which it holds."""

    expr: sp.Expr
    domain: tuple[sp.Basic, ...] = ()
    what: str = "total"
    unit: str = "FLOPs"

    def __post_init__(self) -> None:
        # A count that does not depend on the sizes arrives as a plain int (a sum of exact ints).
        object.__setattr__(self, "expr", sp.sympify(self.expr))

    @property
    def names(self) -> tuple[sp.Symbol, ...]:
        found = set(self.expr.free_symbols)
        for cond in self.domain:
            found |= cond.free_symbols
        return tuple(sorted(found, key=lambda s: s.name))

    def readable(self) -> sp.Expr:
        return canonical(self.expr, self.domain)

    def conditions(self) -> list[str]:
        """The domain in words: one-name conditions as thresholds (``H >= 29``) or, where an equation fixes the
        name, as that size alone (``H = 12``); others as written."""
        domain, lower = _settled(tuple(self.domain), self.names)
        # the domain holds at the hints, so a name's other conditions hold where an equation fixes it
        fixed = dict(found for c in domain if isinstance(c, sp.Eq) and (found := _solved(c)))
        out = [f"{s.name} >= {b}" for s, b in lower.items() if b > 1 and s not in fixed]
        # a size derived from several names above 1 (the positions of a feature map, as tokens): what follows
        # from it goes unsaid
        above = [c for c in domain if len(c.free_symbols) > 1 and isinstance(form := normalized(c), (sp.Gt, sp.Ge))
                 and form in (sp.Gt(form.lhs, 1), sp.Ge(form.lhs, 2))]
        for cond in domain:
            name = next(iter(cond.free_symbols)) if len(cond.free_symbols) == 1 else None
            if name in fixed:
                out.append(f"{name.name} = {fixed[name]}")
                continue
            if name is not None:
                start = lower.get(name, 1)
                if _holds_from(cond, name, start):  # implied by the name's threshold (or true at every size)
                    continue
                residue = _residue(cond, name, start)
                if residue is not None:  # a parity, as torch writes it: H >= 2*floor(H/2 - 1/2) + 2
                    out.append(_residue_text(name, *residue))
                    continue
            if _decided(cond, lower) is not sp.true and not _implied(cond, lower) and \
                    not any(_follows(cond, fact, lower) for fact in above if fact is not cond):
                form = normalized(cond)
                if form is not sp.true:  # true at every size, written otherwise: 8*N*W >= 8*N
                    out.append(_described(_runs_as_bounds(form, lower), lower))
        return list(dict.fromkeys(out))

    def __str__(self) -> str:
        domain = self.conditions()
        return formula_text(self.readable()) + (f"   (for {', '.join(domain)})" if domain else "")

    def latex(self) -> str:
        from .latex import to_latex
        return to_latex(self.readable())

    def check(self, sizes: dict[str, int]) -> dict[sp.Symbol, int]:
        """The sizes as a substitution, refused with SymconvError outside the domain."""
        values = {}
        for s in self.names:
            if s.name not in sizes:
                raise SymconvError(f"the formula needs {s.name}; sizes given: {', '.join(sizes) or 'none'}")
            values[s] = positive_size(s.name, sizes[s.name])
        for cond in self.domain:
            if not _holds(cond, values):
                shown = ", ".join(f"{k.name}={v}" for k, v in values.items())
                raise SymconvError(f"{shown} is outside the domain of the formula: {formula_text(cond)} does not "
                                   f"hold (domain: {', '.join(self.conditions())})")
        return values

    def __call__(self, **sizes: int) -> int:
        """The exact count at given sizes (keywords by name)."""
        value = self.expr.xreplace(self.check(sizes))
        return int(value)

    def lambdify(self) -> Callable[..., Any]:
        """An exact numpy function of the names (keywords), refusing sizes outside the domain."""
        from ..numeric.compile import compile_expr, lambdify_integer  # numpy, loaded only when asked for
        names = self.names
        conditions = [(c, lambdify_integer(list(names), c)) for c in self.domain]

        def validator(cols):
            import numpy as np
            args = [cols[s.name] for s in names]
            for s, a in zip(names, args):
                if (a < 1).any():
                    i = int(np.flatnonzero(a < 1)[0])
                    raise SymconvError(f"{s.name}={a[i]} must be a positive integer (configuration {i})")
            for cond, fn in conditions:
                bad = np.flatnonzero(~np.broadcast_to(np.asarray(fn(*args), dtype=bool), args[0].shape))
                if bad.size:
                    i = int(bad[0])
                    shown = ", ".join(f"{s.name}={a[i]}" for s, a in zip(names, args))
                    raise SymconvError(f"{shown} is outside the domain: {formula_text(cond)} does not hold "
                                       f"(configuration {i})")

        return compile_expr(self.expr, names, validator)
