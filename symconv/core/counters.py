"""Exact per-axis counts of a convolution's count map, in pure Python.

The count map c(j) of one spatial axis is what a ones-convolution outputs at
position j: the number of (input element, kernel tap) products that land there.
Everything symconv counts reduces to two sums over it:

* ``S`` = sum_j c(j), the products that reach the output;
* ``Z`` = #{j : c(j) >= 1}, the output positions that receive any product.

The closed forms of :mod:`symconv.core.overlap` cover most layers; these counters
answer the rest. Each costs O(log) of its largest argument (Euclid-like floor
sums): they loop over neither the input, nor the output, nor the kernel. The
output length is an argument: it comes from the one SymPy definition, never
restated here.
"""

from __future__ import annotations

import math


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a / b for integers, b > 0."""
    return -((-a) // b)


def floor_sum(n: int, m: int, a: int, b: int) -> int:
    """Σ_{u=0}^{n-1} ⌊(a·u + b)/m⌋ for n >= 0, m >= 1, in O(log max(n, m, a, b)).

    Euclid's algorithm on the lattice points under a line: reduce a and b modulo m,
    then swap the roles of the axes (the points under the line counted by rows
    instead of columns), as gcd swaps its arguments.
    """
    total = 0
    while n > 0:
        if a < 0 or a >= m:
            total += n * (n - 1) // 2 * (a // m)
            a %= m
        if b < 0 or b >= m:
            total += n * (b // m)
            b %= m
        top = a * n + b
        if top < m:
            break
        n, b, m, a = top // m, top % m, a, m
    return total


def lattice_count(q: int, n: int, k: int, s: int, d: int) -> int:
    """A(q) = #{(i, t) : 0 <= i < n, 0 <= t < k, i*s + t*d < q}, in O(log).

    The pairs a transposed convolution loses when padding crops q positions from
    one end of its uncropped output (by symmetry, from either end). Tap t keeps
    min(n, ⌈(q − t·d)/s⌉) inputs: the first m taps keep all n, the next ones
    ⌈(q − t·d)/s⌉, a floor sum.
    """
    if q <= 0 or n <= 0 or k <= 0:
        return 0
    taps = min(k, ceil_div(q, d))                            # taps with q - t*d > 0
    full = min(taps, max(0, ceil_div(q - (n - 1) * s, d)))   # taps that keep all n inputs
    # taps t in [full, taps), counted backwards (u = taps - 1 - t) so the argument grows with u
    return full * n + floor_sum(taps - full, s, d, q - (taps - 1) * d + s - 1)


def _rectangle(q0: int, q1: int, i0: int, n: int, t0: int, k: int, s: int, d: int) -> int:
    """#{(i, t) : i0 <= i < i0 + n, t0 <= t < t0 + k, q0 <= i*s + t*d < q1}."""
    shift = i0 * s + t0 * d
    return lattice_count(q1 - shift, n, k, s, d) - lattice_count(q0 - shift, n, k, s, d)


def transposed_coverage(L: int, k: int, s: int, p: int, d: int, L_out: int) -> int:
    """Z of a transposed axis: output positions j = i*s + t*d - p in [0, L_out), i < L, t < k, in O(log).

    With g = gcd(s, d), s = g·s', d = g·d', the pairs (i, t) and (i + d', t − s') land
    on the same position; keeping the one with the smallest t leaves one pair per
    position: those with t < s' or i >= L − d', two rectangles.
    """
    if L <= 0 or k <= 0 or L_out <= 0:
        return 0
    g = math.gcd(s, d)
    s1, d1 = s // g, d // g
    first = _rectangle(p, p + L_out, 0, L, 0, min(s1, k), s, d)
    if k <= s1:
        return first
    low = max(0, L - d1)
    return first + _rectangle(p, p + L_out, low, L - low, s1, k - s1, s, d)


def plain_coverage(L: int, k: int, s: int, p: int, d: int, L_out: int) -> int:
    """Z of a plain axis: outputs j in [0, L_out) with a tap reading 0 <= j*s + t*d - p < L, in O(log).

    Output j's taps start at x = j*s − p and step by d. It reaches the input if x is
    inside it, or if x lies within (k − 1)·d before it and x mod d < L (a floor sum
    when L < d).
    """
    if L <= 0 or k <= 0 or L_out <= 0:
        return 0
    inside = max(0, min(L_out - 1, (L - 1 + p) // s) - max(0, ceil_div(p, s)) + 1)
    low, high = max(0, ceil_div(p - (k - 1) * d, s)), min(L_out - 1, ceil_div(p, s) - 1)
    count = high - low + 1
    if count <= 0:
        return inside
    if L >= d:
        return inside + count
    start = low * s - p  # x of the first such output: x mod d < L counted as ⌊x/d⌋ − ⌊(x − L)/d⌋
    return inside + floor_sum(count, d, s, start) - floor_sum(count, d, s, start - L)


def tap_coverage(n: int, k: int, s: int, p: int, d: int, W: int) -> int:
    """Taps t in [0, k) that some a in [0, n) places inside the window: 0 <= a*s + t*d - p < W.

    The taps a convolution's weight gradient reaches: (n, W) is (L, L_out) for a
    transposed axis (a is the input index) and (L_out, L) for a plain one (a is the
    output index). It is a plain axis' coverage with taps and positions exchanged.
    """
    return plain_coverage(W, n, d, p, s, k)


def taps_at(j: int, L: int, k: int, s: int, p: int, d: int, transposed: bool) -> range:
    """The taps t whose product lands at output position j of one axis, in O(log): c(j) = len(taps).

    Plain: input x = j·s + t·d − p must lie in [0, L), a contiguous range of t.
    Transposed: j + p = i·s + t·d with 0 <= i < L; the solutions t form one residue
    class modulo s' = s / gcd(s, d), cut to the range where i is in bounds.
    """
    if not transposed:
        return range(max(0, ceil_div(p - j * s, d)), min(k - 1, (L - 1 + p - j * s) // d) + 1)
    m, g = j + p, math.gcd(s, d)
    if m % g:
        return range(0)
    s1, d1 = s // g, d // g
    residue = (m // g) * pow(d1, -1, s1) % s1 if s1 > 1 else 0   # t·d ≡ m (mod s)
    low, high = max(0, ceil_div(m - (L - 1) * s, d)), min(k - 1, m // d)
    return range(low + (residue - low) % s1, high + 1, s1)


def input_at(j: int, t: int, s: int, p: int, d: int, transposed: bool) -> int:
    """The input index whose product with tap t lands at output position j."""
    return (j + p - t * d) // s if transposed else j * s + t * d - p


gcd = math.gcd
