"""symconv: exact, symbolic operation counts for PyTorch convolution layers.

``import symconv`` loads the symbolic core (SymPy) and the numeric layer (numpy);
torch is imported only by the oracle and the module profiler, when used.
"""

from .conventions import CONVENTIONS, Convention, get_convention
from .counts import LayerCount, additions_per_filter, count_layer
from .layers import LayerSpec
from .model import ConvModel, layer
from .modules import count_ops, spec_from_module

__all__ = ["CONVENTIONS", "Convention", "ConvModel", "LayerCount", "LayerSpec", "additions_per_filter",
           "count_layer", "count_ops", "get_convention", "layer", "profile", "spec_from_module"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The module profiler needs torch; load it only when asked for.
    if name == "profile":
        from .profiler import profile
        return profile
    raise AttributeError(f"module 'symconv' has no attribute {name!r}")
