"""The arguments a profile passes to the model's forward: shapes or tensors, and options.

An argument given as a shape stands for a tensor of that shape; one holding tensors
(a tensor, or a list, tuple or dict of them, with numbers or strings beside them) is
passed as copies or meta stand-ins; anything else (a mode string, a scale, ``None``, a
cache dict, an object or a layer, whatever it holds) is an option, passed as a copy of
itself made with the model's.
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch.utils._pytree import tree_leaves

from ..core.errors import SymconvError
from ..numeric.layer import is_int

# values the copy shares with the user's: nothing can change them
ATOMS = frozenset((bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device))


def is_shape(value: Any) -> bool:
    """A shape: sizes as ints, names or expressions in names."""
    return isinstance(value, (tuple, list)) and bool(value) and \
        all(is_int(v) or isinstance(v, str) or hasattr(v, "free_symbols") for v in value)


def value_text(value: Any, limit: int = 80) -> str:
    """A value as a message names it: an array (anything with a shape but a tensor) by its kind and shape, a dict
    by its entries so named, anything else by its repr on one line, cut short."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {value_text(v, limit)}" for k, v in value.items()) + "}"
    if _is_array(value):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    text = repr(value)
    if "\n" in text:  # on one line: a tensor's repr runs to several
        text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def passed_text(value: Any) -> str:
    """A value passed to forward as itself (an option, a number beside tensors), as a profile lists it."""
    return value_text(value, 40)


def _is_array(value: Any) -> bool:
    """An array of another library than torch (numpy's): its values would be read as an option's, not counted."""
    shape = getattr(value, "shape", None)
    return shape is not None and not isinstance(value, torch.Tensor) and bool(tuple(shape))


def listed(inputs: Any) -> tuple[list, tuple[str, ...]]:
    """The inputs as a list of values in order, and the names of the last ones, which are passed by name: a dict
    passes every value by name."""
    if isinstance(inputs, dict):
        if not inputs or not all(isinstance(k, str) and k.isidentifier() for k in inputs):
            raise SymconvError(f"inputs={value_text(inputs)}: a dict of inputs maps names of forward's "
                               f"arguments to shapes, tensors or options")
        return list(inputs.values()), tuple(inputs)
    if is_shape(inputs) or isinstance(inputs, torch.Tensor):
        return [inputs], ()
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(v, numbers.Number) or is_shape([v])
                                                            for v in inputs):
        bad = next(v for v in inputs if not is_shape([v]))  # a shape with a size that is not one: 1.0, True
        raise SymconvError(f"input shape {tuple(inputs)!r}: {bad!r} ({type(bad).__name__}) is not a size (a "
                           f"positive integer, a name or an expression in names)")
    if isinstance(inputs, (tuple, list)) and inputs:
        return list(inputs), ()
    advice = " (an array is given as a tensor: torch.as_tensor(array))" if hasattr(inputs, "__array__") else ""
    raise SymconvError(f"inputs={value_text(inputs)} must be a shape (ints, names), a sequence of shapes, a tensor, "
                       f"a tuple of tensors, or a dict of shapes or tensors by argument name{advice}")


def holds_tensors(value: Any) -> bool:
    """A tensor, or a list, tuple or dict of them (at any depth, numbers and strings beside them), as one argument
    of forward."""
    leaves = tree_leaves(value)
    return any(isinstance(t, torch.Tensor) for t in leaves) and \
        all(isinstance(t, torch.Tensor) or type(t) in ATOMS for t in leaves)


def _is_option(value: Any) -> bool:
    """An argument passed as itself: neither a shape nor a tensor, an array, or a list, tuple or dict holding one
    (an object is one, whatever it holds: the copier copies its tensors)."""
    return not is_shape(value) and not any(isinstance(v, torch.Tensor) or _is_array(v) for v in tree_leaves(value))


@dataclass(frozen=True)
class Signature:
    """How forward is called: ``count`` arguments, the last ``len(names)`` by name; those at the positions of
    ``options`` are passed as themselves (copied), the others are the shapes or tensors a profile runs on."""

    count: int
    names: tuple[str, ...]
    options: tuple[tuple[int, Any], ...] = ()

    @classmethod
    def of(cls, values: list, names: tuple[str, ...]) -> tuple[Signature, list]:
        """The signature of arguments ``values`` (the last named ``names``), and the shapes or tensors among them."""
        options = tuple((i, v) for i, v in enumerate(values) if _is_option(v))
        taken = {i for i, _ in options}
        return cls(len(values), names, options), [v for i, v in enumerate(values) if i not in taken]

    @property
    def values(self) -> tuple[Any, ...]:
        """The options' values, in order."""
        return tuple(v for _, v in self.options)

    @property
    def given_names(self) -> tuple[str, ...]:
        """The names of the shapes or tensors passed by name."""
        taken = {i for i, _ in self.options}
        first = self.count - len(self.names)
        return tuple(n for i, n in enumerate(self.names, first) if i not in taken)

    def merged(self, given: Sequence[Any], options: Sequence[Any] | None = None) -> list:
        """Every argument in order: the given ones (shapes, tensors, or texts of them) with ``options`` (by default
        the options' own values) in their places."""
        placed = dict(zip((i for i, _ in self.options), self.values if options is None else options))
        rest = iter(given)
        return [placed[i] if i in placed else next(rest) for i in range(self.count)]

    def inputs(self, given: Sequence[Any]) -> Any:
        """The inputs as ``profile`` takes them, the given ones (shapes, tensors) with the options' own values."""
        merged = self.merged(given)
        return dict(zip(self.names, merged)) if self.names else merged

    def call(self, model: torch.nn.Module, given: Sequence[Any], options: Sequence[Any]) -> Any:
        """The model run on the given inputs and ``options`` (copies of the options' values)."""
        merged = self.merged(given, options)
        split = self.count - len(self.names)
        return model(*merged[:split], **dict(zip(self.names, merged[split:])))

    def texts(self, given: Sequence[Any]) -> list:
        """The arguments as a profile lists them: the given ones' shapes (``given``), the options as text."""
        return self.merged(given, [passed_text(v) for v in self.values])


def given_shapes(values: list) -> list[tuple] | None:
    """The input shapes where every input is given as a shape, else None."""
    return [tuple(v) for v in values] if all(is_shape(v) for v in values) else None


def given_dtypes(dtype: Any, count: int, names: tuple[str, ...], model: torch.nn.Module) -> list[torch.dtype]:
    """The dtype of each input given as a shape: ``dtype`` (one for all, one per shape, or by name for inputs given
    by name), else (or where it is None) the model's own (a half-precision model takes half-precision inputs),
    torch's default where the model holds no floating-point tensor."""
    if isinstance(dtype, torch.dtype):
        return [dtype] * count
    if isinstance(dtype, dict) and names and set(dtype) <= set(names):
        dtype = [None] * (count - len(names)) + [dtype.get(n) for n in names]
    found = [None] * count if dtype is None else list(dtype) if isinstance(dtype, (tuple, list)) else []
    if len(found) != count or not all(d is None or isinstance(d, torch.dtype) for d in found):
        raise SymconvError(f"dtype={dtype!r} must be a torch.dtype, one per input shape ({count}; None for the "
                           f"model's), or, for inputs given by name, a dict of them by name")
    if None in found:
        floating = (t.dtype for t in itertools.chain(model.parameters(), model.buffers()) if t.is_floating_point())
        own = next(floating, torch.get_default_dtype())
        found = [own if d is None else d for d in found]
    return found


def example_inputs(values: list, shapes: list[tuple] | None, dtypes: list[torch.dtype]
                   ) -> tuple[tuple[Any, ...], bool]:
    """(tensors, whether they are the user's own): each shape becomes a meta tensor of its dtype."""
    if shapes is not None:
        for shape in shapes:
            if any(v < 1 for v in shape):
                raise SymconvError(f"input shape {shape!r} must hold positive integers")
        return tuple(torch.empty(tuple(int(v) for v in shape), dtype=dtype, device="meta")
                     for shape, dtype in zip(shapes, dtypes)), False
    if all(holds_tensors(v) for v in values):
        return tuple(values), True
    kinds = ", ".join("a tensor" if holds_tensors(v) else "a shape" if is_shape(v) else
                      value_text(v) if _is_array(v) else f"{value_text(v)} ({type(v).__name__})"
                      for v in values)
    raise SymconvError(f"the inputs must all be shapes or all be tensors, not {kinds} (an argument made of several "
                       f"tensors is given as tensors: torch.empty(shape, device='meta') costs nothing)")
