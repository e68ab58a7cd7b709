"""Independent ground truth for the tests: literal count maps and a product-by-product operation counter.

Written from the definitions, independently of symconv's expressions (torch's
output-size formulas are restated here on purpose, as an oracle); tests pin these
to torch itself.
"""

from __future__ import annotations

import itertools
from typing import Sequence

from symconv.numeric.layer import Layer


def output_size(L: int, k: int, s: int, p: int, d: int, op: int = 0, *, transposed: bool,
                p_right: int | None = None) -> int:
    """torch's output length along one axis (left padding p, right p_right)."""
    pr = p if p_right is None else p_right
    if transposed:
        return (L - 1) * s - p - pr + d * (k - 1) + op + 1
    return (L + p + pr - d * (k - 1) - 1) // s + 1


def count_map(L: int, k: int, s: int, p: int, d: int, op: int = 0, *, transposed: bool,
              p_right: int | None = None) -> list[int]:
    """The literal count map of one axis, by enumerating every product (O(L*k))."""
    L_out = output_size(L, k, s, p, d, op, transposed=transposed, p_right=p_right)
    if transposed:
        c = [0] * max(L_out, 0)
        for i in range(L):
            for t in range(k):
                j = i * s + t * d - p
                if 0 <= j < L_out:
                    c[j] += 1
        return c
    return [sum(1 for t in range(k) if 0 <= j * s + t * d - p < L) for j in range(max(L_out, 0))]


def simulate(spec: Layer, input_shape: Sequence[int], convention: str) -> int:
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


