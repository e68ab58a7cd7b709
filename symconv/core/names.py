"""The vocabulary every layer shares: layer kinds, padding modes and convention names.

Plain data, no SymPy: the numeric paths validate names without loading the symbolic core.
"""

from __future__ import annotations

from .errors import SymconvError

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

#: convention name -> what reports print beside its numbers
CONVENTION_DESCRIPTIONS: dict[str, str] = {
    "docs": "the documentation pages' method: every output element costs Πk multiplications; a transposed "
            "layer's additions are sum(y - 1) of its ones-convolution y (negative at positions no product reaches)",
    "exact": "only arithmetic that reaches the output: no products with padded or inserted zeros or with cropped "
             "positions; ΠS multiplications and ΠS - ΠZ additions per filter",
    "macs": "multiply-accumulates as fvcore, ptflops and DeepSpeed report them: transposed layers over the input "
            "(ΠL_in·Πk per filter), plain layers over the output (ΠL_out·Πk); no separate additions, bias ignored",
}
CONVENTION_NAMES = tuple(CONVENTION_DESCRIPTIONS)


def canonical_kind(name: str) -> str:
    """'convtranspose2d' -> 'ConvTranspose2d'; SymconvError for unknown names."""
    for kind in LAYER_KINDS:
        if kind.lower() == str(name).lower():
            return kind
    raise SymconvError(f"unknown layer {name!r}: expected one of {', '.join(LAYER_KINDS)}")


def kind_of(ndim: int, transposed: bool) -> str:
    """(2, True) -> 'ConvTranspose2d'."""
    return ("ConvTranspose" if transposed else "Conv") + f"{ndim}d"


def unit_of(convention: str) -> str:
    """What a convention's numbers count: multiply-accumulates (MACs), or operations (FLOPs)."""
    return "MACs" if convention == "macs" else "FLOPs"


def convention_name(name: object) -> str:
    """A convention name, case-insensitive; SymconvError naming an unknown one."""
    key = str(name).lower()
    if key not in CONVENTION_DESCRIPTIONS:
        raise SymconvError(f"convention={name!r} must be one of {', '.join(CONVENTION_NAMES)}")
    return key
