"""The symbols of the model and how each one is written in LaTeX.

One table, :data:`LATEX_NAMES`, gives the docs pages' notation for every
symbol; the LaTeX printer and the docs checker both read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

AXIS_LETTERS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

#: sympy symbol name -> LaTeX in the pages' notation
LATEX_NAMES: dict[str, str] = {}
#: sympy symbol name -> the symbol, for mapping parsed LaTeX back onto ours
SYMBOLS: dict[str, sp.Symbol] = {}
#: sympy symbol name -> (the torch argument it is part of, whether it is one axis' entry), for messages
ARGUMENTS: dict[str, tuple[str, bool]] = {}


def _symbol(name: str, latex: str, argument: str | None = None, per_axis: bool = False,
            **assumptions: bool) -> sp.Symbol:
    LATEX_NAMES[name] = latex
    SYMBOLS[name] = sp.Symbol(name, integer=True, **assumptions)
    ARGUMENTS[name] = (argument or name, per_axis)
    return SYMBOLS[name]


def display_name(name: str) -> str:
    """How a message names a symbol's value: torch's argument for layer-wide ones (in_channels),
    the symbol itself for per-axis ones (stride_0, H_in)."""
    argument, per_axis = ARGUMENTS.get(name, (name, True))
    return name if per_axis else argument


def _text(word: str) -> str:
    return r"\text{" + word.replace("_", r"\_") + "}"


@dataclass(frozen=True)
class Axis:
    """Symbols of one spatial axis. ``pr`` is ``p`` itself unless padding is asymmetric."""

    index: int
    letter: str
    L: sp.Symbol      # input size
    L_out: sp.Symbol  # output size, a symbol the pages use; resolved by the model
    k: sp.Symbol
    s: sp.Symbol
    p: sp.Symbol
    pr: sp.Symbol
    d: sp.Symbol
    op: sp.Symbol     # output_padding; only in transposed models
    S: sp.Symbol      # sum of the count map
    Z: sp.Symbol      # positions of the count map that receive a product


def _param(word: str, index: int, ndim: int, **assumptions: bool) -> sp.Symbol:
    name = word if ndim == 1 else f"{word}_{index}"
    latex = _text(word if ndim == 1 else f"{word}[{index}]")  # the pages' \text{kernel\_size[0]}
    return _symbol(name, latex, word, True, **assumptions)


def make_axis(index: int, ndim: int, asymmetric: bool = False) -> Axis:
    letter = AXIS_LETTERS[ndim][index]
    p = _param("padding", index, ndim, nonnegative=True)
    return Axis(
        index=index,
        letter=letter,
        L=_symbol(f"{letter}_in", f"{letter}_{{in}}", "input_size", True, positive=True),
        L_out=_symbol(f"{letter}_out", f"{letter}_{{out}}", "output_size", True, positive=True),
        k=_param("kernel_size", index, ndim, positive=True),
        s=_param("stride", index, ndim, positive=True),
        p=p,
        pr=_param("padding_right", index, ndim, nonnegative=True) if asymmetric else p,
        d=_param("dilation", index, ndim, positive=True),
        op=_param("output_padding", index, ndim, nonnegative=True),
        S=_symbol(f"S_{letter}", f"S_{{{letter}}}", per_axis=True, nonnegative=True),
        Z=_symbol(f"Z_{letter}", f"Z_{{{letter}}}", per_axis=True, nonnegative=True),
    )


N = _symbol("N", "N", positive=True)
C_in = _symbol("C_in", "C_{in}", "in_channels", positive=True)
C_out = _symbol("C_out", "C_{out}", "out_channels", positive=True)
groups = _symbol("groups", _text("groups"), positive=True)
additions_per_filter = _symbol("additions_per_filter", _text("additions_per_filter"))
