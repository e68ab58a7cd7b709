"""Parameter grids on which closed forms are checked against torch.

A :class:`Point` is one layer shape: per-axis tuples of input size, kernel,
stride, padding, dilation and output padding. Which points torch accepts is
decided by the core's rules (:func:`symconv.numeric.layer.axis_accepted`).
"""

from __future__ import annotations

import random
from typing import Iterator, NamedTuple

from ..core.names import kind_of
from ..numeric.layer import axis_accepted

SIZES = range(1, 9)
KERNELS = range(1, 6)
STRIDES = range(1, 5)
DILATIONS = range(1, 4)


class Point(NamedTuple):
    """One layer's per-axis parameters (tuples of equal length)."""

    transposed: bool
    L: tuple[int, ...]
    k: tuple[int, ...]
    s: tuple[int, ...]
    p: tuple[int, ...]
    d: tuple[int, ...]
    op: tuple[int, ...]

    @classmethod
    def from_layer(cls, layer, spatial: tuple[int, ...]) -> "Point":
        """The per-axis parameters of a :class:`~symconv.numeric.layer.Layer` on a spatial input size."""
        return cls(layer.transposed, tuple(spatial), layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                   layer.output_padding)

    @property
    def ndim(self) -> int:
        return len(self.L)

    def axis(self, a: int) -> tuple[int, int, int, int, int, int]:
        return self.L[a], self.k[a], self.s[a], self.p[a], self.d[a], self.op[a]

    def describe(self) -> str:
        name = kind_of(self.ndim, self.transposed)
        def short(t: tuple[int, ...]) -> str:
            return str(t[0]) if self.ndim == 1 else str(t)
        text = (f"{name}(k={short(self.k)}, s={short(self.s)}, p={short(self.p)}, d={short(self.d)}"
                + (f", op={short(self.op)}" if self.transposed else "") + f") on L={short(self.L)}")
        return text


def _axis_options(transposed: bool, valid_only: bool) -> Iterator[tuple[int, int, int, int, int, int]]:
    """Every per-axis setting of the exhaustive grid (optionally only those torch accepts)."""
    for L in SIZES:
        for k in KERNELS:
            for s in STRIDES:
                for d in DILATIONS:
                    for p in range(d * (k - 1) + 2):
                        for op in (range(max(s, d)) if transposed else (0,)):
                            if valid_only and not axis_accepted(transposed, L, k, s, p, d, op):
                                continue
                            yield L, k, s, p, d, op


def grid_1d(transposed: bool, valid_only: bool = True) -> list[Point]:
    """The exhaustive one-axis grid: sizes 1..8, kernel 1..5, stride 1..4, dilation 1..3,
    padding 0..d(k-1)+1, output_padding 0..max(s,d)-1 (transposed only)."""
    return [Point(transposed, (L,), (k,), (s,), (p,), (d,), (op,))
            for L, k, s, p, d, op in _axis_options(transposed, valid_only)]


def samples_nd(transposed: bool, ndim: int, count: int, seed: int = 0) -> list[Point]:
    """Seeded samples of valid n-axis layers with independently drawn per-axis parameters."""
    options = list(_axis_options(transposed, True))
    rng = random.Random(seed * 100 + ndim * 10 + int(transposed))
    points = []
    for _ in range(count):
        axes = [rng.choice(options) for _ in range(ndim)]
        points.append(Point(transposed, *(tuple(ax[f] for ax in axes) for f in range(6))))
    return points


def default_grid() -> list[Point]:
    """What ``symconv validate`` checks: both exhaustive 1-d grids and 2-d/3-d samples."""
    points: list[Point] = []
    for transposed in (True, False):
        points += grid_1d(transposed)
        points += samples_nd(transposed, 2, 300)
        points += samples_nd(transposed, 3, 100)
    return points
