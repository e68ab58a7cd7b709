"""torch's acceptance rules compiled to numpy: the validator of lambdified functions.

The rules are :mod:`symconv.core.rules`, written once; here each is compiled over
the columns of a vectorised call, and the first row that breaks one is reported
with the rule's message, naming the parameters, their values and the row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp

from ..core import rules
from ..core.errors import SymconvError
from ..core.model import CostModel
from ..core.symbols import display_name
from .compile import compile_expr, lambdify_integer
from .vector_counters import PIECE_SAFE


class _CompiledRule:
    """One rule's relation as a numpy function of the model's parameters; its reported value too."""

    def __init__(self, rule: rules.Rule, model: CostModel) -> None:
        self.rule = rule
        # Symbols without assumptions: with them SymPy would decide `L_in >= 1` is True while compiling.
        plain = {p: sp.Symbol(p.name) for p in model.parameters()}
        self.names = [p.name for p in plain.values()]
        self.holds = lambdify_integer(list(plain.values()), rule.holds.xreplace(plain))
        self.value = None if rule.value is None else compile_expr(rule.value.xreplace(plain), list(plain.values()))

    def check(self, cols: dict[str, np.ndarray], exact: dict[str, np.ndarray]) -> None:
        """Raise on the first row that breaks the rule (``exact``: the columns as Python ints where int64
        arithmetic could overflow)."""
        bad = np.flatnonzero(~np.asarray(self.holds(*(exact[n] for n in self.names)), dtype=bool))
        if not bad.size:
            return
        row = int(bad[0])
        fields = {n: f"{display_name(n)}={cols[n][row]}" for n in self.names}
        if self.value is not None:
            fields["value"] = self.value(**{n: cols[n][row] for n in self.names})
        fields["axis"] = self.rule.axis
        raise SymconvError(self.rule.message.format(**fields) + f" (configuration {row})")


@lru_cache(maxsize=None)
def _compiled_rules(model: CostModel) -> tuple[_CompiledRule, ...]:
    return tuple(_CompiledRule(r, model) for r in rules.rules(model))


def layer_validator(model: CostModel) -> Callable[[dict[str, np.ndarray]], None]:
    """A check of columns of layer parameters: SymconvError naming the parameter and the first bad row.

    Rules are checked in order and the first broken one raises, so a rule only sees
    values every earlier rule accepted (the output size divides by a stride >= 1).
    """

    def check(cols: dict[str, np.ndarray]) -> None:
        # A rule multiplies at most two parameters: below PIECE_SAFE int64 cannot overflow.
        small = all(c.dtype != object and (not c.size or np.abs(c).max() < PIECE_SAFE) for c in cols.values())
        exact = cols if small else {n: c.astype(object) for n, c in cols.items()}
        for rule in _compiled_rules(model):
            rule.check(cols, exact)

    return check

