"""The compiled paths (additions_per_filter, a layer's counts, a layer's input check): generated from the
core's expressions and rules, equal to them, and handing every call they cannot answer exactly to the
Python path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symconv
from symconv.core import counters
from symconv.numeric import _native  # CI builds it: a missing extension must fail here, not skip
from symconv.numeric import codegen, compile, layer_counts, vector_counters
from symconv.numeric.layer import Layer
from symconv.oracle import grid

from .bruteforce import count_map, output_size
from .conftest import random_points

CONVENTIONS = ("docs", "exact", "macs")


def call_native(pt: grid.Point, convention: str) -> int | None:
    return _native.additions_per_filter(pt.L, pt.k, pt.s, pt.p, pt.d, pt.op, convention, pt.transposed)


def call_python(pt: grid.Point, convention: str) -> int:
    return layer_counts.python_additions_per_filter(pt.L, pt.k, pt.s, pt.p, pt.d, pt.op, convention=convention,
                                              transposed=pt.transposed)


def from_count_maps(pt: grid.Point, convention: str) -> int:
    """Additions per filter from the literal per-axis count maps (independent of the hybrids)."""
    maps = [count_map(*pt.axis(a), transposed=pt.transposed) for a in range(pt.ndim)]
    S = math.prod(sum(c) for c in maps)
    if convention == "macs":
        return 0
    if convention == "exact":
        return S - math.prod(sum(1 for v in c if v) for c in maps)
    if pt.transposed:
        return S - math.prod(len(c) for c in maps)
    return math.prod(len(c) for c in maps) * (math.prod(pt.k) - 1)


def test_the_public_function_uses_the_compiled_path():
    assert layer_counts._native_additions is _native.additions_per_filter


def test_generated_files_are_current():
    files = codegen.outputs()
    assert set(files) == {codegen.GENERATED_C, codegen.GENERATED_PY}
    for path, text in files.items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m symconv.numeric.codegen"
    assert codegen.main(["--check"]) == 0


def test_compiled_path_equals_count_maps_and_python_on_the_whole_grid():
    points = grid.default_grid()
    for pt in points:
        for convention in CONVENTIONS:
            value = call_native(pt, convention)
            assert value is not None, (pt.describe(), convention)
            assert value == from_count_maps(pt, convention) == call_python(pt, convention), (
                pt.describe(), convention)
    assert {pt.transposed for pt in points} == {True, False}
    assert {pt.ndim for pt in points} == {1, 2, 3}


# Far off the grid: sizes up to 2**62 (int64 overflow) and kernels of any width.
LARGE_LAYERS = random_points(lambda ndim: st.one_of(st.integers(1, 2000), st.integers(1, 2 ** 62)),
                             st.one_of(st.integers(1, 9), st.integers(1, 400)), st.integers(1, 40),
                             st.integers(1, 40), extra_padding=5)


@settings(max_examples=300, deadline=None)
@given(LARGE_LAYERS, st.sampled_from(CONVENTIONS))
def test_compiled_path_equals_python_off_the_grid(pt, convention):
    try:
        expected = call_python(pt, convention)
    except symconv.SymconvError:  # a layer torch rejects: the compiled path must not answer it
        assert call_native(pt, convention) is None
        return
    value = call_native(pt, convention)
    assert value is None or value == expected
    assert symconv.additions_per_filter(pt.L, pt.k, pt.s, pt.p, pt.d, pt.op, convention=convention,
                                        transposed=pt.transposed) == expected


def test_overflow_falls_back_to_exact_python_ints():
    L = 2 ** 40  # per axis S = 3L fits int64; the 2-d product does not
    assert _native.additions_per_filter((L, L), 3, 1, 0, 1, 0, "docs", True) is None
    assert symconv.additions_per_filter((L, L), 3) == (3 * L) ** 2 - (L + 2) ** 2
    assert _native.additions_per_filter(2 ** 70, 3, 1, 0, 1, 0, "docs", True) is None
    assert symconv.additions_per_filter(2 ** 70, 3) == 3 * 2 ** 70 - (2 ** 70 + 2)


@pytest.mark.parametrize("args", [
    (True, 3, 1, 0, 1, 0, "docs", True),        # bool is not a size
    (4.0, 3, 1, 0, 1, 0, "docs", True),         # nor is a float equal to an int
    ((4, 4.0), 3, 1, 0, 1, 0, "docs", True),
    (np.int64(4), 3, 1, 0, 1, 0, "docs", True),  # NumPy ints are valid but go to Python
    (4, 3, 1, 0, 1, 0, "Docs", True),           # names are matched case-insensitively in Python
    (4, 3, 1, 0, 1, 1, "docs", True),           # output_padding >= stride and dilation
    (1, 1, 1, 1, 1, 0, "docs", True),           # output size < 1
    (4, 3, 0, 0, 1, 0, "docs", True),           # stride 0
    (4, 3, 1, 0, 1, 1, "docs", False),          # output_padding on a plain convolution
    ((4, 4, 4, 4), 3, 1, 0, 1, 0, "docs", True),
    (4, 3, 1, 0, 1, 0, "docs", 1),              # transposed must be a bool
])
def test_compiled_path_declines_what_python_must_judge(args):
    assert _native.additions_per_filter(*args) is None


def test_declined_calls_keep_the_python_behaviour():
    assert symconv.additions_per_filter(np.int64(8), 4, 2, 1) == symconv.additions_per_filter(8, 4, 2, 1)
    assert symconv.additions_per_filter(8, 4, 2, 1, convention="Exact") == 30 - 16
    for bad in (True, 4.0, (4, 4.0)):
        with pytest.raises(symconv.SymconvError, match="input_size"):
            symconv.additions_per_filter(bad, 3)
    with pytest.raises(symconv.SymconvError, match="output_padding"):
        symconv.additions_per_filter(4, 3, output_padding=1)


def _counter_rows(transposed: bool) -> list[np.ndarray]:
    """(L, k, s, p, d, L_out) rows: small layers, huge inputs, wide kernels, counts past int64 and,
    for transposed axes, taps t*d past int64."""
    rng = np.random.default_rng(1)
    groups = [(rng.integers(1, 40, 3000), rng.integers(1, 9, 3000)),
              (rng.integers(2 ** 55, 2 ** 58, 50), rng.integers(1, 9, 50)),
              (rng.integers(1, 40, 20), rng.integers(257, 400, 20)),
              (rng.integers(2 ** 60, 2 ** 62, 50), rng.integers(20, 64, 50))]
    L, k = (np.concatenate(cols) for cols in zip(*groups))
    s, d = rng.integers(1, 6, L.size), rng.integers(1, 5, L.size)
    p = rng.integers(0, d * (k - 1) + 3)
    if transposed:  # taps t*d past 2**63, where wrapping int64 arithmetic gives wrong counts
        n = 2000
        L, k = np.append(L, rng.integers(1, 7, n)), np.append(k, rng.integers(2, 9, n))
        s, p = np.append(s, rng.integers(1, 2 ** 62, n)), np.append(p, rng.integers(0, 2 ** 62, n))
        d = np.append(d, rng.integers(2 ** 59, 2 ** 62, n))
    L_out = np.array([output_size(*row, transposed=transposed) for row in zip(*(a.tolist() for a in (L, k, s, p, d)))],
                     dtype=object)
    keep = (L_out >= 1) & (L_out < 2 ** 63)
    return [a[keep] for a in (L, k, s, p, d)] + [L_out[keep].astype(np.int64)]


@pytest.mark.parametrize("name, transposed", [("transposed_coverage", True), ("plain_coverage", False)])
def test_compiled_rows_equal_the_python_counters(name, transposed):
    rows = _counter_rows(transposed)
    failed = np.zeros(rows[0].size, dtype=bool)
    out = np.empty(rows[0].size, dtype=np.int64)
    _native.count_rows(name, out, failed, *rows)
    expected = [getattr(counters, name)(*map(int, row)) for row in zip(*rows)]
    # intermediate products run in 128 bits and Z <= L_out < 2**63: every row is answered
    assert not failed.any()
    assert out.tolist() == expected
    assert getattr(vector_counters, name)(*rows).tolist() == expected
    q = np.arange(-3, 60)
    assert (vector_counters.lattice_count(q, 5, 4, 3, 2).tolist()
            == [counters.lattice_count(int(v), 5, 4, 3, 2) for v in q])


def test_compiled_rows_reject_bad_columns():
    out, failed, col = np.empty(3, dtype=np.int64), np.zeros(3, dtype=bool), np.ones(3, dtype=np.int64)
    with pytest.raises(TypeError, match="counter"):
        _native.count_rows("no_counter", out, failed, col)
    with pytest.raises(ValueError, match="int64"):
        _native.count_rows("lattice_count", out, failed, col, col, col, col, np.ones(3, dtype=np.int32))
    with pytest.raises(ValueError, match="int64"):
        _native.count_rows("lattice_count", out, failed, col, col, col, col, np.ones(3))  # float64
    with pytest.raises(ValueError, match="bool"):
        _native.count_rows("lattice_count", out, np.zeros(3, dtype=np.uint8), col, col, col, col, col)
    with pytest.raises(ValueError, match="one length"):
        _native.count_rows("lattice_count", out, failed, col, col, col, col, np.ones(4, dtype=np.int64))


def test_counts_past_int64_are_redone_with_python_ints():
    from symconv.core.overlap import LatticeCount
    q, n, k, s, d = sp.symbols("q n k s d", integer=True)
    fn = compile.compile_expr(LatticeCount(q, n, k, s, d), [q, n, k, s, d])
    rows = dict(q=np.array([2 ** 62, 10]), n=np.array([2 ** 61, 3]), k=np.array([8, 4]), s=np.array([1, 2]),
                d=np.array([1, 1]))
    with pytest.raises(vector_counters.Int64Overflow):
        vector_counters.lattice_count(*rows.values())
    assert fn(**rows).tolist() == [8 * 2 ** 61, counters.lattice_count(10, 3, 4, 2, 1)]


# --- a layer's counts and its input check ------------------------------------------------------------------

def _layer(pt: grid.Point, groups: int, bias: bool) -> Layer:
    return Layer(grid.kind_of(pt.ndim, pt.transposed), 2 * groups, 3 * groups, pt.k, pt.s, pt.p, pt.d, pt.op,
                 groups, bias)


def _python_counts(layer: Layer, shape: tuple[int, ...]) -> dict:
    batch, spatial = shape[0], shape[2:]
    out = layer.output_size(spatial)
    return {c: layer_counts.python_count_layer(layer, batch, spatial, out, c) for c in CONVENTIONS}


def test_compiled_layer_counts_equal_count_maps_and_python_on_the_whole_grid():
    points = grid.default_grid()
    for i, pt in enumerate(points):
        groups, bias, batch = 1 + i % 3, i % 2 == 0, 1 + i % 4
        layer = _layer(pt, groups, bias)
        shape = (batch, layer.in_channels, *pt.L)
        found = _native.layer_counts(pt.transposed, (batch, layer.in_channels, layer.out_channels, groups), pt.L,
                                     pt.k, pt.s, pt.p, pt.d, pt.op, bias, CONVENTIONS)
        assert found is not None, pt.describe()
        assert found[0] == layer.output_size(pt.L)
        counts = layer_counts.count_layers(layer, shape, CONVENTIONS)
        assert counts == _python_counts(layer, shape), pt.describe()
        # the exact convention from the literal count maps: S products per filter, S - Z additions
        maps = [count_map(*pt.axis(a), transposed=pt.transposed) for a in range(pt.ndim)]
        S, Z = math.prod(sum(c) for c in maps), math.prod(sum(1 for v in c if v) for c in maps)
        exact = counts["exact"]
        assert (exact.multiplications, exact.additions, exact.psi) == (S, S - Z, 6 * groups)
        assert layer.check_input(shape) == (batch, pt.L, found[0])


@settings(max_examples=300, deadline=None)
@given(LARGE_LAYERS, st.integers(1, 4), st.booleans(), st.integers(1, 2 ** 40))
def test_compiled_layer_counts_equal_python_off_the_grid(pt, groups, bias, batch):
    layer = _layer(pt, groups, bias)
    shape = (batch, layer.in_channels, *pt.L)
    try:
        layer._check(pt.L, batch)  # torch's rules, in Python
        expected = _python_counts(layer, shape)
    except symconv.SymconvError:
        expected = None
    found = _native.layer_counts(pt.transposed, (batch, layer.in_channels, layer.out_channels, groups), pt.L, pt.k,
                                 pt.s, pt.p, pt.d, pt.op, bias, CONVENTIONS)
    if expected is None:  # a layer torch rejects: the compiled path must not answer it, the check refuses it
        assert found is None and layer._compiled_check(shape) is None
        with pytest.raises(symconv.SymconvError):
            layer.check_input(shape)
        return
    assert found is None or {c: tuple(row) for c, row in zip(CONVENTIONS, found[1])} == {
        c: (v.psi, v.multiplications, v.additions, v.lam, v.gamma, v.total, v.unreached) for c, v in expected.items()}
    assert layer_counts.count_layers(layer, shape, CONVENTIONS) == expected


@pytest.mark.parametrize("shape, match", [
    ((0, 2, 8), "positive"), ((1, 2, 0), "positive"), ((True, 2, 8), "positive"), ((1, 3, 8), "channels"),
    ((1, 2, 2), "output size"), ((1, 1, 2, 8), "dimensions"), ((1, 2, 8.0), "positive"), ((1, 2.0, 8), "positive"),
])
def test_the_compiled_check_leaves_every_refusal_to_python(shape, match):
    layer = Layer("Conv1d", 2, 4, (3,), (1,), (0,), (1,), (0,), 1, True)
    assert layer._compiled_check(shape) is None
    with pytest.raises(symconv.SymconvError, match=match):
        layer.check_input(shape)
    assert layer_counts.count_layers(layer, (np.int64(2), 2, 8), CONVENTIONS) == \
        layer_counts.count_layers(layer, (2, 2, 8), CONVENTIONS)  # NumPy sizes through Python, the same counts
