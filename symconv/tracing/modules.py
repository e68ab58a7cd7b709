"""Read torch.nn convolution modules into :class:`~symconv.numeric.layer.Layer` s, without importing torch."""

from __future__ import annotations

from typing import Any, Sequence

from ..core.errors import SymconvError
from ..core.names import LAYER_KINDS
from ..numeric.layer import Layer
from ..numeric.layer_counts import count_layer


def module_kind(module: Any) -> str | None:
    """The convolution kind of a torch.nn module (subclasses included), or None."""
    for cls in type(module).__mro__:
        if cls.__name__ in LAYER_KINDS and cls.__module__.startswith("torch.nn"):
            return cls.__name__
    return None


def layer_from_module(module: Any) -> Layer:
    """The :class:`Layer` of a torch.nn.Conv*/ConvTranspose* module; SymconvError for anything else."""
    kind = module_kind(module)
    if kind is None:
        raise SymconvError(f"{type(module).__name__} is not a torch.nn convolution layer "
                           f"({', '.join(LAYER_KINDS)})")
    uninitialized = getattr(module, "has_uninitialized_params", None)  # a lazy module's (read without torch)
    if uninitialized is not None and uninitialized():
        raise SymconvError(f"{type(module).__name__} has not inferred in_channels yet: run it once on an input, or "
                           f"count the model it is in with symconv.profile")
    return Layer.make(kind, module.in_channels, module.out_channels, tuple(module.kernel_size),
                          stride=tuple(module.stride),
                          padding=module.padding if isinstance(module.padding, str) else tuple(module.padding),
                          dilation=tuple(module.dilation), output_padding=tuple(module.output_padding),
                          groups=module.groups, bias=module.bias is not None, padding_mode=module.padding_mode)


def count_ops(module: Any, input_shape: Sequence[int], convention: str = "docs") -> int:
    """Total operations of a convolution module on an input shape, exactly, without running it.

    ``input_shape`` may be batched (N, C, *spatial) or unbatched (C, *spatial; N = 1).
    Conventions: "docs", "exact", "macs" (see :mod:`symconv.core.conventions`).
    """
    return count_layer(layer_from_module(module), input_shape, convention).total
