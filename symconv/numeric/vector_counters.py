"""The exact counters of :mod:`symconv.core.counters`, vectorised over rows of configurations.

Each runs row by row in C (``count_rows`` of ``_native.c``) where the compiled
module is built and the row fits in int64, in numpy int64 elsewhere, and in
Python ints for rows whose arguments are too large for int64 arithmetic. The
public names here are the ones the core's counter functions print in numpy code.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..core import counters

PIECE_SAFE = 2.0 ** 31  # inputs below this keep every per-axis piece (at most a product of two) in int64


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -((-a) // b)


def lattice_count_int64(q, n, k, s, d) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.lattice_count` in int64: a loop over taps, not over n."""
    q, n, k, s, d = np.broadcast_arrays(*(np.asarray(v, dtype=np.int64) for v in (q, n, k, s, d)))
    total = np.zeros(q.shape, dtype=np.int64)
    for t in range(int(k.max(initial=0))):
        room = q - t * d
        live = (t < k) & (room > 0)
        total += np.where(live, np.minimum(n, _ceil_div(np.maximum(room, 1), s)), 0)
    return total


def progression_union(bases: np.ndarray, step: np.ndarray, counts: np.ndarray, window: np.ndarray,
                      live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`symconv.core.counters.progression_union` over rows.

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


def transposed_coverage_int64(L, k, s, p, d, L_out) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.transposed_coverage` in int64."""
    L, k, s, p, d, L_out = (np.ravel(v) for v in np.broadcast_arrays(
        *(np.asarray(v, dtype=np.int64) for v in (L, k, s, p, d, L_out))))
    t, live = _taps(k)
    bases = t * d[:, None] - p[:, None]
    counts = np.broadcast_to(L[:, None], bases.shape)
    return progression_union(bases, s[:, None], counts, L_out[:, None], live)[1]


def plain_coverage_int64(L, k, s, p, d, L_out) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.plain_coverage` in int64."""
    L, k, s, p, d, L_out = (np.ravel(v) for v in np.broadcast_arrays(
        *(np.asarray(v, dtype=np.int64) for v in (L, k, s, p, d, L_out))))
    t, live = _taps(k)
    lows = _ceil_div(p[:, None] - t * d[:, None], s[:, None])
    counts = np.maximum(0, (L[:, None] - 1 + p[:, None] - t * d[:, None]) // s[:, None] - lows + 1)
    one = np.ones_like(L_out[:, None])
    return progression_union(lows, one, counts, L_out[:, None], live)[1]


def tap_coverage_int64(n, k, s, p, d, W) -> np.ndarray:
    """Vectorised :func:`symconv.core.counters.tap_coverage` in int64: a loop over taps."""
    n, k, s, p, d, W = np.broadcast_arrays(*(np.asarray(v, dtype=np.int64) for v in (n, k, s, p, d, W)))
    total = np.zeros(n.shape, dtype=np.int64)
    for t in range(int(k.max(initial=0))):
        lo = np.maximum(0, _ceil_div(p - t * d, s))
        hi = np.minimum(n - 1, (W - 1 + p - t * d) // s)
        total += (t < k) & (lo <= hi)
    return total


def _compiled_rows(name: str, vector: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """A counter row by row in C (_native.c) where it fits in int64; the NumPy one elsewhere."""
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


class Int64Overflow(ArithmeticError):
    """A counter's exact value does not fit int64: the caller redoes every row with Python ints."""


def _exact(name: str, vector: Callable[..., np.ndarray], scalar: Callable[..., int]) -> Callable[..., np.ndarray]:
    """The counter for any dtype: int64 rows vectorised, Python-int rows one by one, floats cast.

    The vectorised counters multiply at most two arguments, so rows whose arguments
    all lie below PIECE_SAFE cannot overflow int64; other rows are counted in Python.
    """

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
            raise Int64Overflow(name)
        result[big] = exact
        return result.reshape(shape).astype(dtype)

    run.__name__ = name
    run.__doc__ = f"Exact {name} on arrays of any integer dtype (see :func:`symconv.core.counters.{name}`)."
    return run


# The names the core's counter functions print in numpy code (their ``_numpycode``).
lattice_count = _exact("lattice_count", _compiled_rows("lattice_count", lattice_count_int64), counters.lattice_count)
transposed_coverage = _exact("transposed_coverage", _compiled_rows("transposed_coverage", transposed_coverage_int64),
                             counters.transposed_coverage)
plain_coverage = _exact("plain_coverage", _compiled_rows("plain_coverage", plain_coverage_int64),
                        counters.plain_coverage)
tap_coverage = _exact("tap_coverage", tap_coverage_int64, counters.tap_coverage)
gcd = _exact("gcd", np.gcd, counters.gcd)
