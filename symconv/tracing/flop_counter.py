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

FlopCounterMode calls each formula with the operator's own arguments. The mapping
also takes ``constant_pad_nd`` (0 operations) to remember zero padding, which it
merges into the convolution that reads the padded tensor, as :func:`symconv.profile`
does (``padding="same"`` with an even kernel, a pad-then-convolve layer).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..core.errors import SymconvError
from ..core.names import convention_name
from .counting_mode import CONVOLVES, ZeroPads, operands
from .ops import RULES, Context, Rule, takes

aten = torch.ops.aten


def _total(packet: Any, rule: Rule, context: Context, pads: ZeroPads) -> Callable[..., int]:
    def formula(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        shaped, named = operands(args, kwargs)  # nested tensors as their components' shapes
        if not takes(rule, (*shaped, *named.values())):
            raise SymconvError(f"symconv does not count {packet} on these arguments (a nested tensor, or a sparse "
                               f"one other than a product's one sparse factor)")
        here = pads.merged(args, packet, context) if packet in CONVOLVES else context
        return sum(entry.totals[context.conventions[0]] for entry in rule(*shaped, **named, context=here))

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
    pads = ZeroPads()

    def zero_padding(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        pads.remember(args, kwargs, out_val)
        return 0  # padding moves data: it is remembered for the convolution that reads it

    zero_padding._get_raw = True
    return {aten.constant_pad_nd: zero_padding, **{packet: _total(packet, rule, context, pads)
                                                  for packet, rule in RULES.items()}}
