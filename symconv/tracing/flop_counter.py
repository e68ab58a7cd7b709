"""symconv's counts inside torch's own ``FlopCounterMode``.

:func:`flop_counter_mapping` returns a ``custom_mapping``: with it,
``FlopCounterMode(custom_mapping=symconv.flop_counter_mapping("exact"))`` reports
symconv's counts for every operator the profiler counts (the rules of :mod:`.ops`:
convolutions, their gradients, matrix products, the fused attentions, transformer
layer and LSTM layer) instead of torch's formulas, which count transposed layers
over the input, ignore cropping by padding and output_padding, multiply a grouped
convolution's weight gradient by the number of groups, and leave the fused kernels
of an inference pass out. torch's global formula registry, which Inductor reads, is
never changed: the mapping applies to the counter it is given to only.

FlopCounterMode calls each formula with the operator's own arguments; it cannot see
zero padding applied before a convolution, which :func:`symconv.profile` merges into
the layer (so under the exact convention a ``padding="same"`` convolution with an
even kernel counts a little more here).
"""

from __future__ import annotations

from typing import Any, Callable

from ..core.errors import SymconvError
from ..core.names import convention_name
from .counting_mode import operands
from .ops import RULES, Context, Rule, takes


def _total(packet: Any, rule: Rule, context: Context) -> Callable[..., int]:
    def formula(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        shaped, named = operands(args, kwargs)  # nested tensors as their components' shapes
        if not takes(rule, (*shaped, *named.values())):
            raise SymconvError(f"{packet} on a nested tensor: symconv's rule for it counts plain tensors only")
        return sum(entry.totals[context.conventions[0]] for entry in rule(*shaped, **named, context=context))

    formula._get_raw = True  # FlopCounterMode passes the tensors themselves, which the shapes above come from
    formula.__doc__ = rule.__doc__
    return formula


def flop_counter_mapping(convention: str = "exact") -> dict[Any, Callable[..., int]]:
    """A ``custom_mapping`` for ``torch.utils.flop_counter.FlopCounterMode`` with symconv's counts.

    Covers every operator symconv's profiler counts (``aten.convolution``,
    ``aten.convolution_backward``, the matrix products, the fused attentions, …);
    ``convention`` is "exact" (default), "docs" or "macs" (then FlopCounterMode's
    "FLOPs" are multiply-accumulates).
    """
    context = Context((convention_name(convention),))
    return {packet: _total(packet, rule, context) for packet, rule in RULES.items()}
