"""matplotlib for the front ends' plots: loaded on demand, figures saved and closed in one place."""

from __future__ import annotations

from typing import Any

from ..core.errors import SymconvError


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; SymconvError naming the extra when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SymconvError("--plot needs matplotlib: pip install 'symconv[plot]'") from None
    return plt


def save(fig: Any, path: str) -> None:
    """Write the figure as PNG and close it; an unwritable path is the user's error, named."""
    try:
        fig.savefig(path, dpi=100, bbox_inches="tight")
    except OSError as err:
        raise SymconvError(f"cannot write {path!r}: {err.strerror}") from None
    finally:
        pyplot().close(fig)
