"""Shared fixtures: the validation report, random layers, and the seed pages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import strategies as st

from symconv.oracle import grid

KINDS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")


@pytest.fixture(scope="session")
def validation_report():
    """The default grid measured by torch and every candidate checked (shared by tests)."""
    from symconv.oracle import validate
    return validate.run(progress=False)


def random_points(size: Callable[[int], st.SearchStrategy[int]], kernel: st.SearchStrategy[int],
                  stride: st.SearchStrategy[int], dilation: st.SearchStrategy[int],
                  extra_padding: int) -> st.SearchStrategy[grid.Point]:
    """Layers with 1-3 axes, transposed or plain, as torch accepts their per-axis options.

    ``size(ndim)`` draws an input size; padding runs to d(k-1) + extra_padding (some
    of those leave no output, which the tests handle).
    """
    @st.composite
    def points(draw) -> grid.Point:
        ndim = draw(st.integers(1, 3))
        transposed = draw(st.booleans())
        axes = []
        for _ in range(ndim):
            L, k, s, d = draw(size(ndim)), draw(kernel), draw(stride), draw(dilation)
            p = draw(st.integers(0, d * (k - 1) + extra_padding))
            op = draw(st.integers(0, max(s, d) - 1)) if transposed else 0
            axes.append((L, k, s, p, d, op))
        return grid.Point(transposed, *(tuple(ax[f] for ax in axes) for f in range(6)))

    return points()


ROOT = Path(__file__).resolve().parents[1]
#: the seed pages of ../shared beside the repository (CI has them; a user's own clone may not)
SEEDS = next((p / "shared" / "seeds" for p in ROOT.parents if (p / "shared" / "seeds").is_dir()), None)


@pytest.fixture(scope="session")
def seeds() -> Path:
    """The seed pages; skipped where absent, except in CI (.ci/run sets SYMCONV_REQUIRE_SEEDS), where
    an absent folder is a failure rather than a silent skip."""
    if SEEDS is None:
        if os.environ.get("SYMCONV_REQUIRE_SEEDS"):
            pytest.fail("SYMCONV_REQUIRE_SEEDS is set but shared/seeds is not beside the repository")
        pytest.skip("the seed pages (shared/seeds beside the repository) are not here")
    return SEEDS
