"""The oracle: count maps measured by running ones-convolutions in torch.

A convolution of a ones input with a ones kernel outputs, at every position, the
number of products that land there: the count map. We run it in float64, which
is exact for every count below 2**53, and read S (the sum), Z (non-zero
positions) and the output size off it.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.errors import SymconvError
from ..numeric.layer import Layer, is_int
from .grid import Point

_FUNCTIONS = {
    (1, False): F.conv1d, (2, False): F.conv2d, (3, False): F.conv3d,
    (1, True): F.conv_transpose1d, (2, True): F.conv_transpose2d, (3, True): F.conv_transpose3d,
}


class Measured(NamedTuple):
    """What the oracle reads off one layer's ones-convolution."""

    S: int                 # sum of the count map: products in the output
    Z: int                 # positions with a non-zero count
    out_shape: tuple[int, ...]

    @property
    def out_elements(self) -> int:
        n = 1
        for v in self.out_shape:
            n *= v
        return n

    @property
    def docs_additions(self) -> int:
        """The pages' empirical additions, sum(y - 1), done exactly."""
        return self.S - self.out_elements


def ones_count_map(point: Point) -> torch.Tensor:
    """The n-d count map of a layer (float64 tensor of the spatial output shape).

    Raises RuntimeError where torch rejects the layer.
    """
    fn = _FUNCTIONS[(point.ndim, point.transposed)]
    x = torch.ones((1, 1, *point.L), dtype=torch.float64)
    w = torch.ones((1, 1, *point.k), dtype=torch.float64)
    if point.transposed:
        y = fn(x, w, stride=point.s, padding=point.p, output_padding=point.op, dilation=point.d)
    else:
        y = fn(x, w, stride=point.s, padding=point.p, dilation=point.d)
    return y[0, 0]


def measure(point: Point) -> Measured | None:
    """S, Z and the output shape of a layer, or None where torch rejects it."""
    try:
        y = ones_count_map(point)
    except RuntimeError:
        return None
    return Measured(int(y.sum().item()), int(torch.count_nonzero(y).item()), tuple(y.shape))


def _measure_chunk(points: Sequence[Point]) -> list[Measured | None]:
    torch.set_num_threads(1)
    return [measure(p) for p in points]


def measure_all(points: Sequence[Point], workers: int | None = None, progress: bool | None = None,
                chunk: int = 500) -> list[Measured | None]:
    """Measure many layers, in parallel over ``workers`` processes (None: one per core, up to 8), with a progress
    bar on a terminal."""
    if workers is not None and (not is_int(workers) or workers < 1):
        raise SymconvError(f"workers={workers!r} must be a whole number >= 1 (or None: one per core, up to 8)")
    workers = workers or min(os.cpu_count() or 1, 8)
    progress = sys.stderr.isatty() if progress is None else progress
    chunks = [points[i:i + chunk] for i in range(0, len(points), chunk)]
    results: list[Measured | None] = []
    with tqdm(total=len(points), desc="torch ones-convolutions", unit="layer", file=sys.stderr,
              disable=not progress) as bar:
        if workers == 1 or len(chunks) == 1:
            parts = map(_measure_chunk, chunks)
            for part in parts:
                results += part
                bar.update(len(part))
        else:
            with ProcessPoolExecutor(workers) as pool:
                for part in pool.map(_measure_chunk, chunks):
                    results += part
                    bar.update(len(part))
    return results


def module_from_layer(layer: Layer) -> torch.nn.Module:
    """The torch module a :class:`~symconv.numeric.layer.Layer` describes."""
    cls = getattr(torch.nn, layer.kind)
    kwargs = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                  bias=layer.bias, padding_mode=layer.padding_mode)
    if layer.padding_right is not None:
        kwargs["padding"] = "same"
    if layer.transposed:
        kwargs["output_padding"] = layer.output_padding
    return cls(layer.in_channels, layer.out_channels, layer.kernel_size, **kwargs)
