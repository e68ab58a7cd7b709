"""Explain how a layer computes each output: count maps and the products behind one position.

Each position's count comes from the taps that reach it (:func:`symconv.core.counters.taps_at`,
O(log) per position), so a map is shown whole when it is short and summarised when
it is long: runs of equal counts at both ends, the interior's repeating period and
a window around ``--at``, in time independent of the axis length. The counts
themselves come from :func:`symconv.numeric.layer_counts.count_layer`.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

from ..core.counters import input_at, taps_at
from ..core.errors import SymconvError
from ..core.names import CONVENTION_DESCRIPTIONS, CONVENTION_NAMES
from ..numeric.layer import Layer, is_int
from ..numeric.layer_counts import axis_counts, count_layer

MAX_SHOWN = 4096  # count-map elements of a layer printed at most
SHORT = 64        # an axis map this long or shorter is printed whole
EDGE = 24         # positions shown at each end of a long axis map
WINDOW = 8        # positions shown on each side of --at
MAX_PAIRS = 32    # (input, tap) pairs listed at a position
MAX_PLOTTED = 4_000_000  # count-map elements a heatmap is drawn from at most


def _axis(spec: Layer, spatial: Sequence[int], a: int) -> tuple[int, int, int, int, int]:
    return spatial[a], spec.kernel_size[a], spec.stride[a], spec.padding[a], spec.dilation[a]


def count_at(spec: Layer, spatial: Sequence[int], a: int, j: int) -> int:
    """Products of one filter landing at position j of axis a (zero padding)."""
    return len(taps_at(j, *_axis(spec, spatial, a), spec.transposed))


def axis_maps(spec: Layer, spatial: Sequence[int]) -> list[list[int]]:
    """Each axis' whole count map (for short axes: its length is the output size)."""
    return [[count_at(spec, spatial, a, j) for j in range(L_out)]
            for a, L_out in enumerate(spec.output_size(spatial))]


def full_map(maps: list[list[int]]):
    """The n-d count map as nested lists: the product of the per-axis maps."""
    if len(maps) == 1:
        return list(maps[0])
    inner = full_map(maps[1:])
    return [_scale(inner, c) for c in maps[0]]


def _scale(nested, c: int):
    return [_scale(x, c) for x in nested] if isinstance(nested, list) else nested * c


Pair = tuple[tuple[int, ...], tuple[int, ...]]


def _written(position: Sequence) -> str:
    """A position as the user wrote it: 0,1."""
    return ",".join(map(str, position))


def _taps_at_position(spec: Layer, spatial: Sequence[int], position: Sequence[int]) -> list[range]:
    out = spec.check_input((spec.in_channels, *spatial))[2]
    if not all(is_int(j) for j in position):
        raise SymconvError(f"position {_written(position)} must be integers, one per spatial axis (e.g. "
                           f"{','.join('0' * spec.ndim)})")
    if len(position) != spec.ndim:
        indices = f"{len(position)} index" + ("es" if len(position) != 1 else "")
        raise SymconvError(f"position {_written(position)} gives {indices} for the {spec.ndim} spatial axes of the "
                           f"output {out!r}")
    if any(not 0 <= j < n for j, n in zip(position, out)):
        raise SymconvError(f"position {_written(position)} is outside the output {out!r}")
    return [taps_at(j, *_axis(spec, spatial, a), spec.transposed) for a, j in enumerate(position)]


def meeting(spec: Layer, spatial: Sequence[int], position: Sequence[int], limit: int | None = None) -> list[Pair]:
    """(input index, kernel tap) pairs whose product lands at an output position (the first ``limit``).

    Plain layers list only taps that read the input (taps on padding read zeros).
    """
    per_axis = []
    for a, (j, taps) in enumerate(zip(position, _taps_at_position(spec, spatial, position))):
        _, _, s, p, d = _axis(spec, spatial, a)
        per_axis.append(sorted((input_at(j, t, s, p, d, spec.transposed), t) for t in taps[:limit]))
    combos = itertools.islice(itertools.product(*per_axis), limit)
    return [(tuple(i for i, _ in combo), tuple(t for _, t in combo)) for combo in combos]


def _runs(values: Sequence[int]) -> str:
    """Runs of equal counts: [1, 2, 2, 2, 1] -> '1, 2×3, 1'."""
    parts = []
    for value, group in itertools.groupby(values):
        n = len(list(group))
        parts.append(f"{value}×{n}" if n > 1 else str(value))
    return ", ".join(parts)


def _interior(spec: Layer, spatial: Sequence[int], a: int, L_out: int) -> tuple[int, int, int] | None:
    """(first, last, period) of the positions where no tap falls outside the input: there the map
    repeats with period s/gcd(s, d) (a plain layer's interior is one run of kernel_size)."""
    L, k, s, p, d = _axis(spec, spatial, a)
    if spec.transposed:
        first, last, period = max(0, (k - 1) * d - p), min(L_out - 1, (L - 1) * s - p), s // math.gcd(s, d)
    else:
        first, last, period = max(0, -(-p // s)), min(L_out - 1, (L - 1 + p - (k - 1) * d) // s), 1
    return (first, last, period) if last - first + 1 >= 2 * period else None


def _summary(spec: Layer, spatial: Sequence[int], a: int, L_out: int, at: int | None) -> list[str]:
    """A long axis map: both ends as runs, the interior's period, a window around ``at``."""
    show = lambda lo, hi: _runs([count_at(spec, spatial, a, j) for j in range(lo, hi)])  # noqa: E731
    lines = [f"    positions 0..{EDGE - 1}: {show(0, EDGE)}"]
    interior = _interior(spec, spatial, a, L_out)
    if interior is not None:
        first, last, period = interior
        shown = show(first, first + min(period, EDGE)) + (", …" if period > EDGE else "")
        lines.append(f"    positions {first}..{last}: [{shown}] repeating (period {period})")
    if at is not None:
        lo, hi = max(0, at - WINDOW), min(L_out, at + WINDOW + 1)
        lines.append(f"    around {at}, positions {lo}..{hi - 1}: {show(lo, hi)}")
    lines.append(f"    positions {L_out - EDGE}..{L_out - 1}: {show(L_out - EDGE, L_out)}")
    return lines


def _fmt_map(nested, indent: str = "  ") -> list[str]:
    if nested and isinstance(nested[0], list) and isinstance(nested[0][0], list):
        lines = []
        for z, plane in enumerate(nested):
            lines.append(f"{indent}[{z}]")
            lines += _fmt_map(plane, indent + "  ")
        return lines
    if nested and isinstance(nested[0], list):
        width = max(len(str(v)) for row in nested for v in row)
        return [indent + " ".join(f"{v:>{width}}" for v in row) for row in nested]
    return [indent + " ".join(str(v) for v in nested)]


def explain(spec: Layer, input_shape: Sequence[int], position: Sequence[int] | None = None) -> str:
    """A readable account of the layer on the input: count maps, additions, one position's products."""
    if not all(is_int(v) for v in input_shape):
        raise SymconvError(f"explain shows the count maps of a concrete input: input shape {tuple(input_shape)!r} "
                           f"holds names (symconv count gives the counts as formulas in them)")
    counts = {c: count_layer(spec, input_shape, c) for c in CONVENTION_NAMES}
    docs = counts["docs"]
    spatial = docs.input_size
    if position is not None:
        taps = _taps_at_position(spec, spatial, position)  # refuses a position outside the output first
    lines = [f"{spec.constructor()} on input {tuple(input_shape)} -> output size {docs.output_size}", "",
             "count map per axis (products of one filter landing at each output position):"]
    for a, (L_out, S, Z) in enumerate(axis_counts(spec, spatial)):
        if L_out <= SHORT:
            values = [count_at(spec, spatial, a, j) for j in range(L_out)]
            lines.append(f"  axis {a}: [{', '.join(map(str, values))}]  sum S={S}, reached Z={Z}")
        else:
            lines.append(f"  axis {a}: {L_out:,} positions, sum S={S:,}, reached Z={Z:,}; runs of equal counts:")
            lines += _summary(spec, spatial, a, L_out, None if position is None else position[a])
    size = 1
    for L_out in docs.output_size:
        size *= L_out
    if spec.ndim > 1:
        if size <= MAX_SHOWN:
            lines += ["", "count map of the layer (the product of the axis maps):"]
            lines += _fmt_map(full_map(axis_maps(spec, spatial)))
        else:
            lines += ["", f"count map of the layer: {size:,} elements, too many to print"]
    lines += ["", "additions per filter:"]
    for name, c in counts.items():
        lines.append(f"  {name:<6} {c.additions:>12}   ({CONVENTION_DESCRIPTIONS[name].split(':')[0]})")
    if docs.unreached:
        lines.append(f"  {docs.unreached} output position(s) receive no product: the docs convention counts "
                     f"-1 addition at each")
    if position is not None:
        total = 1
        for t in taps:
            total *= len(t)
        pairs = meeting(spec, spatial, position, MAX_PAIRS)
        lines += ["", f"output position {tuple(position)}: {total:,} product(s), "
                      f"{max(total - 1, 0):,} addition(s) per filter"]
        for i, t in pairs:
            lines.append(f"  input {i} x kernel tap {t}")
        if total > len(pairs):
            lines.append(f"  … and {total - len(pairs):,} more")
    return "\n".join(lines)


def plot(spec: Layer, input_shape: Sequence[int], path: str) -> None:
    """Save a heatmap of the count map (3-d layers: the middle slice of the first axis) as PNG."""
    from .figures import pyplot, save
    _, spatial, out = spec.check_input(input_shape)
    if math.prod(out) > MAX_PLOTTED:
        raise SymconvError(f"the count map of output size {out} is too large to plot "
                           f"(at most {MAX_PLOTTED:,} elements); explain without --plot summarises it")
    plt = pyplot()
    maps = axis_maps(spec, spatial)
    grid = full_map(maps)
    if spec.ndim == 1:
        grid = [grid]
    elif spec.ndim == 3:
        grid = grid[len(grid) // 2]
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(grid, cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="products landing here")
    ax.set_title(spec.constructor(), fontsize=8)
    save(fig, path)
