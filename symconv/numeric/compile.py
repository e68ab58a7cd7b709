"""Exact numeric evaluation of symbolic quantities with numpy.

:func:`compile_expr` turns a resolved SymPy expression into a vectorised function
that returns integers, never floats:

* an integer printer writes every division as floor division of the whole
  numerator (``C_in*C_out//groups``), ``floor``/``ceiling`` likewise, ``Mod`` as ``%``;
* each ``Piecewise`` is evaluated branch by branch on the rows still undecided,
  so the exact counters run only where no closed form holds;
* results are int64 while they fit; a float64 shadow run spots int64 overflow,
  and those rows are recomputed with Python integers (an object array).

The exact counters print themselves as calls of :mod:`.vector_counters`, which runs
them row by row in C where the compiled module is built.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ..core.errors import SymconvError
from ..core.printing import IntegerDivision, ScalarPrinter
from .vector_counters import PIECE_SAFE, Int64Overflow

INT64_SAFE = 2.0 ** 62  # past this a float64 shadow cannot vouch for an int64 result


# --- printing -------------------------------------------------------------------------------

class IntegerPrinter(IntegerDivision, NumPyPrinter):
    """numpy code: exact floor divisions, element-wise min/max; other modules' names print bare."""

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__({"fully_qualified_modules": False, **(settings or {})})

    def _print_Min(self, expr: sp.Expr) -> str:
        return self._fold("numpy.minimum", expr.args)

    def _print_Max(self, expr: sp.Expr) -> str:
        return self._fold("numpy.maximum", expr.args)

    def _fold(self, fn: str, args: Sequence[sp.Expr]) -> str:
        code = self._print(args[0])
        for a in args[1:]:
            code = f"{fn}({code}, {self._print(a)})"
        return code


def lambdify_integer(symbols: Sequence[sp.Symbol], expr: sp.Basic) -> Callable[..., np.ndarray]:
    """numpy code of an expression, every division a floor division (no Piecewise handling, no overflow check)."""
    # The counters print their own names and imports (IntegerPrinter.module_imports).
    return sp.lambdify(list(symbols), expr, modules=[{"numpy": np}], printer=IntegerPrinter(),
                       dummify=False, docstring_limit=0)


# --- compiled expressions ---------------------------------------------------------------------

class _Compiled:
    """An expression compiled over only the inputs it uses (their positions kept)."""

    def __init__(self, expr: sp.Basic, inputs: Sequence[sp.Symbol]) -> None:
        used = [i for i, s in enumerate(inputs) if s in expr.free_symbols]
        self.columns = used
        self.fn = lambdify_integer([inputs[i] for i in used], expr)

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


#: rows(out, failed, *int64 columns) -> None, or the first row torch rejects (see ``_native.evaluate_rows``)
RowKernel = Callable[..., "int | None"]


class NumericFunction:
    """An exact, vectorised function of named parameters (see :func:`compile_expr`).

    ``kernel``, where given, is the same quantity compiled to C (checked int64, torch's
    rules included): arrays then run through it row by row, and only the rows past
    int64 take the numpy path with Python ints.
    """

    def __init__(self, expr: sp.Expr, params: Sequence[sp.Symbol],
                 validator: Callable[[dict[str, np.ndarray]], None] | None = None,
                 kernel: RowKernel | None = None) -> None:
        self.expr = expr
        self.params = tuple(params)
        self.names = tuple(p.name for p in self.params)
        self.validator = validator
        self.kernel = kernel

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
        return pieces, lambdify_integer(self.params + tuple(p.symbol for p in pieces), top)

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
        return sp.lambdify(list(self.params), self.expr, modules=["math"], printer=ScalarPrinter(),
                           dummify=False, docstring_limit=0)

    def __call__(self, *args: Any, **kwargs: Any) -> int | np.ndarray:
        """Evaluate on scalars or broadcastable arrays; a scalar call returns a Python int."""
        raw = self._arguments(args, kwargs)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in raw):
            if self.validator:
                self.validator({n: np.atleast_1d(int(v)) for n, v in zip(self.names, raw)})
            return int(self.scalar(*(int(v) for v in raw)))
        scalar = all(np.ndim(v) == 0 for v in raw)
        arrays = [_integers(name, v) for name, v in zip(self.names, raw)]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        flat = [np.broadcast_to(a, shape).ravel() for a in arrays]
        if self.kernel is not None and all(a.dtype == np.int64 for a in flat):
            result = self._evaluate_kernel(flat)
        else:
            if self.validator:
                self.validator(dict(zip(self.names, flat)))
            result = self._evaluate_exact(flat)
        result = result.reshape(shape)
        return int(result.ravel()[0]) if scalar else result

    def _evaluate_kernel(self, flat: list[np.ndarray]) -> np.ndarray:
        """The C kernel on every row; torch's rejections named by the validator, rows past int64 in Python ints."""
        out, failed = np.empty(flat[0].size, dtype=np.int64), np.zeros(flat[0].size, dtype=bool)
        rejected = self.kernel(out, failed, *flat)
        if rejected is not None:
            self.validator(dict(zip(self.names, flat)))  # raises, naming the rule and the first row
            raise AssertionError(f"the compiled rules reject row {rejected}, the validator accepts it")
        if not failed.any():
            return out
        exact = out.astype(object)
        exact[failed] = self._evaluate([a[failed].astype(object) for a in flat])[0]
        return exact

    def _evaluate_exact(self, flat: list[np.ndarray]) -> np.ndarray:
        if any(a.dtype == object or (a.size and np.abs(a).max() >= INT64_SAFE) for a in flat):
            return self._evaluate([a.astype(object) for a in flat])[0]
        try:
            return self._evaluate_int64(flat)
        except Int64Overflow:
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


def _integers(name: str, value: Any) -> np.ndarray:
    """A parameter's values as an integer array, exactly: int64 where they fit, Python ints past it.

    Whole-number floats convert exactly (1e20 is 10**20); bools and fractions are refused.
    """
    a = np.atleast_1d(np.asarray(value))
    kind = a.dtype.kind
    if kind == "i":
        return a.astype(np.int64, copy=False)
    if kind == "O":
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in a.flat):
            raise SymconvError(f"{name} must hold integers, got {_first_bad(a)!r}")
        return a
    if kind == "u":
        return a.astype(np.int64) if not a.size or a.max() < 2 ** 63 else a.astype(object)
    if kind == "f":
        finite = np.isfinite(a)
        if not finite.all() or np.any(np.mod(a, 1) != 0):
            bad = a[~finite | (np.mod(np.where(finite, a, 0), 1) != 0)].flat[0]
            raise SymconvError(f"{name} must hold integers, got {bad.item()!r}")
        if not a.size or np.abs(a).max() < 2.0 ** 63:
            return a.astype(np.int64)
        return np.array([int(v) for v in a.flat], dtype=object).reshape(a.shape)
    raise SymconvError(f"{name} must hold integers, got {a.dtype} values"
                       + (" (bools are not sizes)" if kind == "b" else ""))


def _first_bad(a: np.ndarray) -> Any:
    return next(v for v in a.flat if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)))


def compile_expr(expr: sp.Expr, params: Sequence[sp.Symbol],
                 validator: Callable[[dict[str, np.ndarray]], None] | None = None,
                 kernel: RowKernel | None = None) -> NumericFunction:
    """Compile a resolved quantity into an exact vectorised function of ``params``."""
    free = sp.sympify(expr).free_symbols - set(params)
    if free:
        names = ", ".join(sorted(s.name for s in free))
        raise SymconvError(f"expression has symbols that are not parameters: {names}")
    if kernel is not None and validator is None:
        raise ValueError("a compiled kernel needs the validator that names the rows it rejects")
    return NumericFunction(expr, params, validator, kernel)


@lru_cache(maxsize=None)
def output_size_functions(model) -> tuple[NumericFunction, ...]:
    """Each axis' output size as a function of that axis' parameters, compiled once per model."""
    return tuple(compile_expr(model.output_size(a.index), model.axis_parameters(a.index)) for a in model.axes)


def output_sizes(model, cols: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Each axis' output size on columns of layer parameters."""
    return [np.asarray(size(**{s.name: cols[s.name] for s in model.axis_parameters(a.index)}))
            for a, size in zip(model.axes, output_size_functions(model))]


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
