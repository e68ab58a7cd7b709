"""Exact counts for concrete layers: the one path from a :class:`Layer` to numbers.

Every number comes from the core's resolved expressions, generated once as plain
Python (``_scalar_generated.py``) and evaluated on Python ints: exact at any size,
and no SymPy at run time. :func:`count_layers` and ``additions_per_filter`` try
the same expressions compiled to C first (``_native.c``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..core.errors import SymconvError, require_bool
from ..core.names import convention_name, kind_of
from . import _scalar_generated as generated
from .layer import Layer, all_ints, as_tuple, is_int, native

_native_additions = getattr(native, "additions_per_filter", None)


def axis_counts(layer: Layer, spatial: Sequence[int], S: bool = True, Z: bool = True
                ) -> list[tuple[int, int | None, int | None]]:
    """(L_out, S, Z) of every axis of a valid layer on a spatial input size; S or Z None where not asked for."""
    if layer.transposed:
        fns = (generated.t_L_out, generated.t_S, generated.t_Z)
    else:
        fns = (generated.p_L_out, generated.p_S, generated.p_Z)
    rows = []
    for a, L in enumerate(spatial):
        args = layer.axis_arguments(a, L)
        rows.append((fns[0](*args), fns[1](*args) if S else None, fns[2](*args) if Z else None))
    return rows


def gradient_axis_counts(layer: Layer, spatial: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """(L_out, S, Z_in, Z_tap) of every axis of a valid (zero-padded) layer on a spatial input size: what its
    gradients need (see :mod:`symconv.core.backward`)."""
    if layer.transposed:
        fns = (generated.t_L_out, generated.t_S, generated.t_Zin, generated.t_Ztap)
    else:
        fns = (generated.p_L_out, generated.p_S, generated.p_Zin, generated.p_Ztap)
    return [tuple(fn(*layer.axis_arguments(a, L)) for fn in fns) for a, L in enumerate(spatial)]


def _data_padding(layer: Layer, spatial: tuple[int, ...]) -> tuple[Layer, tuple[int, ...]]:
    """Reflect/replicate/circular padding pads with real data: the same arithmetic as an unpadded
    layer on the padded input."""
    if layer.padding_mode == "zeros":
        return layer, spatial
    padded = tuple(L + pl + pr for L, pl, pr in zip(spatial, layer.padding, layer.right_padding))
    zeros = (0,) * layer.ndim
    return Layer(layer.kind, layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, zeros,
                 layer.dilation, layer.output_padding, layer.groups, layer.bias), padded


@dataclass(frozen=True)
class LayerCount:
    """ψ, per-filter counts, γ and the total of one layer on one input, under one convention."""

    layer: Layer
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
    unreached: int = 0  # docs, transposed: output elements of a filter no product reaches (-1 addition each)

    def as_dict(self) -> dict[str, object]:
        return {"psi": self.psi, "multiplications": self.multiplications, "additions": self.additions,
                "lambda": self.lam, "gamma": self.gamma, "total": self.total}


def _count_arguments(layer: Layer, batch: int, spatial: tuple[int, ...], convention: str) -> tuple[list, int]:
    """Arguments of the generated quantities of a convention, and the output elements no product reaches.

    Only the axis counts the convention uses are computed (macs needs neither S nor Z);
    the unreached elements matter to the docs convention of a transposed layer only,
    whose sum(y - 1) counts -1 addition at each.
    """
    effective, eff_spatial = _data_padding(layer, spatial)
    needs_S, needs_Z = generated.NEEDS[(layer.kind, convention)]
    unreached_matters = convention == "docs" and layer.transposed
    args = [batch, layer.in_channels, layer.out_channels, layer.groups]
    elements = reached = 1
    counts = axis_counts(effective, eff_spatial, S=needs_S, Z=needs_Z or unreached_matters)
    for L, (L_out, S, Z), k in zip(eff_spatial, counts, layer.kernel_size):
        args += [L, L_out, k, S, Z]
        if unreached_matters:
            elements, reached = elements * L_out, reached * Z
    return args, elements - reached


def count_gradients(layer: Layer, input_shape: Sequence[int], convention: str = "exact") -> dict[str, int]:
    """Operations of the backward pass of a layer on an input shape: grad_input, grad_weight, grad_bias.

    Each as if computed (see :mod:`symconv.core.backward` for what each convention
    counts); callers keep those a training step runs. Sizes may be names or
    expressions in names, as for :func:`count_layer`: the counts are then closed
    forms, which hold within the forward count's domain.
    """
    conv = convention_name(convention)
    input_shape = _checked_shape(layer, input_shape)
    if not all_ints(input_shape):
        return _gradients_sized(layer, input_shape, conv)
    batch, spatial, _ = layer.check_input(input_shape)
    effective, eff_spatial = _data_padding(layer, spatial)
    args = [batch, layer.in_channels, layer.out_channels, layer.groups]
    for L, k, (L_out, S, Z_in, Z_tap) in zip(eff_spatial, layer.kernel_size, gradient_axis_counts(effective,
                                                                                                 eff_spatial)):
        args += [L, L_out, k, S, Z_in, Z_tap]
    return {which: generated.GRADIENTS[(layer.kind, conv, which)](*args)
            for which in ("grad_input", "grad_weight", "grad_bias")}


def count_layer(layer: Layer, input_shape: Sequence, convention: str = "docs") -> LayerCount:
    """Exact counts of a layer on an input shape (batched or not); SymconvError on invalid input.

    Sizes may be names or expressions in names (``(1, 512, "H", "W")``, ``"8*h"``):
    the counts are then closed forms in those names, with their domain
    (:class:`symconv.core.sized.SizedCount`).
    """
    conv = convention_name(convention)
    return count_layers(layer, _checked_shape(layer, input_shape), (conv,))[conv]


def _checked_shape(layer: Layer, input_shape: Any) -> tuple:
    """The arguments of the public counts, checked for their kinds: a :class:`Layer`, and an input shape given as a
    sequence of sizes (a string would be read a character at a time)."""
    if not isinstance(layer, Layer):
        raise SymconvError(f"layer={type(layer).__name__} must be a symconv.Layer: Layer.make(...), or "
                           f"symconv.layer_from_module(module) for a torch module")
    if not isinstance(input_shape, (tuple, list)):
        raise SymconvError(f"input_shape={input_shape!r} must be a tuple of sizes (ints, names or expressions in "
                           f"names), e.g. (1, 3, 224, 224)")
    return tuple(input_shape)


def count_layers(layer: Layer, input_shape: Sequence, conventions: tuple[str, ...]) -> dict[str, LayerCount]:
    """:func:`count_layer` under each of several conventions (canonical names), by convention.

    On ints the compiled expressions answer where they can (zero padding, the same on
    both sides, every value within int64), all conventions in one call; the generated
    Python answers the rest, with unbounded ints.
    """
    if not all_ints(input_shape):
        return {c: _count_sized(layer, tuple(input_shape), c) for c in conventions}
    found = layer.compiled_input_counts(tuple(input_shape), conventions)  # the rules and the counts, in one call
    if found is not None:
        batch, spatial, out, rows = found
        return {c: LayerCount(layer, c, batch, spatial, out, *row) for c, row in zip(conventions, rows)}
    batch, spatial, out = layer.check_input(input_shape)
    return {c: python_count_layer(layer, batch, spatial, out, c) for c in conventions}


def python_count_layer(layer: Layer, batch: int, spatial: tuple[int, ...], out: tuple[int, ...],
                       convention: str) -> LayerCount:
    """The counts of a checked layer and input through the generated Python, on Python ints."""
    args, unreached = _count_arguments(layer, batch, spatial, convention)

    def value(quantity: str) -> int:
        return generated.QUANTITIES[(layer.kind, convention, quantity, layer.bias)](*args)

    psi = layer.in_channels * layer.out_channels // layer.groups
    mult, add = value("multiplications"), value("additions")
    return LayerCount(layer, convention, batch, spatial, out, psi, mult, add, mult + add, value("gamma"),
                      value("total"), unreached)


def _checked_sizes(layer: Layer, shape: tuple) -> tuple[Any, tuple]:
    """(batch, spatial sizes) of a symbolic input shape, its rank, channels and numeric sizes checked."""
    from ..core.sizes import parse_size  # SymPy: loaded only for symbolic sizes
    sizes = [parse_size(v) for v in shape]
    layer._check_rank(shape)
    layer._check_channels(shape, sizes[-layer.ndim - 1])
    for v in sizes:
        if is_int(v) and v < 1:
            raise SymconvError(f"input shape {shape!r} must hold positive sizes, got {v!r}")
    return sizes[0] if len(sizes) == layer.ndim + 2 else 1, tuple(sizes[-layer.ndim:])


def _count_sized(layer: Layer, shape: tuple, convention: str):
    """:func:`count_layer` with symbolic sizes: SymPy closed forms, no counter left in them."""
    from ..core.sized import sized_count
    batch, spatial = _checked_sizes(layer, shape)
    return sized_count(layer.kind, layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                       layer.padding, layer.right_padding, layer.dilation, layer.output_padding, layer.groups,
                       layer.bias, layer.padding_mode, batch, spatial, convention)


def _gradients_sized(layer: Layer, shape: tuple, convention: str) -> dict[str, Any]:
    """:func:`count_gradients` with symbolic sizes: SymPy closed forms, no counter left in them."""
    from ..core.sized import sized_gradients
    batch, spatial = _checked_sizes(layer, shape)
    return sized_gradients(layer.kind, layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                           layer.padding, layer.right_padding, layer.dilation, layer.output_padding, layer.groups,
                           layer.padding_mode, batch, spatial, convention)[0]


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
    """:func:`additions_per_filter` through the generated Python on Python ints, validating every argument."""
    require_bool("transposed", transposed)
    ndim = 1 if is_int(input_size) else len(input_size) if isinstance(input_size, (tuple, list)) else 0
    if ndim not in (1, 2, 3):
        raise SymconvError(f"input_size={input_size!r} must be an int or a tuple of 1, 2 or 3 ints")
    L = as_tuple("input_size", input_size, ndim)
    conv = convention_name(convention)
    kind = kind_of(ndim, transposed)
    layer = Layer.make(kind, 1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation,
                       output_padding=output_padding)
    layer.check_input((1, *L))
    return generated.QUANTITIES[(kind, conv, "additions", True)](*_count_arguments(layer, 1, L, conv)[0])


def count_matmul(rows: int, inner: int, columns: int, bias: bool, convention: str = "docs") -> int:
    """Exact operations of an (rows × inner)·(inner × columns) matrix product, plus a bias when ``bias``."""
    return generated.MATMUL[(convention_name(convention), bool(bias))](rows, inner, columns)


def count_sparse_matmul(stored: int, lines: int, per_line: int, bias: bool) -> int:
    """Exact operations of a product with one sparse factor that stores ``stored`` elements on ``lines`` of its
    lines (rows of a left factor, columns of a right one), each line making ``per_line`` outputs; plus a bias."""
    return generated.SPARSE_MATMUL[bool(bias)](stored, lines, per_line)
