"""torch's acceptance rules for a convolution layer and its input, written once as SymPy relations.

Each :class:`Rule` is a relation that must hold for torch to accept the layer, with
the message to give when it does not. Every path that judges concrete numbers is
compiled from these: the generated pure-Python checks behind
:class:`symconv.numeric.layer.Layer`, the numpy validator of lambdified functions
(:mod:`symconv.numeric.validator`) and the checks of the compiled C path
(``_native_generated.h``).

The rules, as checked against torch 2.13:

* every size is >= 1 (padding and output_padding >= 0);
* groups divides both channel counts;
* a transposed axis has output_padding < stride or output_padding < dilation;
* every output size is >= 1;
* ``padding_mode="reflect"`` pads each side by less than the input size;
  ``"circular"`` by at most the input size (more would wrap around more than
  once); ``"replicate"`` and ``"zeros"`` accept any padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp

from .symbols import C_in, C_out, N, groups

if TYPE_CHECKING:
    from .model import CostModel


@dataclass(frozen=True)
class Rule:
    """A relation torch needs, and the message when it fails.

    ``message`` is a ``str.format`` template: ``{name}`` shows the symbol ``name``
    with its value, ``{value}`` the value of ``value`` (the quantity judged, where the
    message reports it) and ``{axis}`` the axis.
    """

    holds: sp.Basic
    message: str
    axis: int | None = None
    value: sp.Expr | None = None

    @property
    def symbols(self) -> frozenset[sp.Symbol]:
        used = set(self.holds.free_symbols)
        if self.value is not None:
            used |= self.value.free_symbols
        return frozenset(used)

    def needs_input(self, model: "CostModel") -> bool:
        """Whether the rule judges the input (its batch or sizes), not only the layer's arguments."""
        return bool(self.symbols & ({N} | {a.L for a in model.axes}))


def _ge(a: sp.Expr, b: sp.Expr) -> sp.Basic:
    # Unevaluated: the symbols' own assumptions (positive=True) would otherwise turn the rule into True.
    return sp.GreaterThan(a, b, evaluate=False)


def _lt(a: sp.Expr, b: sp.Expr) -> sp.Basic:
    return sp.StrictLessThan(a, b, evaluate=False)


def _bound(symbol: sp.Symbol, low: int, axis: int | None = None) -> Rule:
    return Rule(_ge(symbol, low), f"{{{symbol.name}}} must be >= {low}", axis)


def layer_rules(model: "CostModel") -> tuple[Rule, ...]:
    """Rules on the batch, the channels and the groups."""
    return (*(_bound(s, 1) for s in (N, C_in, C_out, groups)),
            Rule(sp.And(sp.Eq(sp.Mod(C_in, groups), 0), sp.Eq(sp.Mod(C_out, groups), 0)),
                 f"{{{groups.name}}} must divide {{{C_in.name}}} and {{{C_out.name}}}"))


def axis_rules(model: "CostModel", axis: int, padding_mode: str = "zeros") -> tuple[Rule, ...]:
    """Rules on one spatial axis: its arguments, its output size and the padding mode's limits.

    The order is the order of evaluation: a later rule may assume the earlier ones
    hold (the output size divides by the stride).
    """
    a = model.axes[axis]
    rules = [_bound(a.L, 1, axis), _bound(a.k, 1, axis), _bound(a.s, 1, axis), _bound(a.p, 0, axis)]
    if model.asymmetric:
        rules.append(_bound(a.pr, 0, axis))
    rules.append(_bound(a.d, 1, axis))
    if model.transposed:
        rules += [_bound(a.op, 0, axis),
                  Rule(sp.Or(_lt(a.op, a.s), _lt(a.op, a.d)),
                       f"{{{a.op.name}}} must be smaller than {{{a.s.name}}} or {{{a.d.name}}}", axis)]
    size = model.output_size(axis)
    rules.append(Rule(_ge(size, 1), f"output size {{value}} < 1 on axis {{axis}} for {{{a.L.name}}}: "
                                 f"kernel_size, padding or dilation too large", axis, size))
    sides = dict.fromkeys((a.p, a.pr))  # one side when padding is symmetric
    if padding_mode == "reflect":
        rules += [Rule(_lt(side, a.L), f"{{{side.name}}} must be smaller than {{{a.L.name}}} with "
                                   f"padding_mode='reflect'", axis) for side in sides]
    elif padding_mode == "circular":
        rules += [Rule(sp.LessThan(side, a.L, evaluate=False), f"{{{side.name}}} must not exceed {{{a.L.name}}} with "
                                    f"padding_mode='circular' (it would wrap around more than once)", axis)
                  for side in sides]
    return tuple(rules)


def rules(model: "CostModel", padding_mode: str = "zeros") -> tuple[Rule, ...]:
    """Every rule of a layer kind, layer-wide ones first, then axis by axis."""
    per_axis = (r for a in range(model.ndim) for r in axis_rules(model, a, padding_mode))
    return (*layer_rules(model), *per_axis)
