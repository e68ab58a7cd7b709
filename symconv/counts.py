"""Exact counts for concrete layers: the one path from a LayerSpec to numbers.

Every number comes from the model's resolved expressions, compiled once per
(layer kind, quantity, convention, bias) and evaluated on Python ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from .conventions import get_convention
from .layers import LayerSpec, as_tuple, check_axes, is_int
from .model import layer
from .numeric import NumericFunction, compile_expr

try:  # the hybrids compiled to C (symconv/_native.c); absent where no C compiler was found at install
    from ._native import additions_per_filter as _native_additions
except ImportError:  # pragma: no cover - depends on the installation
    _native_additions = None


@lru_cache(maxsize=None)
def compiled(kind: str, quantity: str, convention: str = "docs", bias: bool = True) -> NumericFunction:
    """A quantity as a function of channels and per-axis (L, L_out, k, S, Z), compiled once."""
    model = layer(kind)
    expr = model.resolve(model.quantity(quantity, convention=convention, bias=bias), through="additions")
    return compile_expr(expr, model.count_parameters())


@lru_cache(maxsize=None)
def axis_functions(transposed: bool, asymmetric: bool = False) -> tuple[NumericFunction, ...]:
    """(L_out, S, Z) of one axis as functions of its parameters: the overlap engine's hybrids."""
    model = layer("ConvTranspose1d" if transposed else "Conv1d", asymmetric=asymmetric)
    a = model.axes[0]
    return tuple(compile_expr(model.resolve(q), model.axis_parameters()) for q in (a.L_out, a.S, a.Z))


def axis_counts(spec: LayerSpec, spatial: Sequence[int]) -> list[tuple[int, int, int]]:
    """(L_out, S, Z) of every axis of a layer on a spatial input size."""
    asymmetric = spec.padding_right is not None
    fns = axis_functions(spec.transposed, asymmetric)
    rows = []
    for a in range(spec.ndim):
        args = [spatial[a], spec.kernel_size[a], spec.stride[a], spec.padding[a]]
        args += [spec.right_padding[a]] if asymmetric else []
        args += [spec.dilation[a]] + ([spec.output_padding[a]] if spec.transposed else [])
        rows.append(tuple(fn.scalar(*args) for fn in fns))
    return rows


def _data_padding(spec: LayerSpec, spatial: tuple[int, ...]) -> tuple[LayerSpec, tuple[int, ...]]:
    """Reflect/replicate/circular padding pads with real data: the same arithmetic as an unpadded
    layer on the padded input."""
    if spec.padding_mode == "zeros":
        return spec, spatial
    padded = tuple(L + pl + pr for L, pl, pr in zip(spatial, spec.padding, spec.right_padding))
    zeros = (0,) * spec.ndim
    return LayerSpec(spec.kind, spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride, zeros,
                     spec.dilation, spec.output_padding, spec.groups, spec.bias), padded


@dataclass(frozen=True)
class LayerCount:
    """ψ, per-filter counts, γ and the total of one layer on one input, under one convention."""

    layer: LayerSpec
    convention: str
    batch: int
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    psi: int
    multiplications: int
    additions: int
    lam: int
    gamma: int
    total: int
    unreached: int = 0  # output elements of a filter that no product reaches (docs counts -1 addition each)

    def as_dict(self) -> dict[str, object]:
        return {"psi": self.psi, "multiplications": self.multiplications, "additions": self.additions,
                "lambda": self.lam, "gamma": self.gamma, "total": self.total}


def _count_arguments(spec: LayerSpec, batch: int, spatial: tuple[int, ...]) -> tuple[list[int], int]:
    """Arguments of the compiled quantities, and the output elements no product reaches."""
    effective, eff_spatial = _data_padding(spec, spatial)
    args = [batch, spec.in_channels, spec.out_channels, spec.groups]
    elements = reached = 1
    for L, (L_out, S, Z), k in zip(eff_spatial, axis_counts(effective, eff_spatial), spec.kernel_size):
        args += [L, L_out, k, S, Z]
        elements, reached = elements * L_out, reached * Z
    return args, elements - reached


def count_layer(spec: LayerSpec, input_shape: Sequence[int], convention: str = "docs") -> LayerCount:
    """Exact counts of a layer on an input shape (batched or not); ValueError on invalid input."""
    conv = get_convention(convention).name
    batch, spatial, out = spec.check_input(input_shape)
    args, unreached = _count_arguments(spec, batch, spatial)

    def value(quantity: str) -> int:
        return compiled(spec.kind, quantity, conv, spec.bias).scalar(*args)

    psi = spec.in_channels * spec.out_channels // spec.groups
    mult, add = value("multiplications"), value("additions")
    return LayerCount(spec, conv, batch, spatial, out, psi, mult, add, mult + add, value("gamma"), value("total"),
                      unreached)


def additions_per_filter(input_size: int | Sequence[int], kernel_size: int | Sequence[int],
                         stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                         dilation: int | Sequence[int] = 1, output_padding: int | Sequence[int] = 0, *,
                         convention: str = "docs", transposed: bool = True) -> int:
    """Additions per filter of a (transposed, by default) convolution, exactly.

    Ints or tuples; the number of spatial axes is the length of ``input_size``.
    Conventions: "docs" (the pages' sum(y - 1) of the ones-convolution y),
    "exact" (ΠS - ΠZ: additions that combine products reaching the output),
    "macs" (0: a multiply-accumulate count has no separate additions).

    The compiled rendering of the hybrids answers calls on plain ints within int64;
    every other call (NumPy integers, huge sizes, invalid layers) takes the Python path.
    """
    if _native_additions is not None:
        value = _native_additions(input_size, kernel_size, stride, padding, dilation, output_padding,
                                  convention, transposed)
        if value is not None:
            return value
    return python_additions_per_filter(input_size, kernel_size, stride, padding, dilation, output_padding,
                                       convention=convention, transposed=transposed)


def python_additions_per_filter(input_size: int | Sequence[int], kernel_size: int | Sequence[int],
                                stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                                dilation: int | Sequence[int] = 1, output_padding: int | Sequence[int] = 0, *,
                                convention: str = "docs", transposed: bool = True) -> int:
    """:func:`additions_per_filter` through the lambdified hybrids on Python ints, validating every argument."""
    ndim = 1 if is_int(input_size) else len(input_size) if isinstance(input_size, (tuple, list)) else 0
    if ndim not in (1, 2, 3):
        raise ValueError(f"input_size={input_size!r} must be an int or a tuple of 1, 2 or 3 ints")
    L = as_tuple("input_size", input_size, ndim, 1)
    kind = ("ConvTranspose" if transposed else "Conv") + f"{ndim}d"
    spec = LayerSpec.make(kind, 1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation,
                          output_padding=output_padding)
    conv = get_convention(convention).name
    check_axes(transposed, L, spec.kernel_size, spec.stride, spec.padding, spec.dilation, spec.output_padding)
    return compiled(kind, "additions", conv).scalar(*_count_arguments(spec, 1, L)[0])
