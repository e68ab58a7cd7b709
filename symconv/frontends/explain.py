"""Explain how a layer computes each output: count maps and the products behind one position.

The count map is enumerated literally here (it is for reading, so its size is
capped); the counts themselves come from :func:`symconv.numeric.layer_counts.count_layer`.
"""

from __future__ import annotations

import itertools
from typing import Sequence

from ..core.errors import SymconvError
from ..core.names import CONVENTION_DESCRIPTIONS, CONVENTION_NAMES
from ..numeric.layer import Layer
from ..numeric.layer_counts import count_layer

MAX_SHOWN = 4096  # count-map elements printed at most


def axis_maps(spec: Layer, spatial: Sequence[int]) -> list[list[int]]:
    """Each axis' count map: products of one filter landing at each output position (zero padding)."""
    maps = []
    for a, L_out in enumerate(spec.output_size(spatial)):
        L, k, s, p, d = spatial[a], spec.kernel_size[a], spec.stride[a], spec.padding[a], spec.dilation[a]
        if spec.transposed:
            c = [0] * L_out
            for j in (i * s + t * d - p for i in range(L) for t in range(k)):
                if 0 <= j < L_out:
                    c[j] += 1
        else:
            c = [sum(1 for t in range(k) if 0 <= j * s + t * d - p < L) for j in range(L_out)]
        maps.append(c)
    return maps


def full_map(maps: list[list[int]]):
    """The n-d count map as nested lists: the product of the per-axis maps."""
    if len(maps) == 1:
        return list(maps[0])
    inner = full_map(maps[1:])
    return [_scale(inner, c) for c in maps[0]]


def _scale(nested, c: int):
    return [_scale(x, c) for x in nested] if isinstance(nested, list) else nested * c


Pair = tuple[tuple[int, ...], tuple[int, ...]]


def meeting(spec: Layer, spatial: Sequence[int], position: Sequence[int]) -> list[Pair]:
    """(input index, kernel tap) pairs whose product lands at an output position.

    Plain layers list only taps that read the input (taps on padding read zeros).
    """
    out = spec.check_input((spec.in_channels, *spatial))[2]
    if len(position) != spec.ndim or any(not 0 <= j < n for j, n in zip(position, out)):
        raise SymconvError(f"position {tuple(position)!r} is outside the output {out!r}")
    per_axis = []
    for a, j in enumerate(position):
        L, k, s, p, d = spatial[a], spec.kernel_size[a], spec.stride[a], spec.padding[a], spec.dilation[a]
        if spec.transposed:
            pairs = [(i, t) for t in range(k) for i in [(j + p - t * d) // s]
                     if (j + p - t * d) % s == 0 and 0 <= i < L]
        else:
            pairs = [(j * s + t * d - p, t) for t in range(k) if 0 <= j * s + t * d - p < L]
        per_axis.append(sorted(pairs))
    return [(tuple(i for i, _ in combo), tuple(t for _, t in combo)) for combo in itertools.product(*per_axis)]


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
    counts = {c: count_layer(spec, input_shape, c) for c in CONVENTION_NAMES}
    docs = counts["docs"]
    spatial = docs.input_size
    maps = axis_maps(spec, spatial)
    lines = [f"{spec.constructor()} on input {tuple(input_shape)} -> output size {docs.output_size}", "",
             "count map per axis (products of one filter landing at each output position):"]
    for a, m in enumerate(maps):
        shown = m if len(m) <= 64 else m[:32] + ["…"] + m[-32:]
        lines.append(f"  axis {a}: [{', '.join(str(v) for v in shown)}]  sum S={sum(m)}, "
                     f"reached Z={sum(1 for v in m if v)}")
    size = 1
    for m in maps:
        size *= len(m)
    if spec.ndim > 1:
        if size <= MAX_SHOWN:
            lines += ["", "count map of the layer (the product of the axis maps):"]
            lines += _fmt_map(full_map(maps))
        else:
            lines += ["", f"count map of the layer: {size} elements, too many to print"]
    lines += ["", "additions per filter:"]
    for name, c in counts.items():
        lines.append(f"  {name:<6} {c.additions:>12}   ({CONVENTION_DESCRIPTIONS[name].split(':')[0]})")
    if docs.unreached:
        lines.append(f"  {docs.unreached} output position(s) receive no product: the docs convention counts "
                     f"-1 addition at each")
    if position is not None:
        pairs = meeting(spec, spatial, position)
        lines += ["", f"output position {tuple(position)}: {len(pairs)} product(s), "
                      f"{max(len(pairs) - 1, 0)} addition(s) per filter"]
        for i, t in pairs:
            lines.append(f"  input {i} x kernel tap {t}")
    return "\n".join(lines)


def plot(spec: Layer, input_shape: Sequence[int], path: str) -> None:
    """Save a heatmap of the count map (3-d layers: the middle slice of the first axis) as PNG."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SymconvError("--plot needs matplotlib: pip install 'symconv[plot]'") from None
    maps = axis_maps(spec, spec.check_input(input_shape)[1])
    grid = full_map(maps)
    if spec.ndim == 1:
        grid = [grid]
    elif spec.ndim == 3:
        grid = grid[len(grid) // 2]
    fig, ax = plt.subplots(figsize=(5, 4))
    image = ax.imshow(grid, cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="products landing here")
    ax.set_title(spec.constructor(), fontsize=8)
    try:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    except OSError as err:
        raise SymconvError(f"cannot write {path!r}: {err.strerror}") from None
    finally:
        plt.close(fig)
