"""Exact at the extremes: O(log) counters against brute force, huge sizes by linear extrapolation, strict input."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symconv
from symconv.core import counters
from symconv.frontends.cli import main
from symconv.frontends.explain import explain
from symconv.frontends.parsing import parse_shape
from symconv.numeric import layer_counts, vector_counters
from symconv.numeric import layer as layer_module
from symconv.numeric.layer import Layer

from .bruteforce import count_map, output_size

# One axis: (L, k, s, p, d, op, transposed) with small parameters, so brute force can enumerate them.
AXES = st.tuples(st.integers(1, 40), st.integers(1, 9), st.integers(1, 7), st.integers(0, 30),
                 st.integers(1, 7), st.integers(0, 6), st.booleans())


def _valid(L, k, s, p, d, op, transposed) -> bool:
    if transposed and not (op < s or op < d):
        return False
    return output_size(L, k, s, p, d, op if transposed else 0, transposed=transposed) >= 1


def _sums(L, k, s, p, d, op, transposed) -> tuple[int, int]:
    """(S, Z) of one axis from the literal count map."""
    c = count_map(L, k, s, p, d, op if transposed else 0, transposed=transposed)
    return sum(c), sum(1 for v in c if v)


def _counted(L, k, s, p, d, op, transposed) -> tuple[int, int]:
    """(S, Z) of one axis from the O(log) counters and the generated axis functions."""
    layer = Layer.make(f"{'ConvTranspose' if transposed else 'Conv'}1d", 1, 1, k, stride=s, padding=p, dilation=d,
                       output_padding=op if transposed else 0)
    (_, S, Z), = layer_counts.axis_counts(layer, (L,))
    return S, Z


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(AXES.filter(lambda axis: _valid(*axis)))
def test_counters_equal_the_count_map(axis):
    L, k, s, p, d, op, transposed = axis
    L_out = output_size(L, k, s, p, d, op if transposed else 0, transposed=transposed)
    c = count_map(L, k, s, p, d, op if transposed else 0, transposed=transposed)
    S, Z = _sums(*axis)
    assert _counted(*axis) == (S, Z)
    coverage = counters.transposed_coverage if transposed else counters.plain_coverage
    assert coverage(L, k, s, p, d, L_out) == Z
    vector = vector_counters.transposed_coverage if transposed else vector_counters.plain_coverage
    assert vector([L], [k], [s], [p], [d], [L_out]).tolist() == [Z]
    assert [len(counters.taps_at(j, L, k, s, p, d, transposed)) for j in range(L_out)] == c
    # the taps a weight gradient reaches: those with some product in the output
    reached_taps = {t for j in range(L_out) for t in counters.taps_at(j, L, k, s, p, d, transposed)}
    n, W = (L, L_out) if transposed else (L_out, L)
    assert counters.tap_coverage(n, k, s, p, d, W) == len(reached_taps)


@settings(max_examples=300, deadline=None)
@given(st.integers(-20, 200), st.integers(0, 30), st.integers(0, 12), st.integers(1, 9), st.integers(1, 9))
def test_lattice_count_equals_enumeration(q, n, k, s, d):
    pairs = sum(1 for i in range(n) for t in range(k) if i * s + t * d < q)
    assert counters.lattice_count(q, n, k, s, d) == pairs
    assert vector_counters.lattice_count([q], [n], [k], [s], [d]).tolist() == [pairs]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(1, 50), st.integers(-500, 500), st.integers(-10, 10))
def test_floor_sum_equals_the_sum(n, m, b, a):
    assert counters.floor_sum(n, m, a, b) == sum((a * u + b) // m for u in range(n))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(AXES.filter(lambda axis: _valid(*axis)), st.integers(10 ** 6, 10 ** 18))
def test_huge_sizes_continue_the_small_ones_linearly(axis, size):
    # Past a threshold where the two ends no longer meet, one more stride block of input
    # (1 input for a transposed axis, s inputs for a plain one) adds a fixed number to S and Z.
    L, k, s, p, d, op, transposed = axis
    step = 1 if transposed else s
    start = 2 * (k * d + p + op + s) + 5
    start += (size - start) % step  # so that size is start + m * step
    first, second = _sums(start, *axis[1:]), _sums(start + step, *axis[1:])
    m = (size - start) // step
    expected = tuple(a + m * (b - a) for a, b in zip(first, second))
    assert _counted(size, *axis[1:]) == expected
    S, Z = expected
    call = dict(stride=s, padding=p, dilation=d, output_padding=op if transposed else 0, transposed=transposed)
    assert symconv.additions_per_filter(size, k, convention="exact", **call) == S - Z
    assert layer_counts.python_additions_per_filter(size, k, convention="exact", **call) == S - Z
    L_out = output_size(size, k, s, p, d, op if transposed else 0, transposed=transposed)
    vector = vector_counters.transposed_coverage if transposed else vector_counters.plain_coverage
    assert vector([size], [k], [s], [p], [d], [L_out]).tolist() == [Z]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 2 ** 62), st.integers(1, 2 ** 62), st.integers(1, 2 ** 62), st.integers(0, 2 ** 62),
       st.integers(1, 2 ** 62), st.booleans())
def test_compiled_and_python_paths_agree_at_int64_scale(L, k, s, p, d, transposed):
    # Any kernel width: no path enumerates taps, so 2**62 taps cost what 3 do.
    op = 0
    if output_size(L, k, s, p, d, transposed=transposed) < 1:
        p = 0
    if output_size(L, k, s, p, d, transposed=transposed) < 1:
        return
    for convention in ("docs", "exact"):
        options = dict(stride=s, padding=p, dilation=d, output_padding=op, convention=convention,
                       transposed=transposed)
        assert (symconv.additions_per_filter(L, k, **options)
                == layer_counts.python_additions_per_filter(L, k, **options))


def test_counters_stay_exact_past_int64():
    L = 10 ** 40
    z = counters.transposed_coverage(L, 3, 2, 0, 2, (L - 1) * 2 + 4 + 1)
    assert z == L + 2  # stride = dilation = 2: every other position, L + k - 1 of them
    # kernel 10**30, padding 10**30: output 0's taps all read padding, every later one reaches the input
    assert counters.plain_coverage(L, 10 ** 30, 1, 10 ** 30, 1, L + 10 ** 30) == L + 10 ** 30 - 1
    assert symconv.additions_per_filter(2 ** 200, 4, stride=2, padding=1, convention="exact") == \
        4 * 2 ** 200 - 2 - (2 * 2 ** 200)


# --- strict input -------------------------------------------------------------------------------------

def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("shape", ["1,,1,8,8", ",1,1,8,8", "1,1,8_0,8", "1,1,８,8", "1,1,٣,8", "1,1,+8,8",
                                   "1,1,-8,8", "1,1,8,", "1, 1, 8.0, 8"])
def test_shapes_are_ascii_decimal_integers(shape):
    status, out, err = run_cli("count", "Conv2d(1, 1, 3)", "--input", shape)
    assert status == 2 and not out and len(err.strip().splitlines()) == 1 and "input shape" in err


def test_shapes_take_integers_of_any_length():
    digits = "7" * 9000
    assert parse_shape(f"1,1,{digits}") == (1, 1, int(digits))


@pytest.fixture
def unlimited_digits():
    """Integers of any length convert to text, as the CLI lets them (the test itself writes one)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    yield
    sys.set_int_max_str_digits(limit)


def test_large_counts_print_in_full(unlimited_digits):
    size = 10 ** 5000 + 7
    status, out, err = run_cli("count", "ConvTranspose1d(1, 1, 3)", "--input", f"1,1,{size}", "--convention", "all")
    assert status == 0, err
    total = symconv.count_layer(Layer.make("ConvTranspose1d", 1, 1, 3), (1, 1, size), "exact").total
    assert f"{total:,}" in out


def test_columns_of_large_counts_stay_aligned():
    size = 99_999_999_999
    status, out, err = run_cli("count", "Conv2d(3, 8, 3)", "--input", f"1,3,{size},{size}", "--convention", "all")
    assert status == 0, err
    rows = out.splitlines()[1:]  # the header, then one row per quantity
    layer = Layer.make("Conv2d", 3, 8, 3)
    counts = [symconv.count_layer(layer, (1, 3, size, size), c) for c in ("docs", "exact", "macs")]
    ends = {len(row) for row in rows}
    assert len(rows) == 7 and len(ends) == 1  # every row, the header included, ends at the same column
    for row in rows[1:]:
        name, *values = row.split()
        key = "lam" if name == "lambda" else name
        assert [int(v.replace(",", "")) for v in values] == [getattr(c, key) for c in counts]
    columns = [rows[0].index(c) + len(c) for c in ("docs", "exact", "macs")]  # each header ends over its numbers
    assert all(row[end - 1].isdigit() and (end == len(row) or row[end] == " ") for row in rows[1:] for end in columns)


def test_transposed_must_be_a_bool():
    for bad in ("no", 0, 1, None):
        with pytest.raises(symconv.SymconvError, match="transposed"):
            symconv.additions_per_filter(4, 4, transposed=bad)
    with pytest.raises(symconv.SymconvError, match="bias"):
        symconv.cost_model("Conv2d").lambdify("total", bias="no")


@pytest.mark.parametrize("L, k, d", [(1, 2, 1), (5, 4, 1), (3, 3, 2), (7, 2, 3)])
def test_padding_same_is_valid_exactly_where_torch_says(L, k, d):
    module = torch.nn.Conv1d(1, 1, k, padding="same", dilation=d, bias=False)
    torch.nn.init.ones_(module.weight)
    with torch.no_grad():
        y = module(torch.ones(1, 1, L))
    assert y.shape[-1] == L
    docs = symconv.additions_per_filter(L, k, padding="same", dilation=d, transposed=False)
    assert docs == L * (k - 1)
    exact = symconv.additions_per_filter(L, k, padding="same", dilation=d, transposed=False, convention="exact")
    assert exact == int(torch.clamp(y - 1, min=0).sum())  # each output adds its in-bounds products
    with pytest.raises(symconv.SymconvError, match="stride"):
        symconv.additions_per_filter(L, k, padding="same", stride=2, transposed=False)
    with pytest.raises(symconv.SymconvError, match="same"):
        symconv.additions_per_filter(L, k, padding="same")  # no transposed layer takes a string padding


def test_lambdified_functions_take_integers_only_and_stay_exact():
    model = symconv.cost_model("ConvTranspose1d")
    fn = model.lambdify("total", convention="exact")
    a = model.axes[0]
    layer = {"N": 1, "C_in": 2, "C_out": 4, "groups": 2, a.k.name: 4, a.s.name: 2, a.p.name: 1, a.d.name: 1,
             a.op.name: 0}
    sizes = [8, 10 ** 20, 3 * 10 ** 18]
    name = next(n for n in fn.names if n not in layer)  # the input size
    expected = [fn(**{name: v}, **layer) for v in sizes]  # Python ints, the scalar path
    assert expected[0] == symconv.count_layer(Layer.make("ConvTranspose1d", 2, 4, 4, stride=2, padding=1, groups=2),
                                              (1, 2, 8), "exact").total
    floats = fn(**{name: np.array(sizes, dtype=np.float64)}, **layer)
    assert floats.tolist() == expected and all(type(v) is int for v in floats.tolist())
    assert fn(**{name: np.array(sizes, dtype=object)}, **layer).tolist() == expected
    assert fn(**{name: np.array([8], dtype=np.uint64)}, **layer).tolist() == expected[:1]
    for bad, message in ((np.array([True]), "bool"), (np.array([8.5]), "8.5"), (np.array([np.nan]), "nan"),
                         (np.array([8, "8"], dtype=object), "'8'"), (True, "bool")):
        with pytest.raises(symconv.SymconvError, match=message):
            fn(**{name: bad}, **layer)


def test_vectorised_totals_equal_the_scalar_path_on_every_row():
    # The compiled kernel, the numpy path (rows past int64) and the scalar path on the same rows.
    rng = np.random.default_rng(5)
    n = 4000
    for kind, convention, bias in (("Conv2d", "exact", True), ("ConvTranspose3d", "exact", False),
                                   ("ConvTranspose2d", "docs", True), ("Conv3d", "macs", False)):
        model = symconv.cost_model(kind)
        fn = model.lambdify("total", convention=convention, bias=bias)
        cols = {name: rng.integers(0 if name.startswith(("padding", "output_padding")) else 1, 6, n)
                for name in fn.names}
        cols["groups"] = np.ones(n, dtype=np.int64)
        for a, axis in enumerate(model.axes):
            k, s, d = cols[f"kernel_size_{a}"], cols[f"stride_{a}"], cols[f"dilation_{a}"]
            L = np.where(rng.random(n) < 0.5, rng.integers(1, 30, n), 2 ** 40)
            if model.transposed:
                cols[f"output_padding_{a}"] %= np.maximum(s, d)
                reach = (L - 1) * s + d * (k - 1) + cols[f"output_padding_{a}"]
                cols[f"padding_{a}"] = np.minimum(cols[f"padding_{a}"], reach // 2)
            else:
                L = np.maximum(L, d * (k - 1) + 1)  # every row a valid layer
            cols[axis.L.name] = L
        got = fn(**cols)
        expected = [fn.scalar(*(int(cols[name][i]) for name in fn.names)) for i in range(n)]
        assert got.tolist() == expected
        assert got.dtype == object  # 2**40 on every axis passes int64: those rows are Python ints


def test_invalid_rows_are_named_like_the_python_path():
    model = symconv.cost_model("Conv1d")
    fn = model.lambdify("total")
    a = model.axes[0]
    cols = {"N": [1, 1, 1], "C_in": [2, 2, 2], "C_out": [2, 2, 2], "groups": [1, 1, 1], a.L.name: [8, 8, 2],
            a.k.name: [3, 3, 3], a.s.name: [1, 1, 1], a.p.name: [0, 0, 0], a.d.name: [1, 1, 1]}
    with pytest.raises(symconv.SymconvError, match=r"output size 0 < 1 .*configuration 2"):
        fn(**cols)


# --- explain on huge layers -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, k, s, p, d", [("ConvTranspose1d(1, 1, 7, stride=3, padding=2, dilation=2)", 7, 3, 2, 2),
                                             ("Conv1d(1, 1, 5, stride=2, padding=3, dilation=2)", 5, 2, 3, 2)])
def test_explain_summarises_a_long_axis_from_its_ends(text, k, s, p, d):
    transposed = text.startswith("ConvTranspose")
    huge, small = 10 ** 8, 60  # the ends of the map do not depend on how long the middle is
    small_map = count_map(small, k, s, p, d, transposed=transposed)
    huge_out = output_size(huge, k, s, p, d, transposed=transposed)
    at = huge_out // 2
    status, out, err = run_cli("explain", text, "--input", f"1,1,{huge}", "--at", str(at))
    assert status == 0, err
    runs = lambda values: ", ".join(  # noqa: E731
        f"{v}×{n}" if n > 1 else str(v) for v, n in _groups(values))
    assert f"positions 0..23: {runs(small_map[:24])}" in out
    assert f"positions {huge_out - 24}..{huge_out - 1}: {runs(small_map[-24:])}" in out
    S, Z = _counted(huge, k, s, p, d, 0, transposed)
    assert f"sum S={S:,}, reached Z={Z:,}" in out
    middle = [len(counters.taps_at(j, huge, k, s, p, d, transposed)) for j in range(at - 8, at + 9)]
    assert f"around {at}, positions {at - 8}..{at + 8}: {runs(middle)}" in out
    products = len(counters.taps_at(at, huge, k, s, p, d, transposed))
    assert f"output position ({at},): {products} product(s)" in out


def _groups(values):
    out = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def test_explain_lists_a_bounded_number_of_products():
    layer = Layer.make("Conv1d", 1, 1, 10 ** 10, padding=10 ** 10, dilation=3)
    text = explain(layer, (1, 1, 10 ** 11), (7,))
    taps = counters.taps_at(7, 10 ** 11, 10 ** 10, 1, 10 ** 10, 3, False)
    assert f"{len(taps):,} product(s)" in text and f"… and {len(taps) - 32:,} more" in text
    assert text.count(" x kernel tap ") == 32
    with pytest.raises(symconv.SymconvError, match="too large to plot"):
        from symconv.frontends.explain import plot
        plot(layer, (1, 1, 10 ** 11), "never-written.png")


def test_macs_needs_no_overlap_counts(monkeypatch):
    layer = Layer.make("ConvTranspose2d", 3, 8, (10 ** 15, 5), stride=(7, 2), padding=(10 ** 14, 1))
    calls = []
    original = layer_counts.axis_counts

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    compiled = layer_counts.count_layers(layer, (1, 3, 4, 4), ("macs", "exact"))
    monkeypatch.setattr(layer_counts, "axis_counts", spy)
    monkeypatch.setattr(layer_module, "native", None)  # the Python path, whose axis counts can be watched
    macs = symconv.count_layer(layer, (1, 3, 4, 4), "macs")
    exact = symconv.count_layer(layer, (1, 3, 4, 4), "exact")
    assert calls == [dict(S=False, Z=False), dict(S=True, Z=True)]
    assert macs.total == 3 * 8 * 16 * 10 ** 15 * 5
    assert exact.multiplications <= macs.multiplications
    assert compiled == {"macs": macs, "exact": exact}
