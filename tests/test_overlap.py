"""The overlap-additions engine against torch and against brute force."""

from __future__ import annotations

import io
import random
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import symconv
from symconv.core import counters
from symconv.frontends.cli import main
from symconv.numeric import vector_counters
from symconv.numeric.layer import Layer
from symconv.oracle import grid, ones

from .bruteforce import count_map, output_size, simulate
from .conftest import random_points


@pytest.mark.parametrize("transposed", [True, False])
def test_oracle_equals_brute_force_on_the_1d_grid(transposed):
    points = grid.grid_1d(transposed)
    assert len(points) > 2000
    for pt in points:
        torch_map = ones.ones_count_map(pt).to(torch.int64).tolist()
        assert torch_map == count_map(*pt.axis(0), transposed=transposed), pt.describe()


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize("ndim", [2, 3])
def test_count_map_is_separable(transposed, ndim):
    # c(j) = Π_a c_a(j_a): checked on torch's n-d ones-convolution, not assumed.
    for pt in grid.samples_nd(transposed, ndim, 60, seed=3):
        maps = [torch.tensor(count_map(*pt.axis(a), transposed=transposed), dtype=torch.float64)
                for a in range(ndim)]
        outer = maps[0]
        for m in maps[1:]:
            outer = outer[..., None] * m
        assert torch.equal(ones.ones_count_map(pt), outer), pt.describe()


def test_every_hybrid_candidate_holds_inside_its_condition(validation_report):
    used = [c for c in validation_report.candidates if c.in_hybrid]
    assert len(used) >= 10
    for c in used:
        assert c.inside > 0, f"{c.name} never applies on the grid"
        assert c.wrong_inside == 0, (c.name, c.examples_inside)


def test_naive_candidates_are_rejected_with_counterexamples(validation_report):
    naive = [c for c in validation_report.candidates if not c.in_hybrid]
    assert {c.name for c in naive} == {"uncropped product, as designed", "Z = L_out, every position reached"}
    for c in naive:
        assert not c.accepted and c.wrong_inside > 0 and c.examples_inside


def test_hybrid_equals_the_oracle_on_the_whole_grid(validation_report):
    assert validation_report.ok
    assert sum(h.points for h in validation_report.hybrids) == validation_report.points
    for h in validation_report.hybrids:
        assert h.wrong == {"S": 0, "Z": 0, "docs": 0}, h.kind
    closed, total = validation_report.coverage()
    assert 0 < closed < total  # both branches of every hybrid are exercised


def test_worked_check_from_the_qa_layer():
    module = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
    assert count_map(4, 4, 2, 1, 1, transposed=True) == [1, 2, 2, 2, 2, 2, 2, 1]
    assert symconv.count_ops(module, (1, 1, 4, 4), "docs") == 1156
    exact = symconv.count_layer(symconv.layer_from_module(module), (1, 1, 4, 4), "exact")
    assert (exact.multiplications, exact.additions, exact.total) == (196, 132, 328)
    assert symconv.count_ops(module, (1, 1, 4, 4), "macs") == 256


LAYERS = random_points(lambda ndim: st.integers(1, 64 if ndim == 1 else 24), st.integers(1, 7), st.integers(1, 6),
                       st.integers(1, 4), extra_padding=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(LAYERS)
def test_hybrid_equals_the_oracle_on_random_layers(pt):
    measured = ones.measure(pt)
    assume(measured is not None and all(measured.out_shape))  # hypothesis fails if no example is left
    spec = Layer(("ConvTranspose" if pt.transposed else "Conv") + f"{pt.ndim}d", 1, 1, pt.k, pt.s, pt.p, pt.d, pt.op)
    docs = symconv.count_layer(spec, (1, *pt.L), "docs")
    exact = symconv.count_layer(spec, (1, *pt.L), "exact")
    assert docs.output_size == measured.out_shape
    if pt.transposed:
        assert docs.additions == measured.docs_additions
    assert exact.multiplications == measured.S
    assert exact.additions == measured.S - measured.Z


def test_vectorised_counters_equal_the_scalar_ones():
    for transposed, vector, scalar in ((True, vector_counters.transposed_coverage_int64, counters.transposed_coverage),
                                       (False, vector_counters.plain_coverage_int64, counters.plain_coverage)):
        points = grid.grid_1d(transposed)
        cols = np.array([pt.axis(0) for pt in points]).T
        L, k, s, p, d, op = cols
        L_out = np.array([output_size(*pt.axis(0), transposed=transposed) for pt in points])
        expected = [sum(1 for c in count_map(*pt.axis(0), transposed=transposed) if c) for pt in points]
        assert len(expected) > 2000
        assert vector(L, k, s, p, d, L_out).tolist() == expected
        assert [scalar(*row) for row in zip(*(a.tolist() for a in (L, k, s, p, d, L_out)))] == expected
    q = np.arange(-3, 40)
    assert vector_counters.lattice_count_int64(q, 5, 4, 3, 2).tolist() == [
        counters.lattice_count(int(v), 5, 4, 3, 2) for v in q]


def test_counters_do_not_depend_on_the_input_size():
    # L = 10**15 would take years to enumerate; the answers follow from the closed forms.
    L = 10 ** 15
    assert counters.transposed_coverage(L, 4, 2, 1, 1, 2 * L) == 2 * L
    assert counters.transposed_coverage(L, 1, 3, 0, 1, 3 * L - 2) == L  # stride 3, kernel 1: two gaps per input
    z = vector_counters.transposed_coverage([L], [4], [2], [1], [1], [2 * L])
    assert z.tolist() == [2 * L]
    assert symconv.additions_per_filter((L, 3), 4, 2, 1, convention="exact") == (4 * L - 2) * 10 - 2 * L * 6


def test_docs_additions_go_negative_at_gaps():
    # Stride 3, kernel 1: a third of the output receives nothing; sum(y - 1) counts -1 there.
    assert symconv.additions_per_filter(4, 1, stride=3) == 4 - 10
    assert symconv.additions_per_filter(4, 1, stride=3, convention="exact") == 0
    count = symconv.count_layer(Layer.make("ConvTranspose1d", 1, 1, 1, stride=3), (1, 1, 4))
    assert count.unreached == 6


def test_additions_per_filter_validates_like_torch():
    with pytest.raises(symconv.SymconvError, match="output_padding"):
        symconv.additions_per_filter(4, 3, stride=1, output_padding=1)
    with pytest.raises(symconv.SymconvError, match="output size"):
        symconv.additions_per_filter(1, 1, padding=1)
    with pytest.raises(symconv.SymconvError, match="stride"):
        symconv.additions_per_filter((4, 4), 3, stride=(1, 2, 3))
    with pytest.raises(symconv.SymconvError, match="convention"):
        symconv.additions_per_filter(4, 3, convention="flops")


@pytest.mark.parametrize("cls, ndim", [(torch.nn.ConvTranspose1d, 1), (torch.nn.ConvTranspose2d, 2),
                                       (torch.nn.ConvTranspose3d, 3), (torch.nn.Conv2d, 2)])
def test_count_ops_equals_a_literal_simulation(cls, ndim):
    rng = random.Random(ndim)
    checked = 0
    for _ in range(6):
        kwargs = dict(stride=rng.randint(1, 3), padding=rng.randint(0, 2), dilation=rng.randint(1, 2),
                      groups=rng.choice([1, 2]), bias=rng.random() < 0.5)
        if cls.__name__.startswith("ConvTranspose"):
            kwargs["output_padding"] = rng.randint(0, max(kwargs["stride"], kwargs["dilation"]) - 1)
        module = cls(2 * kwargs["groups"], 2 * kwargs["groups"], rng.randint(1, 4), **kwargs)
        shape = (2, module.in_channels, *(rng.randint(2, 5) for _ in range(ndim)))
        try:
            out = module(torch.zeros(shape))
        except RuntimeError:
            continue
        if out.numel() == 0:
            continue
        spec = symconv.layer_from_module(module)
        for convention in ("docs", "exact", "macs"):
            assert symconv.count_ops(module, shape, convention) == simulate(spec, shape, convention)
        assert symconv.count_ops(module, shape[1:], "exact") == simulate(spec, shape[1:], "exact")
        checked += 1
    assert checked >= 3, f"only {checked} of 6 random modules ran"


def test_validate_cli_prints_the_report():
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(["validate", "--workers", "1"])
    text = out.getvalue()
    assert status == 0
    assert "[REJECTED] ConvTranspose   docs_additions uncropped product, as designed" in text
    assert "closed-form coverage of the grid" in text
    assert "disagreements: S 0, Z 0, docs 0" in text


def test_validate_refuses_a_number_of_workers_below_one():
    # --workers 0 meant every core, a negative number ended in the process pool's ValueError with a traceback
    for workers in ("0", "-3"):
        err = io.StringIO()
        with redirect_stderr(err):
            assert main(["validate", "--workers", workers]) == 2
        assert err.getvalue() == (f"symconv validate: error: workers={workers} must be a whole number >= 1 (or None: "
                                  f"one per core, up to 8)\n")
