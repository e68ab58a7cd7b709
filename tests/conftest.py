"""Shared fixtures and an independent, literal operation counter used as ground truth."""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import pytest
from hypothesis import strategies as st

from symconv import grid
from symconv.layers import LayerSpec

KINDS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


def simulate(spec: LayerSpec, input_shape: Sequence[int], convention: str) -> int:
    """Count operations by walking every product of the layer, one at a time.

    Written from the definitions, independent of the engine: each product is an
    (output position, input position, tap) triple of a filter. ``docs`` charges
    every output element Πk products (plain layers: and Πk - 1 additions; transposed
    layers: the additions sum(c - 1) of the ones-convolution); ``exact`` charges
    only products that land in the output and the additions that combine them.
    """
    shape = tuple(input_shape)
    batch = shape[0] if len(shape) == spec.ndim + 2 else 1
    spatial = shape[-spec.ndim:]
    count: dict[tuple[int, ...], int] = {}
    out_sizes = []
    for a in range(spec.ndim):
        L, k, s, p, d = spatial[a], spec.kernel_size[a], spec.stride[a], spec.padding[a], spec.dilation[a]
        if spec.transposed:
            out_sizes.append((L - 1) * s - 2 * p + d * (k - 1) + spec.output_padding[a] + 1)
        else:
            out_sizes.append((L + p + spec.right_padding[a] - d * (k - 1) - 1) // s + 1)
    for out in itertools.product(*(range(n) for n in out_sizes)):
        count[out] = 0
    ranges_in = [range(n) for n in spatial]
    ranges_k = [range(n) for n in spec.kernel_size]
    for tap in itertools.product(*ranges_k):
        if spec.transposed:
            for i in itertools.product(*ranges_in):
                j = tuple(i[a] * spec.stride[a] + tap[a] * spec.dilation[a] - spec.padding[a]
                          for a in range(spec.ndim))
                if j in count:
                    count[j] += 1
        else:
            for j in count:
                i = tuple(j[a] * spec.stride[a] + tap[a] * spec.dilation[a] - spec.padding[a]
                          for a in range(spec.ndim))
                # zeros padding reads nothing; reflect/replicate/circular padding reads real data
                low = [0 if spec.padding_mode == "zeros" else -spec.padding[a] for a in range(spec.ndim)]
                high = [spatial[a] + (0 if spec.padding_mode == "zeros" else spec.right_padding[a])
                        for a in range(spec.ndim)]
                if all(low[a] <= i[a] < high[a] for a in range(spec.ndim)):
                    count[j] += 1
    K = 1
    for k in spec.kernel_size:
        K *= k
    per_group_in = spec.in_channels // spec.groups
    filters = spec.in_channels * spec.out_channels // spec.groups
    positions = len(count)
    if convention == "macs":
        n_in = 1
        for v in spatial:
            n_in *= v
        return batch * filters * K * (n_in if spec.transposed else positions)
    if convention == "docs":
        per_filter = positions * K
        if spec.transposed:
            per_filter += sum(c - 1 for c in count.values())
        else:
            per_filter += positions * (K - 1)
        aggregation = spec.out_channels * positions * (per_group_in - 1 + int(spec.bias))
        return batch * (filters * per_filter + aggregation)
    # exact: per filter, each product is a multiplication; combining c products takes c - 1 additions.
    reached = [c for c in count.values() if c]
    per_filter = sum(reached) + sum(c - 1 for c in reached)
    aggregation = spec.out_channels * (len(reached) * (per_group_in - 1) + positions * int(spec.bias))
    return batch * (filters * per_filter + aggregation)


@pytest.fixture(scope="session")
def validation_report():
    """The default grid measured by torch and every candidate checked (shared by tests)."""
    from symconv import validate
    return validate.run(progress=False)


def random_points(size: Callable[[int], st.SearchStrategy[int]], kernel: st.SearchStrategy[int],
                  stride: st.SearchStrategy[int], dilation: st.SearchStrategy[int],
                  extra_padding: int) -> st.SearchStrategy[grid.Point]:
    """Layers with 1-3 axes, transposed or plain, as torch accepts their per-axis options.

    ``size(ndim)`` draws an input size; padding runs to d(k-1) + extra_padding (some
    of those leave no output, which the tests handle).
    """
    @st.composite
    def points(draw) -> grid.Point:
        ndim = draw(st.integers(1, 3))
        transposed = draw(st.booleans())
        axes = []
        for _ in range(ndim):
            L, k, s, d = draw(size(ndim)), draw(kernel), draw(stride), draw(dilation)
            p = draw(st.integers(0, d * (k - 1) + extra_padding))
            op = draw(st.integers(0, max(s, d) - 1)) if transposed else 0
            axes.append((L, k, s, p, d, op))
        return grid.Point(transposed, *(tuple(ax[f] for ax in axes) for f in range(6)))

    return points()
