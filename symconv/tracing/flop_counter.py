"""symconv's counts inside torch's own ``FlopCounterMode``.

:func:`flop_counter_mapping` returns a ``custom_mapping``: with it,
``FlopCounterMode(custom_mapping=symconv.flop_counter_mapping("exact"))`` reports
symconv's counts for convolutions, their gradients and matrix products instead of
torch's formulas (which count transposed layers over the input, ignore cropping by
padding and output_padding, and multiply a grouped convolution's weight gradient by
the number of groups). torch's global formula registry, which Inductor reads, is
never changed: the mapping applies to the counter it is given to only.

FlopCounterMode calls each formula with the operator's arguments as shapes and
``out_shape``; it cannot see zero padding applied before a convolution, which
:func:`symconv.profile` merges into the layer (so under the exact convention a
``padding="same"`` convolution with an even kernel counts a little more here).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..core.names import convention_name
from .ops import Context, addmm, baddbmm, bmm, convolution, convolution_backward, fused_attention, mm

aten = torch.ops.aten


def _total(rule: Callable[..., list], context: Context) -> Callable[..., int]:
    def formula(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sum(entry.totals[context.conventions[0]] for entry in rule(*args, **kwargs, context=context))

    formula.__doc__ = rule.__doc__
    return formula


def flop_counter_mapping(convention: str = "exact") -> dict[Any, Callable[..., int]]:
    """A ``custom_mapping`` for ``torch.utils.flop_counter.FlopCounterMode`` with symconv's counts.

    Covers ``aten.convolution``, ``aten._convolution``, ``aten.convolution_backward``,
    ``aten.mm``, ``aten.addmm``, ``aten.bmm``, ``aten.baddbmm`` and the fused
    scaled-dot-product attentions; ``convention`` is "exact" (default), "docs" or
    "macs" (then FlopCounterMode's "FLOPs" are multiply-accumulates).
    """
    context = Context((convention_name(convention),))
    mapping = {aten.convolution: convolution, aten._convolution: convolution,
               aten.convolution_backward: convolution_backward, aten.mm: mm, aten.addmm: addmm, aten.bmm: bmm,
               aten.baddbmm: baddbmm, aten._scaled_dot_product_efficient_attention: fused_attention,
               aten._scaled_dot_product_flash_attention: fused_attention,
               aten._scaled_dot_product_flash_attention_for_cpu: fused_attention}
    return {op: _total(rule, context) for op, rule in mapping.items()}
