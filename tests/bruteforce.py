"""Independent ground truth for the tests: literal count maps and a product-by-product operation counter.

Written from the definitions, independently of symconv's expressions (torch's
output-size formulas are restated here on purpose, as an oracle); tests pin these
to torch itself.
"""

from __future__ import annotations

import itertools
import math
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




def _axis_triples(spec: Layer, spatial: Sequence[int]) -> list[list[tuple[int, int, int]]]:
    """Per axis, the valid (input i, tap t, output j) triples, enumerated from the definitions."""
    axes = []
    for a in range(spec.ndim):
        L, k, s, d, p = spatial[a], spec.kernel_size[a], spec.stride[a], spec.dilation[a], spec.padding[a]
        L_out = output_size(L, k, s, p, d, spec.output_padding[a], transposed=spec.transposed,
                            p_right=spec.right_padding[a])
        if spec.transposed:
            axes.append([(i, t, i * s + t * d - p) for i in range(L) for t in range(k) if 0 <= i * s + t * d - p < L_out])
        else:
            axes.append([(j * s + t * d - p, t, j) for j in range(L_out) for t in range(k) if 0 <= j * s + t * d - p < L])
    return axes


def simulate_gradients(spec: Layer, input_shape: Sequence[int], convention: str) -> dict[str, int]:
    """The backward pass of a (zero-padded) convolution, gradient element by gradient element.

    exact: each gradient element that receives terms costs terms multiplications and
    terms - 1 additions (grad_bias: additions only). docs: the pages' rule on the
    adjoint layer (grad_input) and a full sum per weight element. macs: the forward's.
    """
    assert spec.padding_mode == "zeros"
    shape = tuple(input_shape)
    N = shape[0] if len(shape) == spec.ndim + 2 else 1
    spatial = shape[-spec.ndim:]
    triples = _axis_triples(spec, spatial)
    C_in, C_out, g = spec.in_channels, spec.out_channels, spec.groups
    psi = C_in * C_out // g
    out_sizes = [output_size(spatial[a], spec.kernel_size[a], spec.stride[a], spec.padding[a], spec.dilation[a],
                             spec.output_padding[a], transposed=spec.transposed, p_right=spec.right_padding[a])
                 for a in range(spec.ndim)]
    out_elements, in_elements, taps = math.prod(out_sizes), math.prod(spatial), math.prod(spec.kernel_size)
    if convention == "macs":
        forward = simulate(spec, shape, "macs")
        return {"grad_input": forward, "grad_weight": forward, "grad_bias": 0}
    bias = C_out * (N * out_elements - 1)
    if convention == "exact":
        per_input: dict[tuple, int] = {}
        per_tap: dict[tuple, int] = {}
        for combo in itertools.product(*triples):
            i, t = tuple(c[0] for c in combo), tuple(c[1] for c in combo)
            per_input[i] = per_input.get(i, 0) + 1
            per_tap[t] = per_tap.get(t, 0) + 1
        grad_input = N * C_in * sum(2 * (C_out // g) * c - 1 for c in per_input.values())
        grad_weight = psi * sum(2 * N * c - 1 for c in per_tap.values())
        return {"grad_input": grad_input, "grad_weight": grad_weight, "grad_bias": bias}
    # docs
    if spec.transposed:  # the adjoint is a plain layer from the output size back to the input size
        grad_input = N * (psi * in_elements * (2 * taps - 1) + C_in * in_elements * (C_out // g - 1))
        window = in_elements
    else:  # the adjoint is a transposed layer, counted as the pages count it
        op = tuple(L - output_size(Lo, k, s, p, d, 0, transposed=True)
                   for L, Lo, k, s, p, d in zip(spatial, out_sizes, spec.kernel_size, spec.stride, spec.padding,
                                                spec.dilation))
        adjoint = Layer(f"ConvTranspose{spec.ndim}d", C_out, C_in, spec.kernel_size, spec.stride, spec.padding,
                        spec.dilation, op, g, False)
        grad_input = simulate(adjoint, (N, C_out, *out_sizes), "docs")
        window = out_elements
    return {"grad_input": grad_input, "grad_weight": psi * taps * (2 * N * window - 1), "grad_bias": bias}
