"""Exact per-axis counts of a convolution's count map, in pure Python.

The count map c(j) of one spatial axis is what a ones-convolution outputs at
position j: the number of (input element, kernel tap) products that land there.
Everything symconv counts reduces to two sums over it:

* ``S`` = sum_j c(j), the products that reach the output;
* ``Z`` = #{j : c(j) >= 1}, the output positions that receive any product.

The functions here cost O(k log k) per axis and never loop over the input or
output length, so they are exact and fast for any size. ``count_map`` is the
literal enumeration, kept for explanations and for tests.
"""

from __future__ import annotations

from typing import NamedTuple


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


class AxisCounts(NamedTuple):
    """Sum and support of one axis' count map, with its output length."""

    S: int
    Z: int
    L_out: int


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


def transposed_output_size(L: int, k: int, s: int, p: int, d: int, op: int) -> int:
    """torch's ConvTranspose output length along one axis."""
    return (L - 1) * s - 2 * p + d * (k - 1) + op + 1


def plain_output_size(L: int, k: int, s: int, p: int, d: int, p_right: int | None = None) -> int:
    """torch's Conv output length along one axis (left padding p, right p_right)."""
    pr = p if p_right is None else p_right
    return (L + p + pr - d * (k - 1) - 1) // s + 1


def transposed_axis(L: int, k: int, s: int, p: int, d: int, op: int) -> AxisCounts:
    """S and Z of a transposed convolution axis: pairs with i*s + t*d - p = j."""
    L_out = transposed_output_size(L, k, s, p, d, op)
    S, Z = progression_union([t * d - p for t in range(k)], s, [L] * k, L_out)
    return AxisCounts(S, Z, L_out)


def plain_axis(L: int, k: int, s: int, p: int, d: int, p_right: int | None = None) -> AxisCounts:
    """S and Z of a plain convolution axis: taps with 0 <= j*s + t*d - p < L."""
    L_out = plain_output_size(L, k, s, p, d, p_right)
    bases, counts = [], []
    for t in range(k):
        lo = ceil_div(p - t * d, s)
        hi = (L - 1 + p - t * d) // s
        bases.append(lo)
        counts.append(max(0, hi - lo + 1))
    S, Z = progression_union(bases, 1, counts, L_out)
    return AxisCounts(S, Z, L_out)


def count_map(L: int, k: int, s: int, p: int, d: int, op: int = 0, *, transposed: bool,
              p_right: int | None = None) -> list[int]:
    """The literal count map of one axis, by enumerating every product (O(L*k))."""
    if transposed:
        L_out = transposed_output_size(L, k, s, p, d, op)
        c = [0] * max(L_out, 0)
        for i in range(L):
            for t in range(k):
                j = i * s + t * d - p
                if 0 <= j < L_out:
                    c[j] += 1
        return c
    L_out = plain_output_size(L, k, s, p, d, p_right)
    return [sum(1 for t in range(k) if 0 <= j * s + t * d - p < L) for j in range(max(L_out, 0))]
