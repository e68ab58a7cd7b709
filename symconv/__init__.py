"""symconv: exact, symbolic operation counts for PyTorch convolution layers.

The package is layered, each layer importing only those below it:

* ``symconv.core``: the symbolic core (SymPy and the standard library only);
* ``symconv.numeric``: exact numbers from it (generated Python, numpy, compiled C);
* ``symconv.oracle`` and ``symconv.tracing``: the torch side (ones-convolutions,
  validation, reading modules, the profiler);
* ``symconv.frontends``: the command line, the docs checker, derivations, explain.

``import symconv`` loads nothing heavy: each name below is imported when first
used, so counting a layer needs neither SymPy nor numpy, and torch is loaded only
by the torch side.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.errors import SymconvError

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "CONVENTIONS": "symconv.core.conventions",
    "Convention": "symconv.core.conventions",
    "get_convention": "symconv.core.conventions",
    "CostModel": "symconv.core.model",
    "cost_model": "symconv.core.model",
    "Layer": "symconv.numeric.layer",
    "LayerCount": "symconv.numeric.layer_counts",
    "count_layer": "symconv.numeric.layer_counts",
    "additions_per_filter": "symconv.numeric.layer_counts",
    "count_ops": "symconv.tracing.modules",
    "layer_from_module": "symconv.tracing.modules",
    "profile": "symconv.tracing.profiler",
    "flop_counter_mapping": "symconv.tracing.flop_counter",
    "count_gradients": "symconv.numeric.layer_counts",
}

__all__ = ["SymconvError", *_EXPORTS]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from .core.conventions import CONVENTIONS, Convention, get_convention
    from .core.model import CostModel, cost_model
    from .numeric.layer import Layer
    from .numeric.layer_counts import LayerCount, additions_per_filter, count_gradients, count_layer
    from .tracing.flop_counter import flop_counter_mapping
    from .tracing.modules import count_ops, layer_from_module
    from .tracing.profiler import profile


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'symconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # the public names and the module's own dunders, not what it imports for itself (importlib, typing's names)
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
