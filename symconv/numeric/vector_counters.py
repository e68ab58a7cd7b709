"""The exact counters of :mod:`symconv.core.counters`, vectorised over rows of configurations.

The same O(log) algorithms as the Python counters (floor sums, the gcd structure
of i·s + t·d), with every row advancing together: the loops run O(log) times, not
once per row. Each counter runs row by row in C (``count_rows`` of ``_native.c``)
where the compiled module is built; elsewhere in numpy int64 for rows whose
arguments are below ``VECTOR_SAFE`` (every intermediate then fits), and in Python
ints for the other rows. The public names here are the ones the core's counter
functions print in numpy code.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..core import counters

PIECE_SAFE = 2.0 ** 31   # inputs below this keep every per-axis piece (at most a product of two) in int64
VECTOR_SAFE = 2 ** 20    # arguments below this keep every intermediate of the numpy counters in int64


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -((-a) // b)


def floor_sum_int64(n, m, a, b) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.floor_sum`: every row's Euclid steps at once."""
    n, m, a, b = (np.array(v, dtype=np.int64) for v in np.broadcast_arrays(n, m, a, b))
    total = np.zeros(n.shape, dtype=np.int64)
    live = n > 0
    while live.any():
        q = np.where(live, a // m, 0)
        total += np.where(live, n * (n - 1) // 2 * q, 0)
        a = np.where(live, a - q * m, a)
        q = np.where(live, b // m, 0)
        total += np.where(live, n * q, 0)
        b = np.where(live, b - q * m, b)
        top = a * n + b
        live &= top >= m
        n, b, m, a = (np.where(live, new, old) for new, old in ((top // m, n), (top % m, b), (a, m), (m, a)))
        live &= n > 0
    return total


def lattice_count_int64(q, n, k, s, d) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.lattice_count` in int64."""
    q, n, k, s, d = (np.asarray(v, dtype=np.int64) for v in np.broadcast_arrays(q, n, k, s, d))
    empty = (q <= 0) | (n <= 0) | (k <= 0)
    q = np.where(empty, 1, q)
    taps = np.minimum(k, _ceil_div(q, d))
    full = np.minimum(taps, np.maximum(0, _ceil_div(q - (n - 1) * s, d)))
    rest = floor_sum_int64(taps - full, s, d, q - (taps - 1) * d + s - 1)
    return np.where(empty, 0, full * n + rest)


def _rectangle(q0, q1, i0, n, t0, k, s, d) -> np.ndarray:
    shift = i0 * s + t0 * d
    return lattice_count_int64(q1 - shift, n, k, s, d) - lattice_count_int64(q0 - shift, n, k, s, d)


def transposed_coverage_int64(L, k, s, p, d, L_out) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.transposed_coverage` in int64 (two rectangles of pairs)."""
    L, k, s, p, d, L_out = (np.asarray(v, dtype=np.int64) for v in np.broadcast_arrays(L, k, s, p, d, L_out))
    g = np.gcd(s, d)
    s1, d1 = s // g, d // g
    first = _rectangle(p, p + L_out, 0, L, 0, np.minimum(s1, k), s, d)
    low = np.maximum(0, L - d1)
    second = _rectangle(p, p + L_out, low, L - low, s1, np.maximum(0, k - s1), s, d)
    valid = (L > 0) & (k > 0) & (L_out > 0)
    return np.where(valid, first + second, 0)


def plain_coverage_int64(L, k, s, p, d, L_out) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.plain_coverage` in int64."""
    L, k, s, p, d, L_out = (np.asarray(v, dtype=np.int64) for v in np.broadcast_arrays(L, k, s, p, d, L_out))
    inside = np.maximum(0, np.minimum(L_out - 1, (L - 1 + p) // s) - np.maximum(0, _ceil_div(p, s)) + 1)
    low = np.maximum(0, _ceil_div(p - (k - 1) * d, s))
    count = np.maximum(0, np.minimum(L_out - 1, _ceil_div(p, s) - 1) - low + 1)
    start = low * s - p
    sparse = floor_sum_int64(np.where(L < d, count, 0), d, s, start) - \
        floor_sum_int64(np.where(L < d, count, 0), d, s, start - L)
    edge = np.where(L >= d, count, sparse)
    valid = (L > 0) & (k > 0) & (L_out > 0)
    return np.where(valid, inside + edge, 0)


def tap_coverage_int64(n, k, s, p, d, W) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.tap_coverage`: a plain coverage with roles exchanged."""
    return plain_coverage_int64(W, n, d, p, s, k)


def _compiled_rows(name: str) -> Callable[..., tuple[np.ndarray, np.ndarray]] | None:
    """The counter row by row in C (_native.c): (counts, rows it could not count in int64); None without it."""
    try:
        from ._native import count_rows
    except ImportError:  # no C compiler at install: NumPy and Python ints
        return None

    def run(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cols = [np.ascontiguousarray(c, dtype=np.int64) for c in cols]
        out = np.empty(cols[0].size, dtype=np.int64)
        failed = np.zeros(cols[0].size, dtype=bool)
        count_rows(name, out, failed, *cols)
        return out, failed

    return run


class Int64Overflow(ArithmeticError):
    """A counter's exact value does not fit int64: the caller redoes every row with Python ints."""


def _exact(name: str, vector: Callable[..., np.ndarray], scalar: Callable[..., int],
           in_c: bool = True) -> Callable[..., np.ndarray]:
    """The counter for any dtype: rows in C (or numpy, for small ones), the rest one by one in Python ints."""
    compiled = _compiled_rows(name) if in_c else None

    def run(*args: np.ndarray) -> np.ndarray:
        arrays = np.broadcast_arrays(*(np.asarray(a) for a in args))
        dtype, shape = arrays[0].dtype, arrays[0].shape
        if dtype.kind == "O":
            out = [scalar(*(int(v) for v in row)) for row in zip(*(a.ravel() for a in arrays))]
            return np.array(out, dtype=object).reshape(shape)
        ints = [a.astype(np.int64).ravel() for a in arrays]
        if compiled is not None:
            result, todo = compiled(*ints)
        else:
            todo = np.zeros(ints[0].shape, dtype=bool)
            for a in ints:
                todo |= (a >= VECTOR_SAFE) | (a <= -VECTOR_SAFE)
            result = np.zeros(ints[0].shape, dtype=np.int64)
            if not todo.all():
                result[~todo] = np.asarray(vector(*(a[~todo] for a in ints)), dtype=np.int64).ravel()
        if todo.any():
            exact = [scalar(*(int(v) for v in row)) for row in zip(*(a[todo] for a in ints))]
            if any(not -(2 ** 63) <= v < 2 ** 63 for v in exact):
                raise Int64Overflow(name)
            result[todo] = exact
        return result.reshape(shape).astype(dtype)

    run.__name__ = name
    run.__doc__ = f"Exact {name} on arrays of any integer dtype (see :func:`symconv.core.counters.{name}`)."
    return run


# The names the core's counter functions print in numpy code (their ``_numpycode``).
lattice_count = _exact("lattice_count", lattice_count_int64, counters.lattice_count)
transposed_coverage = _exact("transposed_coverage", transposed_coverage_int64, counters.transposed_coverage)
plain_coverage = _exact("plain_coverage", plain_coverage_int64, counters.plain_coverage)
tap_coverage = _exact("tap_coverage", tap_coverage_int64, counters.tap_coverage)
gcd = _exact("gcd", np.gcd, counters.gcd, in_c=False)
