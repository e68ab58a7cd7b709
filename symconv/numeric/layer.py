"""A convolution layer with concrete parameters, validated exactly where torch refuses it.

Every entry point (API, CLI, module profiler) builds a :class:`Layer` and calls
:meth:`Layer.check_input`, so bad input is rejected in one place with a
:class:`~symconv.SymconvError` naming the bad value. The argument types are checked
here; every acceptance rule (bounds, groups, output_padding, output size, padding
modes) is the core's (:mod:`symconv.core.rules`), run as the code generated from it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

from ..core.errors import SymconvError, require_bool
from ..core.names import LAYER_KINDS, PADDING_MODES, canonical_kind
from . import _scalar_generated as generated

try:  # the same rules and expressions compiled to C (_native.c); absent where no C compiler was found at install
    from . import _native as native
except ImportError:  # pragma: no cover - depends on the installation
    native = None

IntOrTuple = Union[int, Sequence[int]]


def is_int(value: object) -> bool:
    """An integer that is not a bool (numpy integers included)."""
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


_INT = frozenset((int,))


def plain_ints(values: Iterable[object]) -> bool:
    """Whether every value is a Python int (not a bool, not a numpy integer): the quickest test of a shape."""
    return _INT.issuperset(map(type, values))


def all_ints(values: Sequence[object]) -> bool:
    """Whether every value is an integer (:func:`is_int`), plain ints tested at once (the common case)."""
    return plain_ints(values) or all(is_int(v) for v in values)


def as_tuple(name: str, value: IntOrTuple, ndim: int) -> tuple[int, ...]:
    """Broadcast an int to ``ndim`` axes; SymconvError unless it is an int or a tuple of ``ndim`` ints."""
    if is_int(value):
        return (int(value),) * ndim
    if isinstance(value, (tuple, list)) and len(value) == ndim:
        for v in value:
            if not is_int(v):
                raise SymconvError(f"{name}={value!r} must hold integers, got {v!r}")
        return tuple(int(v) for v in value)
    raise SymconvError(f"{name}={value!r} must be an int or a tuple of {ndim} ints")


def _short(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(values) == 1 else str(values)


@dataclass(frozen=True)
class Layer:
    """One convolution layer with concrete parameters, as torch's constructor takes them.

    ``padding`` is the left padding of each axis and ``padding_right`` the right
    one (they differ only for ``padding="same"`` with an even total, or where a
    zero pad before the layer was merged into it).
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

    # Worked out once, in __post_init__: every count reads them many times.
    ndim: int = field(init=False, repr=False, compare=False)
    transposed: bool = field(init=False, repr=False, compare=False)
    _axis_parameters: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    @property
    def right_padding(self) -> tuple[int, ...]:
        return self.padding if self.padding_right is None else self.padding_right

    @classmethod
    def make(cls, kind: str, in_channels: int, out_channels: int, kernel_size: IntOrTuple,
             stride: IntOrTuple = 1, padding: IntOrTuple | str = 0, dilation: IntOrTuple = 1,
             output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
             padding_mode: str = "zeros") -> "Layer":
        """Build and validate a layer from torch-style arguments (keywords in any order)."""
        kind = canonical_kind(kind)
        ndim, transposed = LAYER_KINDS[kind]
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not is_int(value):
                raise SymconvError(f"{name}={value!r} must be an integer")
        require_bool("bias", bias)
        k = as_tuple("kernel_size", kernel_size, ndim)
        s = as_tuple("stride", stride, ndim)
        d = as_tuple("dilation", dilation, ndim)
        op = as_tuple("output_padding", output_padding, ndim)
        if not transposed and any(op):
            raise SymconvError(f"output_padding={output_padding!r} applies to transposed convolutions only")
        right = None
        if isinstance(padding, str):
            left, right = _string_padding(padding, kind, k, s, d)
        else:
            left = as_tuple("padding", padding, ndim)
        return cls(kind, int(in_channels), int(out_channels), k, s, left, d, op, int(groups), bias, padding_mode,
                   right if right != left else None)

    # --- torch's rules, as generated from symconv.core.rules ---------------------------------------------

    def axis_arguments(self, axis: int, size: int | None) -> tuple:
        """The generated axis functions' arguments: (L, k, s, p, d, op) or (L, k, s, p, p_right, d)."""
        return (size,) + self._axis_parameters[axis]

    def _describe(self, name: str, spatial: tuple[int, ...] | None, batch: int | None) -> str:
        """How a message shows one symbol of the generated rules: the whole argument and its value."""
        layer_wide = {"N": ("N", batch), "C_in": ("in_channels", self.in_channels),
                      "C_out": ("out_channels", self.out_channels), "groups": ("groups", self.groups)}
        if name in layer_wide:
            label, value = layer_wide[name]
            return f"{label}={value}"
        if name == "L_in":
            return f"input size {spatial}"
        values = self.right_padding if name == "padding_right" else getattr(self, name)
        return f"{name}={_short(values)}"

    def __post_init__(self) -> None:
        ndim, transposed = LAYER_KINDS[self.kind]
        object.__setattr__(self, "ndim", ndim)
        object.__setattr__(self, "transposed", transposed)
        # Each axis' arguments of the generated functions after the size: (k, s, p, d, op) or (k, s, p, p_right, d).
        if transposed:
            axes = zip(self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding)
        else:
            axes = zip(self.kernel_size, self.stride, self.padding, self.right_padding, self.dilation)
        object.__setattr__(self, "_axis_parameters", tuple(axes))
        # A Layer cannot exist with arguments torch refuses.
        if (self.transposed, self.padding_mode) not in generated.AXIS_RULES:
            allowed = ("zeros",) if self.transposed else PADDING_MODES
            raise SymconvError(f"padding_mode={self.padding_mode!r} must be one of {', '.join(allowed)} "
                               f"for {self.kind}")
        self._check(None, None)

    def _check(self, spatial: tuple[int, ...] | None, batch: int | None) -> None:
        """The rules on the layer's own arguments (``spatial`` None) or on an input, in order."""
        phase = 0 if spatial is None else 1
        layer_checks = generated.LAYER_RULES
        broken = layer_checks[phase](batch, self.in_channels, self.out_channels, self.groups)
        if broken >= 0:
            raise SymconvError(layer_checks[2][broken][0].format_map(_Fields(self, spatial, batch)))
        axis_checks = generated.AXIS_RULES[(self.transposed, self.padding_mode)]
        for a in range(self.ndim):
            args = self.axis_arguments(a, None if spatial is None else spatial[a])
            broken = axis_checks[phase](*args)
            if broken >= 0:
                message, value = axis_checks[2][broken]
                text = message.format_map(_Fields(self, spatial, batch, a, value and value(*args)))
                raise SymconvError(text if "{axis}" in message or self.ndim == 1 else f"{text} (axis {a})")

    def check_input(self, input_shape: Sequence[int]) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
        """Validate an input shape (batched or not); return (N, spatial input, spatial output)."""
        shape = tuple(input_shape)
        last = self.__dict__.get("_last_input")  # one input is often checked again (an output shape, then gradients)
        if last is not None and last[0] == shape and plain_ints(shape):
            return last[1]
        checked = self._compiled_check(shape)
        if checked is None:  # the rules in Python, which name what they refuse
            self._check_rank(shape)
            for v in shape:
                if not is_int(v) or v < 1:
                    raise SymconvError(f"input shape {shape!r} must hold positive integers, got {v!r}")
            batch = int(shape[0]) if len(shape) == self.ndim + 2 else 1
            self._check_channels(shape, shape[-self.ndim - 1])
            spatial = tuple(int(v) for v in shape[-self.ndim:])
            self._check(spatial, batch)
            checked = batch, spatial, self.output_size(spatial)
        self.__dict__["_last_input"] = (shape, checked)  # a memo outside the fields: equality is unchanged
        return checked

    def _compiled_check(self, shape: tuple) -> tuple[int, tuple[int, ...], tuple[int, ...]] | None:
        """:meth:`check_input`'s answer from the compiled rules, for an input of ints they accept; else None."""
        found = self.compiled_input_counts(shape, ())
        return None if found is None else found[:3]

    def compiled_input_counts(self, shape: tuple, conventions: tuple[str, ...]) -> tuple | None:
        """:meth:`check_input`'s answer and the counts under ``conventions`` (:meth:`compiled_counts`' rows) from
        the compiled code, in one call, for an input of ints the rules accept: (N, spatial input, spatial output,
        rows). None where the Python path must answer (or name what the rules refuse)."""
        ndim = self.ndim
        if len(shape) not in (ndim + 1, ndim + 2) or shape[-ndim - 1] != self.in_channels or \
                not plain_ints(shape):  # 2.0 == 2 and True == 1, yet neither is a size
            return None
        batch = shape[0] if len(shape) == ndim + 2 else 1
        spatial = shape[-ndim:]
        found = self.compiled_counts(batch, spatial, conventions)
        return None if found is None else (batch, spatial, *found)

    def compiled_counts(self, batch: int, spatial: tuple[int, ...], conventions: tuple[str, ...]) -> tuple | None:
        """torch's rules and the counts under ``conventions`` (canonical names, none for the rules alone) as
        compiled C: (output size, (ψ, multiplications, additions, λ, γ, total, unreached) per convention). None
        where the Python path must answer: data or asymmetric padding, anything but ints within int64, a layer or
        input the rules refuse (the Python rules name what they refuse)."""
        if native is None or self.padding_mode != "zeros" or self.padding_right is not None:
            return None
        return native.layer_counts(self.transposed, (batch, self.in_channels, self.out_channels, self.groups),
                                   spatial, self.kernel_size, self.stride, self.padding, self.dilation,
                                   self.output_padding, self.bias, conventions)

    def _check_rank(self, shape: tuple) -> None:
        """An input has ndim + 1 (unbatched) or ndim + 2 (batched) dimensions, whatever its sizes are."""
        if len(shape) not in (self.ndim + 1, self.ndim + 2):
            raise SymconvError(f"input shape {shape!r} must have {self.ndim + 1} (unbatched) or "
                               f"{self.ndim + 2} (batched) dimensions for {self.kind}")

    def _check_channels(self, shape: tuple, channels: object) -> None:
        """The input's channel size (an int, or a parsed symbolic size) is the layer's in_channels."""
        if channels != self.in_channels:
            raise SymconvError(f"input shape {shape!r} has {channels} channels but in_channels={self.in_channels}")

    def output_size(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """torch's output size on a spatial input size (the layer and input assumed valid)."""
        size = generated.t_L_out if self.transposed else generated.p_L_out
        return tuple(size(*self.axis_arguments(a, L)) for a, L in enumerate(spatial))

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


class _Fields(dict):
    """Message fields of the generated rules, rendered on demand (only the failing rule's message is built)."""

    def __init__(self, layer: Layer, spatial: tuple[int, ...] | None, batch: int | None,
                 axis: int | None = None, value: int | None = None) -> None:
        super().__init__(axis=axis, value=value)
        self.layer, self.spatial, self.batch = layer, spatial, batch

    def __missing__(self, name: str) -> str:
        return self.layer._describe(name, self.spatial, self.batch)


def axis_accepted(transposed: bool, L: int, k: int, s: int, p: int, d: int, op: int = 0) -> bool:
    """Whether torch accepts one zero-padded axis of a layer on an input of size L."""
    arguments, on_input, _ = generated.AXIS_RULES[(transposed, "zeros")]
    args = (L, k, s, p, d, op) if transposed else (L, k, s, p, p, d)
    return (transposed or op == 0) and arguments(*args) < 0 and on_input(*args) < 0


def _string_padding(padding: str, kind: str, k: tuple[int, ...], s: tuple[int, ...],
                    d: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """torch's padding='valid' / 'same' as (left, right) per axis."""
    if LAYER_KINDS[kind][1]:
        raise SymconvError(f"padding={padding!r} is not supported by {kind}: give an int or a tuple")
    if padding == "valid":
        zeros = (0,) * len(k)
        return zeros, zeros
    if padding == "same":
        if any(v != 1 for v in s):
            raise SymconvError(f"padding='same' needs stride=1, got stride={s!r}")
        totals = [di * (ki - 1) for ki, di in zip(k, d)]
        return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)
    raise SymconvError(f"padding={padding!r} must be an int, a tuple, 'same' or 'valid'")
