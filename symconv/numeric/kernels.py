"""The compiled C kernels of layer quantities, for vectorised calls of lambdified functions.

``_native_generated.h`` holds every layer kind's ψ, multiplications, additions, λ,
γ and total under every convention, generated from the core's expressions with
torch's rules (``python -m symconv.numeric.codegen``); ``evaluate_rows`` of
``_native.c`` runs one of them over rows of int64 columns.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..core.conventions import get_convention
from ..core.model import CostModel
from .compile import RowKernel

try:  # the same quantities compiled to C, torch's rules included (_native.c)
    from ._native import evaluate_rows as _evaluate_rows
except ImportError:  # pragma: no cover - depends on the installation
    _evaluate_rows = None

#: quantities of the compiled kernels (``QUANTITY_NAMES`` of the generated header, bias=False spelled _nobias)
KERNEL_QUANTITIES = ("psi", "multiplications", "additions", "lambda", "gamma", "total")


def row_kernel(model: CostModel, name: str, convention: Any = "docs", bias: bool = True,
               **_: Any) -> RowKernel | None:
    """The compiled C kernel of a model's quantity, or None where there is none (no compiler at install,
    asymmetric padding, a quantity the header does not hold)."""
    if _evaluate_rows is None or model.asymmetric or name not in KERNEL_QUANTITIES:
        return None
    quantity = name if bias or name not in ("gamma", "total") else f"{name}_nobias"
    return partial(_evaluate_rows, model.transposed, model.ndim, get_convention(convention).name, quantity)
