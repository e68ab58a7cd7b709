"""Exact numeric evaluation of symbolic quantities with numpy.

:func:`compile_expr` turns a resolved SymPy expression into a vectorised function
that returns integers, never floats:

* an integer printer writes every division as floor division of the whole
  numerator (``C_in*C_out//groups``), ``floor``/``ceiling`` likewise, ``Mod`` as ``%``;
* each ``Piecewise`` is evaluated branch by branch on the rows still undecided,
  so the exact counters run only where no closed form holds;
* results are int64 while they fit; a float64 shadow run spots int64 overflow,
  and those rows are recomputed with Python integers (an object array).

The exact counters of :mod:`symconv.counting` are vectorised here over arrays of
configurations, O(k log k) per axis and row, independent of the input size; where
the compiled module is built they run row by row in C instead (``count_rows``).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from . import overlap

INT64_SAFE = 2.0 ** 62  # past this a float64 shadow cannot vouch for an int64 result
PIECE_SAFE = 2.0 ** 31  # inputs below this keep every per-axis piece (at most a product of two) in int64


# --- vectorised exact counters ------------------------------------------------------------

def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -((-a) // b)


def lattice_count(q, n, k, s, d) -> np.ndarray:
    """Vectorised :func:`symconv.counting.lattice_count`: a loop over taps, not over n."""
    q, n, k, s, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.int64) for v in (q, n, k, s, d)))
    total = np.zeros(q.shape, dtype=np.int64)
    for t in range(int(k.max(initial=0))):
        room = q - t * d
        live = (t < k) & (room > 0)
        total += np.where(live, np.minimum(n, _ceil_div(np.maximum(room, 1), s)), 0)
    return total


def progression_union(bases: np.ndarray, step: np.ndarray, counts: np.ndarray, window: np.ndarray,
                      live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`symconv.counting.progression_union` over rows.

    ``bases``, ``counts`` and ``live`` are (rows, K); ``step`` and ``window`` are
    (rows, 1). Returns (total in window, distinct in window) per row.
    """
    lo = np.maximum(0, _ceil_div(-bases, step))
    hi = np.minimum(counts, (window - 1 - bases) // step + 1)
    hi = np.where(live, np.maximum(lo, hi), lo)
    residue = bases % step
    unit = (bases - residue) // step
    start, end = unit + lo, unit + hi
    total = (end - start).sum(axis=1)
    # Sort by (residue, start); offsetting each residue class by a span larger than any
    # interval lets one running maximum merge the intervals of every class at once.
    base = start.min(axis=1, keepdims=True)
    span = (end - base).max(axis=1, keepdims=True) + 1
    key_start = residue * span + (start - base)
    key_end = residue * span + np.where(end > start, end - base, start - base)
    order = np.argsort(key_start, axis=1, kind="stable")
    key_start = np.take_along_axis(key_start, order, axis=1)
    key_end = np.take_along_axis(key_end, order, axis=1)
    reach = np.maximum.accumulate(key_end, axis=1)
    before = np.concatenate([np.full_like(reach[:, :1], np.iinfo(np.int64).min), reach[:, :-1]], axis=1)
    distinct = np.maximum(0, key_end - np.maximum(key_start, before)).sum(axis=1)
    return total, distinct


def _taps(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(k.max(initial=1)), dtype=np.int64)[None, :]
    return t, t < k[:, None]


def transposed_coverage(L, k, s, p, d, L_out) -> np.ndarray:
    """Vectorised Z of a transposed axis (see :class:`symconv.overlap.TransposedCoverage`)."""
    L, k, s, p, d, L_out = (np.ravel(v) for v in np.broadcast_arrays(
        *(np.asarray(v, dtype=np.int64) for v in (L, k, s, p, d, L_out))))
    t, live = _taps(k)
    bases = t * d[:, None] - p[:, None]
    counts = np.broadcast_to(L[:, None], bases.shape)
    return progression_union(bases, s[:, None], counts, L_out[:, None], live)[1]


def plain_coverage(L, k, s, p, d, L_out) -> np.ndarray:
    """Vectorised Z of a plain axis (see :class:`symconv.overlap.PlainCoverage`)."""
    L, k, s, p, d, L_out = (np.ravel(v) for v in np.broadcast_arrays(
        *(np.asarray(v, dtype=np.int64) for v in (L, k, s, p, d, L_out))))
    t, live = _taps(k)
    lows = _ceil_div(p[:, None] - t * d[:, None], s[:, None])
    counts = np.maximum(0, (L[:, None] - 1 + p[:, None] - t * d[:, None]) // s[:, None] - lows + 1)
    one = np.ones_like(L_out[:, None])
    return progression_union(lows, one, counts, L_out[:, None], live)[1]


def _compiled_rows(name: str, vector: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A counter row by row in C (symconv/_native.c) where it fits in int64; the NumPy one elsewhere."""
    try:
        from ._native import count_rows
    except ImportError:  # no C compiler at install: NumPy throughout
        return vector

    def run(*args: np.ndarray) -> np.ndarray:
        cols = [np.ascontiguousarray(np.ravel(a), dtype=np.int64) for a in np.broadcast_arrays(*args)]
        out = np.empty(cols[0].size, dtype=np.int64)
        failed = np.zeros(cols[0].size, dtype=bool)
        count_rows(name, out, failed, *cols)
        if failed.any():
            out[failed] = vector(*(c[failed] for c in cols))
        return out

    return run


_VECTOR_COUNTERS: dict[type, Callable[..., np.ndarray]] = {
    overlap.LatticeCount: _compiled_rows("lattice_count", lattice_count),
    overlap.TransposedCoverage: _compiled_rows("transposed_coverage", transposed_coverage),
    overlap.PlainCoverage: _compiled_rows("plain_coverage", plain_coverage),
    overlap.Gcd: np.gcd,
}


class _Int64Overflow(ArithmeticError):
    """A counter's exact value does not fit int64: the caller redoes every row with Python ints."""


def _counter(cls: type) -> Callable[..., np.ndarray]:
    """The counter for any dtype: int64 rows vectorised, Python-int rows one by one, floats cast.

    The vectorised counters multiply at most two arguments, so rows whose arguments
    all lie below PIECE_SAFE cannot overflow int64; other rows are counted in Python.
    """
    vector, scalar = _VECTOR_COUNTERS[cls], cls._count

    def run(*args: np.ndarray) -> np.ndarray:
        arrays = np.broadcast_arrays(*(np.asarray(a) for a in args))
        dtype, shape = arrays[0].dtype, arrays[0].shape
        if dtype.kind == "O":
            out = [scalar(*(int(v) for v in row)) for row in zip(*(a.ravel() for a in arrays))]
            return np.array(out, dtype=object).reshape(shape)
        ints = [a.astype(np.int64).ravel() for a in arrays]
        big = np.zeros(ints[0].shape, dtype=bool)
        for a in ints:
            big |= (a >= PIECE_SAFE) | (a <= -PIECE_SAFE)
        if not big.any():
            return np.asarray(vector(*ints), dtype=np.int64).reshape(shape).astype(dtype)
        result = np.empty(ints[0].shape, dtype=np.int64)
        small = ~big
        if small.any():
            result[small] = np.asarray(vector(*(a[small] for a in ints)), dtype=np.int64).ravel()
        exact = [scalar(*(int(v) for v in row)) for row in zip(*(a[big] for a in ints))]
        if any(not -(2 ** 63) <= v < 2 ** 63 for v in exact):
            raise _Int64Overflow(cls.__name__)
        result[big] = exact
        return result.reshape(shape).astype(dtype)

    return run


# --- printing -------------------------------------------------------------------------------

class IntegerDivision:
    """Printer rules under which every division is an exact floor division of integers.

    The target language's spelling of floor division, ceiling division and
    modulo are hooks, so the Python and C printers share the rules.
    """

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

    def _print_Function(self, expr: sp.Expr) -> str:
        name = type(expr).__name__
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"


class IntegerPrinter(IntegerDivision, NumPyPrinter):
    """numpy code: exact floor divisions, element-wise min/max."""

    def _print_Min(self, expr: sp.Expr) -> str:
        return self._fold("numpy.minimum", expr.args)

    def _print_Max(self, expr: sp.Expr) -> str:
        return self._fold("numpy.maximum", expr.args)

    def _fold(self, fn: str, args: Sequence[sp.Expr]) -> str:
        code = self._print(args[0])
        for a in args[1:]:
            code = f"{fn}({code}, {self._print(a)})"
        return code


class ScalarPrinter(IntegerDivision, PythonCodePrinter):
    """Plain Python on ints: exact at any size, Piecewise as lazy conditional expressions."""

    def _print_Min(self, expr: sp.Expr) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Max(self, expr: sp.Expr) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"


def _namespace() -> dict[str, Any]:
    return {"numpy": np, **{cls.__name__: _counter(cls) for cls in _VECTOR_COUNTERS}}


def _lambdify(symbols: Sequence[sp.Symbol], expr: sp.Basic) -> Callable[..., np.ndarray]:
    return sp.lambdify(list(symbols), expr, modules=[_namespace()], printer=IntegerPrinter,
                       dummify=False, docstring_limit=0)


# --- compiled expressions ---------------------------------------------------------------------

class _Compiled:
    """An expression compiled over only the inputs it uses (their positions kept)."""

    def __init__(self, expr: sp.Basic, inputs: Sequence[sp.Symbol]) -> None:
        used = [i for i, s in enumerate(inputs) if s in expr.free_symbols]
        self.columns = used
        self.fn = _lambdify([inputs[i] for i in used], expr)

    def __call__(self, env: Sequence[np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
        if rows is None:
            return self.fn(*(env[i] for i in self.columns))
        return self.fn(*(env[i][rows] for i in self.columns))


class _Piece:
    """One extracted Piecewise: branches compiled over the args and earlier pieces."""

    def __init__(self, symbol: sp.Symbol, pw: sp.Piecewise, inputs: Sequence[sp.Symbol]) -> None:
        self.symbol = symbol
        self.branches = [(_Compiled(e, inputs), _Compiled(c, inputs)) for e, c in pw.args]

    def evaluate(self, env: list[np.ndarray], n: int, dtype: np.dtype) -> np.ndarray:
        """Each branch on the rows no earlier condition took: counters run only where needed."""
        out = np.zeros(n, dtype=dtype)
        todo = None  # None: every row, without copying columns
        for value, condition in self.branches:
            size = n if todo is None else todo.size
            if size == 0:
                break
            hit = np.broadcast_to(np.asarray(condition(env, todo), dtype=bool), (size,))
            if not hit.any():
                continue
            rows = np.flatnonzero(hit) if todo is None else todo[hit]
            out[rows] = np.broadcast_to(value(env, rows), rows.shape)
            todo = np.flatnonzero(~hit) if todo is None else todo[~hit]
        return out


class NumericFunction:
    """An exact, vectorised function of named parameters (see :func:`compile_expr`)."""

    def __init__(self, expr: sp.Expr, params: Sequence[sp.Symbol],
                 validator: Callable[[dict[str, np.ndarray]], None] | None = None) -> None:
        self.expr = expr
        self.params = tuple(params)
        self.names = tuple(p.name for p in self.params)
        self.validator = validator

    @cached_property
    def _vector(self) -> tuple[list[_Piece], Callable[..., np.ndarray]]:
        """The numpy path, compiled on first use: Piecewise nodes extracted, each branch compiled."""
        pieces: list[_Piece] = []
        seen: dict[sp.Piecewise, sp.Symbol] = {}

        def extract(node: sp.Basic) -> sp.Basic:
            if not node.has(sp.Piecewise):
                return node  # rebuilding would only re-evaluate it
            if not isinstance(node, sp.Piecewise):
                args = tuple(extract(a) for a in node.args)
                return node.func(*args) if args != node.args else node
            node = sp.Piecewise(*((extract(e), extract(c)) for e, c in node.args), evaluate=False)
            if node not in seen:
                symbol = sp.Symbol(f"_piece{len(seen)}")
                inputs = self.params + tuple(p.symbol for p in pieces)
                pieces.append(_Piece(symbol, node, inputs))
                seen[node] = symbol
            return seen[node]

        top = extract(sp.sympify(self.expr))
        return pieces, _lambdify(self.params + tuple(p.symbol for p in pieces), top)

    def __repr__(self) -> str:
        return f"NumericFunction({', '.join(self.names)})"

    def _arguments(self, args: tuple, kwargs: dict) -> list[Any]:
        if len(args) > len(self.names):
            raise TypeError(f"expected at most {len(self.names)} positional arguments, got {len(args)}")
        values = dict(zip(self.names, args))
        for name, value in kwargs.items():
            if name not in self.names:
                raise TypeError(f"unexpected parameter {name!r}; parameters are {', '.join(self.names)}")
            values[name] = value
        missing = [n for n in self.names if n not in values]
        if missing:
            raise TypeError(f"missing parameters: {', '.join(missing)}")
        return [values[n] for n in self.names]

    @cached_property
    def scalar(self) -> Callable[..., int]:
        """The same function on Python ints, positional in ``names`` order: exact and fastest per call."""
        counters = {cls.__name__: cls._count for cls in _VECTOR_COUNTERS}
        return sp.lambdify(list(self.params), self.expr, modules=[counters, "math"], printer=ScalarPrinter,
                           dummify=False, docstring_limit=0)

    def __call__(self, *args: Any, **kwargs: Any) -> int | np.ndarray:
        """Evaluate on scalars or broadcastable arrays; a scalar call returns a Python int."""
        raw = self._arguments(args, kwargs)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in raw):
            if self.validator:
                self.validator({n: np.atleast_1d(int(v)) for n, v in zip(self.names, raw)})
            return int(self.scalar(*(int(v) for v in raw)))
        scalar = all(np.ndim(v) == 0 for v in raw)
        arrays = [np.atleast_1d(np.asarray(v)) for v in raw]
        for name, a in zip(self.names, arrays):
            if a.dtype.kind not in "iub" and not (a.dtype == object or np.all(np.mod(a, 1) == 0)):
                raise ValueError(f"{name} must hold integers, got {a.dtype} values")
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        flat = [np.broadcast_to(a, shape).ravel() for a in arrays]
        if self.validator:
            self.validator(dict(zip(self.names, flat)))
        result = self._evaluate_exact(flat).reshape(shape)
        return int(result.ravel()[0]) if scalar else result

    def _evaluate_exact(self, flat: list[np.ndarray]) -> np.ndarray:
        if any(a.dtype == object or (a.size and np.abs(a).max() >= INT64_SAFE) for a in flat):
            return self._evaluate([a.astype(object) for a in flat])[0]
        try:
            return self._evaluate_int64(flat)
        except _Int64Overflow:
            return self._evaluate([a.astype(object) for a in flat])[0]

    def _evaluate_int64(self, flat: list[np.ndarray]) -> np.ndarray:
        ints, env = self._evaluate([a.astype(np.int64) for a in flat])
        with np.errstate(all="ignore"):
            if all(not a.size or np.abs(a).max() < PIECE_SAFE for a in flat):
                # Pieces are per-axis counts (products of at most two inputs): below PIECE_SAFE
                # they cannot overflow, so only the top level needs a float64 shadow.
                shadow = self._top_float(env)
            else:
                shadow = self._evaluate([a.astype(np.float64) for a in flat])[0]
        bad = ~(np.abs(shadow) < INT64_SAFE) | (np.abs(shadow - ints) >= 2.0 ** 32)
        if not bad.any():
            return ints
        exact = ints.astype(object)
        exact[bad] = self._evaluate([a[bad].astype(object) for a in flat])[0]
        return exact

    def _top_float(self, env: list[np.ndarray]) -> np.ndarray:
        top = self._vector[1]
        return np.broadcast_to(top(*(e.astype(np.float64) for e in env)), env[0].shape)

    def _evaluate(self, columns: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The result in the columns' dtype, and the environment (inputs, then pieces)."""
        pieces, top = self._vector
        n = len(columns[0])
        env = list(columns)
        for piece in pieces:
            env.append(piece.evaluate(env, n, columns[0].dtype))
        return np.broadcast_to(top(*env), (n,)).astype(columns[0].dtype), env


def compile_expr(expr: sp.Expr, params: Sequence[sp.Symbol],
                 validator: Callable[[dict[str, np.ndarray]], None] | None = None) -> NumericFunction:
    """Compile a resolved quantity into an exact vectorised function of ``params``."""
    free = sp.sympify(expr).free_symbols - set(params)
    if free:
        names = ", ".join(sorted(s.name for s in free))
        raise ValueError(f"expression has symbols that are not parameters: {names}")
    return NumericFunction(expr, params, validator)


@lru_cache(maxsize=None)
def output_size_functions(model) -> tuple[NumericFunction, ...]:
    """Each axis' output size as a function of that axis' parameters, compiled once per model."""
    return tuple(compile_expr(model.output_size(a.index), model.axis_parameters(a.index)) for a in model.axes)


def output_sizes(model, cols: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Each axis' output size on columns of layer parameters."""
    return [np.asarray(size(**{s.name: cols[s.name] for s in model.axis_parameters(a.index)}))
            for a, size in zip(model.axes, output_size_functions(model))]


def layer_validator(model) -> Callable[[dict[str, np.ndarray]], None]:
    """torch's rules on columns of layer parameters: ValueError naming the parameter and the first bad row."""

    def first(mask: np.ndarray) -> int:
        return int(np.flatnonzero(mask)[0])

    def check(cols: dict[str, np.ndarray]) -> None:
        def fail(mask: np.ndarray, message: str) -> None:
            if mask.any():
                i = first(mask)
                raise ValueError(message.format(**{k: v[i] for k, v in cols.items()}) + f" (configuration {i})")

        for name, low in [(s.name, 0 if s.is_nonnegative and not s.is_positive else 1) for s in model.parameters()]:
            fail(cols[name] < low, f"{name}={{{name}}} must be >= {low}")
        fail((cols["C_in"] % cols["groups"] != 0) | (cols["C_out"] % cols["groups"] != 0),
             "groups={groups} must divide in_channels={C_in} and out_channels={C_out}")
        for a in model.axes:
            if model.transposed:
                op, s, d = cols[a.op.name], cols[a.s.name], cols[a.d.name]
                fail((op >= s) & (op >= d), f"{a.op.name}={{{a.op.name}}} must be smaller than "
                                            f"{a.s.name}={{{a.s.name}}} or {a.d.name}={{{a.d.name}}}")
        for a, values in zip(model.axes, output_sizes(model, cols)):
            fail(values < 1, f"output size < 1 on axis {a.index} ({a.L.name}={{{a.L.name}}})")
    return check


def evaluate_on_columns(model, expr: sp.Expr, cols: dict[str, np.ndarray]) -> np.ndarray:
    """A quantity on columns of layer parameters, exactly; output sizes are computed first.

    Substituting the output-size formula into large hybrids makes SymPy re-simplify
    every condition; computing the sizes as columns gives the same numbers at a
    fraction of the cost.
    """
    columns = dict(cols)
    params = list(model.parameters())
    for a, values in zip(model.axes, output_sizes(model, cols)):
        columns[a.L_out.name] = values
        params.append(a.L_out)
    return compile_expr(model.resolve(expr, through="counts"), params)(**{p.name: columns[p.name] for p in params})
