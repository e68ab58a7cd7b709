"""Exact per-axis counts of a convolution's count map, in pure Python.

The count map c(j) of one spatial axis is what a ones-convolution outputs at
position j: the number of (input element, kernel tap) products that land there.
Everything symconv counts reduces to two sums over it:

* ``S`` = sum_j c(j), the products that reach the output;
* ``Z`` = #{j : c(j) >= 1}, the output positions that receive any product.

The closed forms of :mod:`symconv.core.overlap` cover most layers; these counters
answer the rest. They cost O(k log k) per axis and never loop over the input or
output length. The output length is an argument: it comes from the one SymPy
definition, never restated here.
"""

from __future__ import annotations

import math


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a / b for integers, b > 0."""
    return -((-a) // b)


def lattice_count(q: int, n: int, k: int, s: int, d: int) -> int:
    """A(q) = #{(i, t) : 0 <= i < n, 0 <= t < k, i*s + t*d < q}.

    The pairs a transposed convolution loses when padding crops q positions
    from one end of its uncropped output (by symmetry, from either end).
    """
    if q <= 0:
        return 0
    total = 0
    for t in range(k):
        room = q - t * d
        if room <= 0:
            break
        total += min(n, ceil_div(room, s))
    return total


def _clip(base: int, step: int, count: int, window: int) -> tuple[int, int]:
    """Index range [lo, hi) of i in [0, count) with 0 <= base + step*i < window."""
    lo = max(0, ceil_div(-base, step))
    hi = min(count, (window - 1 - base) // step + 1)
    return lo, max(lo, hi)


def progression_union(bases: list[int], step: int, counts: list[int], window: int) -> tuple[int, int]:
    """Sum and union size of progressions {b + step*i : 0 <= i < n} inside [0, window).

    Returns (total members in the window, distinct members in the window).
    Progressions in the same residue class modulo ``step`` are intervals in
    units of ``step``; sorting and merging them costs O(k log k).
    """
    total = 0
    intervals: list[tuple[int, int, int]] = []
    for base, count in zip(bases, counts):
        lo, hi = _clip(base, step, count, window)
        if hi > lo:
            total += hi - lo
            residue = base % step
            unit = (base - residue) // step
            intervals.append((residue, unit + lo, unit + hi))
    intervals.sort()
    distinct = 0
    last_residue, reach = None, 0
    for residue, start, end in intervals:
        if residue != last_residue:
            last_residue, reach = residue, start
        distinct += max(0, end - max(start, reach))
        reach = max(reach, end)
    return total, distinct


def transposed_coverage(L: int, k: int, s: int, p: int, d: int, L_out: int) -> int:
    """Z of a transposed axis: output positions j = i*s + t*d - p in [0, L_out)."""
    return progression_union([t * d - p for t in range(k)], s, [L] * k, L_out)[1]


def plain_coverage(L: int, k: int, s: int, p: int, d: int, L_out: int) -> int:
    """Z of a plain axis: output positions j in [0, L_out) with a tap reading 0 <= j*s + t*d - p < L."""
    lows = [ceil_div(p - t * d, s) for t in range(k)]
    counts = [max(0, (L - 1 + p - t * d) // s - lo + 1) for t, lo in enumerate(lows)]
    return progression_union(lows, 1, counts, L_out)[1]


gcd = math.gcd


def tap_coverage(n: int, k: int, s: int, p: int, d: int, W: int) -> int:
    """Taps t in [0, k) that some a in [0, n) places inside the window: 0 <= a*s + t*d - p < W.

    The taps a convolution's weight gradient reaches: (n, W) is (L, L_out) for a
    transposed axis (a is the input index) and (L_out, L) for a plain one (a is the
    output index). For each tap the admissible a form an interval; O(k).
    """
    reached = 0
    for t in range(k):
        lo = max(0, ceil_div(p - t * d, s))
        hi = min(n - 1, (W - 1 + p - t * d) // s)
        reached += lo <= hi
    return reached
