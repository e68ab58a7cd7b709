"""Concrete convolution layers: names, parameters and torch's validity rules.

Pure Python. Every entry point (API, CLI, module profiler) builds a
:class:`LayerSpec` and calls :meth:`LayerSpec.check_input` so that bad input is
rejected in one place, with a ``ValueError`` naming the bad value, exactly where
torch would reject the layer.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence, Union

from .counting import plain_output_size, transposed_output_size

IntOrTuple = Union[int, Sequence[int]]

#: canonical name -> (spatial axes, transposed)
LAYER_KINDS: dict[str, tuple[int, bool]] = {
    "Conv1d": (1, False),
    "Conv2d": (2, False),
    "Conv3d": (3, False),
    "ConvTranspose1d": (1, True),
    "ConvTranspose2d": (2, True),
    "ConvTranspose3d": (3, True),
}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def canonical_kind(name: str) -> str:
    """'convtranspose2d' -> 'ConvTranspose2d'; ValueError for unknown names."""
    for kind in LAYER_KINDS:
        if kind.lower() == str(name).lower():
            return kind
    raise ValueError(f"unknown layer {name!r}: expected one of {', '.join(LAYER_KINDS)}")


def is_int(value: object) -> bool:
    """An integer that is not a bool (numpy integers included)."""
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


def as_tuple(name: str, value: IntOrTuple, ndim: int, minimum: int) -> tuple[int, ...]:
    """Broadcast an int to ``ndim`` axes and check every entry is an int >= minimum."""
    if is_int(value):
        values = (value,) * ndim
    elif isinstance(value, (tuple, list)) and len(value) == ndim:
        values = tuple(value)
    else:
        raise ValueError(f"{name}={value!r} must be an int or a tuple of {ndim} ints")
    for v in values:
        if not is_int(v):
            raise ValueError(f"{name}={value!r} must hold integers, got {v!r}")
        if v < minimum:
            raise ValueError(f"{name}={value!r} must be >= {minimum}")
    return tuple(map(int, values))


def check_output_padding(output_padding: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> None:
    """torch's rule: on every axis output_padding < stride or output_padding < dilation."""
    for a, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if not (op < s or op < d):
            raise ValueError(f"output_padding={tuple(output_padding)!r} must be smaller than "
                             f"stride={tuple(stride)!r} or dilation={tuple(dilation)!r} (axis {a})")


def check_axes(transposed: bool, input_size: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int],
               padding: Sequence[int], dilation: Sequence[int], output_padding: Sequence[int],
               padding_right: Sequence[int] | None = None) -> tuple[int, ...]:
    """Validate per-axis parameters as torch does; return the output sizes."""
    right = padding if padding_right is None else padding_right
    out = []
    if transposed:
        check_output_padding(output_padding, stride, dilation)
    for a, L in enumerate(input_size):
        if transposed:
            size = transposed_output_size(L, kernel_size[a], stride[a], padding[a], dilation[a], output_padding[a])
        else:
            size = plain_output_size(L, kernel_size[a], stride[a], padding[a], dilation[a], right[a])
        if size < 1:
            raise ValueError(f"output size {size} < 1 on axis {a} for input size {tuple(input_size)!r}: "
                             f"kernel_size, padding or dilation too large")
        out.append(size)
    return tuple(out)


@dataclass(frozen=True)
class LayerSpec:
    """One convolution layer with concrete parameters, as torch's constructor takes them.

    ``padding`` is the left padding of each axis and ``padding_right`` the right
    one (they differ only for ``padding="same"`` with an even total).
    """

    kind: str
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    padding_right: tuple[int, ...] | None = None

    @property
    def ndim(self) -> int:
        return LAYER_KINDS[self.kind][0]

    @property
    def transposed(self) -> bool:
        return LAYER_KINDS[self.kind][1]

    @property
    def right_padding(self) -> tuple[int, ...]:
        return self.padding if self.padding_right is None else self.padding_right

    @classmethod
    def make(cls, kind: str, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
             stride: IntOrTuple = 1, padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1,
             output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
             padding_mode: str = "zeros") -> "LayerSpec":
        """Build and validate a layer from torch-style arguments (keywords in any order)."""
        kind = canonical_kind(kind)
        ndim, transposed = LAYER_KINDS[kind]
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not is_int(value) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        if not isinstance(bias, bool):
            raise ValueError(f"bias={bias!r} must be True or False")
        if padding_mode not in PADDING_MODES or (transposed and padding_mode != "zeros"):
            allowed = ("zeros",) if transposed else PADDING_MODES
            raise ValueError(f"padding_mode={padding_mode!r} must be one of {', '.join(allowed)} for {kind}")
        k = as_tuple("kernel_size", kernel_size, ndim, 1)
        s = as_tuple("stride", stride, ndim, 1)
        d = as_tuple("dilation", dilation, ndim, 1)
        op = as_tuple("output_padding", output_padding, ndim, 0)
        if not transposed and any(op):
            raise ValueError(f"output_padding={output_padding!r} applies to transposed convolutions only")
        right = None
        if isinstance(padding, str):
            left, right = _string_padding(padding, kind, k, s, d)
        else:
            left = as_tuple("padding", padding, ndim, 0)
        if transposed:
            check_output_padding(op, s, d)
        return cls(kind, in_channels, out_channels, k, s, left, d, op, groups, bias, padding_mode,
                   right if right != left else None)

    def check_input(self, input_shape: Sequence[int]) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """Validate an input shape (batched or not); return (N, spatial input, spatial output)."""
        shape = tuple(input_shape)
        if len(shape) not in (self.ndim + 1, self.ndim + 2):
            raise ValueError(f"input shape {shape!r} must have {self.ndim + 1} (unbatched) or "
                             f"{self.ndim + 2} (batched) dimensions for {self.kind}")
        for v in shape:
            if not is_int(v) or v < 1:
                raise ValueError(f"input shape {shape!r} must hold positive integers, got {v!r}")
        batch = shape[0] if len(shape) == self.ndim + 2 else 1
        channels = shape[-self.ndim - 1]
        if channels != self.in_channels:
            raise ValueError(f"input shape {shape!r} has {channels} channels but in_channels={self.in_channels}")
        spatial = tuple(int(v) for v in shape[-self.ndim:])
        out = check_axes(self.transposed, spatial, self.kernel_size, self.stride, self.padding, self.dilation,
                         self.output_padding, self.padding_right)
        return int(batch), spatial, out

    def constructor(self) -> str:
        """The torch constructor call that builds this layer."""
        def short(t: tuple[int, ...]) -> str:
            return str(t[0]) if len(set(t)) == 1 else str(t)
        parts = [str(self.in_channels), str(self.out_channels), short(self.kernel_size)]
        extra = [("stride", self.stride, 1), ("padding", self.padding, 0), ("dilation", self.dilation, 1),
                 ("output_padding", self.output_padding, 0)]
        if self.padding_right is not None:
            extra[1] = ("padding", "'same'", None)  # only 'same' makes left and right differ
        for name, value, default in extra:
            if isinstance(value, str):
                parts.append(f"{name}={value}")
            elif any(v != default for v in value):
                parts.append(f"{name}={short(value)}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.padding_mode != "zeros":
            parts.append(f"padding_mode={self.padding_mode!r}")
        return f"{self.kind}({', '.join(parts)})"


def _string_padding(padding: str, kind: str, k: tuple[int, ...], s: tuple[int, ...],
                    d: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """torch's padding='valid' / 'same' as (left, right) per axis."""
    if LAYER_KINDS[kind][1]:
        raise ValueError(f"padding={padding!r} is not supported by {kind}: give an int or a tuple")
    if padding == "valid":
        zeros = (0,) * len(k)
        return zeros, zeros
    if padding == "same":
        if any(v != 1 for v in s):
            raise ValueError(f"padding='same' needs stride=1, got stride={s!r}")
        totals = [di * (ki - 1) for ki, di in zip(k, d)]
        return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)
    raise ValueError(f"padding={padding!r} must be an int, a tuple, 'same' or 'valid'")
