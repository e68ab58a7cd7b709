"""The symbolic core: identities, LaTeX round trip, numeric functions, and torch's rules."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
import torch
from sympy.parsing.latex import parse_latex

import symconv
from symconv.core import symbols
from symconv.core.latex import to_latex
from symconv.numeric.layer import Layer
from symconv.oracle import grid

from .bruteforce import count_map, simulate
from .conftest import KINDS


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_pages_summary_equals_total(kind, bias):
    m = symconv.cost_model(kind)
    assert sp.simplify(m.summary(bias) - m.total(bias)) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_summary_identity_can_fail(kind):
    # The identity is not vacuous: the bias-on summary differs from the bias-off total.
    m = symconv.cost_model(kind)
    assert sp.simplify(m.summary(True) - m.total(False)) != 0


@pytest.mark.parametrize("kind", KINDS)
def test_quantities_follow_their_definitions(kind):
    m = symconv.cost_model(kind)
    out = sp.Mul(*(a.L_out for a in m.axes))
    K = sp.Mul(*(a.k for a in m.axes))
    C_in, C_out, g = symbols.C_in, symbols.C_out, symbols.groups
    assert sp.simplify(m.psi - C_in * C_out / g) == 0
    lam = out * K + symbols.additions_per_filter if m.transposed else out * (2 * K - 1)
    assert sp.simplify(m.lam("docs") - lam) == 0
    for bias in (True, False):
        assert sp.simplify(m.gamma(bias) - C_out * out * (C_in / g - 1 + int(bias))) == 0


def test_convention_names_are_the_conventions():
    from symconv.core.names import CONVENTION_DESCRIPTIONS
    assert {n: c.description for n, c in symconv.CONVENTIONS.items()} == CONVENTION_DESCRIPTIONS


def test_output_size_formulas():
    a = symconv.cost_model("ConvTranspose1d").axes[0]
    assert symconv.cost_model("ConvTranspose1d").output_size(0) == (a.L - 1) * a.s - 2 * a.p + a.d * (a.k - 1) + a.op + 1
    b = symconv.cost_model("Conv1d").axes[0]
    assert symconv.cost_model("Conv1d").output_size(0) == sp.floor((b.L + 2 * b.p - b.d * (b.k - 1) - 1) / b.s) + 1


# --- LaTeX ------------------------------------------------------------------------------------

def _parse_back(tex: str) -> sp.Expr:
    """Parse our LaTeX with SymPy's lark parser, our symbols mapped to parseable placeholders."""
    names = sorted(symbols.LATEX_NAMES.items(), key=lambda kv: -len(kv[1]))
    placeholders = {}
    for i, (name, latex) in enumerate(names):
        token = "Q_{" + "".join(chr(ord("a") + int(c)) for c in str(i)) + "}"  # the parser reads letters
        if latex in tex:
            tex = tex.replace(latex, token)
            placeholders[token] = name
    parsed = parse_latex(tex, backend="lark")
    mapping = {}
    for s in parsed.free_symbols:
        key = str(s)
        assert key in placeholders, f"unmapped symbol {key} in {tex}"
        mapping[s] = symbols.SYMBOLS[placeholders[key]]
    return parsed.xreplace(mapping)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("quantity", ["output_size", "psi", "multiplications", "additions", "lambda", "gamma",
                                      "total", "summary"])
@pytest.mark.parametrize("convention", ["docs", "exact", "macs"])
def test_latex_round_trip(kind, quantity, convention):
    m = symconv.cost_model(kind)
    for axis in range(m.ndim if quantity == "output_size" else 1):
        for bias in (True, False):
            expr = m.quantity(quantity, convention=convention, bias=bias, axis=axis)
            back = _parse_back(m.latex(quantity, convention=convention, bias=bias, axis=axis))
            assert sp.simplify(back - expr) == 0, (quantity, to_latex(expr))


def test_latex_uses_pages_notation():
    tex = symconv.cost_model("ConvTranspose2d").latex("total", bias=False)
    for token in (r"C_{in}", r"C_{out}", r"\text{groups}", r"H_{out}", r"W_{out}", r"\text{kernel\_size[0]}",
                  r"\text{additions\_per\_filter}", r"\times"):
        assert token in tex
    assert r"\text{kernel\_size}" in symconv.cost_model("ConvTranspose1d").latex("lambda")
    assert r"L_{out}" in symconv.cost_model("Conv1d").latex("lambda")


def test_latex_round_trip_detects_a_change():
    m = symconv.cost_model("Conv2d")
    back = _parse_back(m.latex("output_size"))
    assert sp.simplify(back - (m.output_size(0) + 1)) != 0


# --- numeric functions ----------------------------------------------------------------------------

def _random_config(m, rng: random.Random) -> dict[str, int]:
    g = rng.choice([1, 2, 4])
    values = {"N": rng.randint(1, 9), "C_in": g * rng.randint(1, 4), "C_out": g * rng.randint(1, 4), "groups": g}
    while True:
        for a in m.axes:
            k, s, d = rng.randint(1, 5), rng.randint(1, 4), rng.randint(1, 3)
            values.update({a.L.name: rng.randint(1, 40), a.k.name: k, a.s.name: s, a.d.name: d,
                           a.p.name: rng.randint(0, d * (k - 1) + 1)})
            if m.transposed:
                values[a.op.name] = rng.randint(0, max(s, d) - 1)
        axes = [[values[getattr(a, f).name] for a in m.axes] for f in "kspd"]
        try:
            layer = Layer.make(m.kind, 1, 1, axes[0], stride=axes[1], padding=axes[2], dilation=axes[3],
                               output_padding=[values.get(a.op.name, 0) for a in m.axes])
            layer.check_input((1, *(values[a.L.name] for a in m.axes)))
            return values
        except symconv.SymconvError:
            continue


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("convention", ["docs", "exact", "macs"])
def test_lambdified_total_is_exact_and_vectorised(kind, convention):
    m = symconv.cost_model(kind)
    fn = m.lambdify("total", convention=convention, bias=False)
    expr = m.quantity("total", convention=convention, bias=False, resolved=True)
    rng = random.Random(7)
    configs = [_random_config(m, rng) for _ in range(25)]
    columns = {n: np.array([c[n] for c in configs]) for n in fn.names}
    vector = fn(**columns)
    assert vector.dtype == np.int64
    for c, v in zip(configs, vector):
        exact = expr.xreplace({s: c[s.name] for s in m.parameters()})
        assert exact.is_Integer and int(exact) == v == fn(**c)
        assert isinstance(fn(**c), int)


def test_lambdify_falls_back_to_python_ints_past_int64():
    m = symconv.cost_model("ConvTranspose2d")
    fn = m.lambdify("total", convention="exact")
    small = dict(N=1, C_in=1, C_out=1, groups=1, H_in=4, W_in=4, kernel_size_0=4, kernel_size_1=4, stride_0=2,
                 stride_1=2, padding_0=1, padding_1=1, dilation_0=1, dilation_1=1, output_padding_0=0,
                 output_padding_1=0)
    huge = dict(small, N=10 ** 9, C_in=10 ** 6, C_out=10 ** 6)
    expected = m.quantity("total", convention="exact", resolved=True).xreplace(
        {s: huge[s.name] for s in m.parameters()})
    assert fn(**huge) == int(expected) > 2 ** 63
    mixed = fn(**{k: np.array([v, huge[k]]) for k, v in small.items()})
    assert mixed.dtype == object and mixed[1] == int(expected) and mixed[0] == fn(**small)


def test_lambdify_rejects_non_integers_and_unknown_names():
    fn = symconv.cost_model("Conv1d").lambdify("psi")
    with pytest.raises(symconv.SymconvError, match="C_in"):
        fn(N=np.array([1.0]), C_in=np.array([1.5]), C_out=np.array([2]), groups=np.array([1]), L_in=1,
           kernel_size=1, stride=1, padding=0, dilation=1)
    with pytest.raises(TypeError, match="bogus"):
        fn(bogus=1)


def test_import_is_fast_and_torch_free():
    code = ("import sys, time; t = time.perf_counter(); import symconv; "
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False"
    assert float(out[0]) < 1.0


# --- torch's rules, exhaustively ----------------------------------------------------------------------

_FUNCTIONAL = {(1, False): torch.nn.functional.conv1d, (1, True): torch.nn.functional.conv_transpose1d,
               (2, False): torch.nn.functional.conv2d, (2, True): torch.nn.functional.conv_transpose2d,
               (3, False): torch.nn.functional.conv3d, (3, True): torch.nn.functional.conv_transpose3d}


def _torch_shape(pt: grid.Point):
    fn = _FUNCTIONAL[(pt.ndim, pt.transposed)]
    x = torch.zeros((1, 1, *pt.L))
    w = torch.zeros((1, 1, *pt.k))
    try:
        if pt.transposed:
            shape = tuple(fn(x, w, stride=pt.s, padding=pt.p, output_padding=pt.op, dilation=pt.d).shape[2:])
        else:
            shape = tuple(fn(x, w, stride=pt.s, padding=pt.p, dilation=pt.d).shape[2:])
    except RuntimeError:
        return None
    # ConvTranspose2d/3d on CPU return an empty tensor for a zero-size axis where 1-d raises;
    # symconv rejects every output size below 1, so an empty output counts as rejected.
    return shape if all(shape) else None


def _engine_shape(pt: grid.Point):
    kind = ("ConvTranspose" if pt.transposed else "Conv") + f"{pt.ndim}d"
    try:
        spec = Layer.make(kind, 1, 1, pt.k, stride=pt.s, padding=pt.p, dilation=pt.d, output_padding=pt.op)
        spec.check_input((1, 1, *pt.L))
    except symconv.SymconvError:
        return None
    m = symconv.cost_model(kind)
    values = {}
    for a, ax in enumerate(m.axes):
        values.update({ax.L: pt.L[a], ax.k: pt.k[a], ax.s: pt.s[a], ax.p: pt.p[a], ax.d: pt.d[a], ax.op: pt.op[a]})
    return tuple(int(m.output_size(a).xreplace(values)) for a in range(pt.ndim))


def _mixed_points(transposed: bool, ndim: int, count: int) -> list[grid.Point]:
    options = grid.grid_1d(transposed, valid_only=False)
    rng = random.Random(ndim)
    points = []
    for _ in range(count):
        axes = [rng.choice(options) for _ in range(ndim)]
        points.append(grid.Point(transposed, *(tuple(ax[f][0] for ax in axes) for f in range(1, 7))))
    return points


@pytest.mark.parametrize("transposed", [False, True])
def test_output_sizes_and_rejections_match_torch_exhaustively(transposed):
    points = grid.grid_1d(transposed, valid_only=False)
    points += _mixed_points(transposed, 2, 400) + _mixed_points(transposed, 3, 150)
    rejected = 0
    for pt in points:
        expected = _torch_shape(pt)
        assert _engine_shape(pt) == expected, pt.describe()
        rejected += expected is None
    assert rejected > 0  # the grid does exercise torch's rejections


def test_bad_layers_raise_value_errors_naming_the_parameter():
    cases = [
        (dict(kind="Conv2d", in_channels=3, out_channels=4, kernel_size=3, groups=2), "groups=2"),
        (dict(kind="ConvTranspose1d", in_channels=1, out_channels=1, kernel_size=3, stride=2, output_padding=2),
         "output_padding"),
        (dict(kind="Conv1d", in_channels=0, out_channels=1, kernel_size=3), "in_channels=0"),
        (dict(kind="Conv1d", in_channels=1, out_channels=1, kernel_size=0), "kernel_size=0"),
        (dict(kind="Conv4d", in_channels=1, out_channels=1, kernel_size=1), "Conv4d"),
    ]
    for kwargs, message in cases:
        with pytest.raises(symconv.SymconvError, match=re.escape(message)):
            Layer.make(**kwargs)
    spec = Layer.make("Conv1d", 1, 1, 5)
    with pytest.raises(symconv.SymconvError, match="output size"):
        spec.check_input((1, 1, 3))
    with pytest.raises(symconv.SymconvError, match="input shape"):
        spec.check_input((1, 1, 0))



def test_the_public_counts_refuse_arguments_of_the_wrong_kind_naming_them():
    # a string shape was read a character at a time ("size ',' is not an integer"), None and a torch module raised
    # TypeError and AttributeError, and a lazy module's unknown in_channels read as "in_channels=0 must be >= 1"
    spec = Layer.make("Conv2d", 3, 4, 3)
    for call in (lambda shape: symconv.count_layer(spec, shape), lambda shape: symconv.count_gradients(spec, shape),
                 lambda shape: symconv.count_ops(torch.nn.Conv2d(3, 4, 3), shape)):
        for shape in ("1,3,8,8", None, 8):
            with pytest.raises(symconv.SymconvError, match=re.escape(f"input_shape={shape!r} must be a tuple of "
                                                                     f"sizes")):
                call(shape)
        assert call(torch.Size([1, 3, 8, 8])) == call([1, 3, 8, 8])
    with pytest.raises(symconv.SymconvError, match="^layer=Conv2d must be a symconv.Layer: "):
        symconv.count_layer(torch.nn.Conv2d(3, 4, 3), (1, 3, 8, 8))
    with pytest.raises(symconv.SymconvError, match="^LazyConv2d has not inferred in_channels yet"):
        symconv.layer_from_module(torch.nn.LazyConv2d(4, 3))
    lazy = torch.nn.LazyConv2d(4, 3)
    lazy(torch.zeros(1, 3, 8, 8))  # once run, it is a Conv2d
    assert symconv.count_ops(lazy, (1, 3, 8, 8), "exact") == symconv.count_layer(spec, (1, 3, 8, 8), "exact").total


def test_a_checked_input_is_remembered_for_its_exact_values_only():
    spec = Layer.make("Conv2d", 2, 4, 3, stride=2, padding=1)
    first = spec.check_input((1, 2, 9, 9))
    assert first == (1, (9, 9), (5, 5))
    assert spec.check_input([1, 2, 9, 9]) is first  # the same shape again: the remembered answer
    # Equal values of another type are no shape: True == 1 and 2.0 == 2, yet both are refused.
    for bad in ((True, 2, 9, 9), (1, 2.0, 9, 9), (1, 2, 9.0, 9)):
        with pytest.raises(symconv.SymconvError, match="positive integers"):
            spec.check_input(bad)
    assert spec.check_input((3, 2, 8, 9)) == (3, (8, 9), (4, 5))
    assert spec == Layer.make("Conv2d", 2, 4, 3, stride=2, padding=1)  # the memo is not part of the layer

# --- the pages' worked numbers --------------------------------------------------------------------------

def test_convtranspose1d_page_example():
    # Input ones (1, 2), kernel 3: output [1, 2, 2, 1], 2 additions.
    assert count_map(2, 3, 1, 0, 1, transposed=True) == [1, 2, 2, 1]
    assert symconv.additions_per_filter(2, 3) == 2


def test_convtranspose2d_page_example():
    # Input ones (1, 2, 2), kernel 2: sum(y - 1) over [[0,1,0],[1,3,1],[0,1,0]] is 7.
    row = count_map(2, 2, 1, 0, 1, transposed=True)
    assert [[a * b - 1 for b in row] for a in row] == [[0, 1, 0], [1, 3, 1], [0, 1, 0]]
    assert symconv.additions_per_filter((2, 2), 2) == 7


@pytest.mark.parametrize("layer_args, shape", [
    ((4, 64, 3), (8, 4, 32, 32)),
    ((64, 128, (3, 5)), (2, 64, 17, 23)),
    ((16, 32, 3), (1, 16, 9, 9)),
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_page_totals(layer_args, shape, bias):
    # The Conv2d page's summary formulas, transcribed: bias on N·C_in·C_out·H·W·2·k0·k1/g,
    # bias off N·C_out·H·W·(C_in·2·k0·k1 - g)/g.
    for groups, padding, stride in ((1, 0, 1), (4, 1, 2)):
        module = torch.nn.Conv2d(*layer_args, bias=bias, groups=groups, padding=padding, stride=stride)
        H, W = module(torch.zeros(shape)).shape[2:]
        N, C_in, C_out = shape[0], module.in_channels, module.out_channels
        k0, k1 = module.kernel_size
        page = (N * C_in * C_out * H * W * 2 * k0 * k1 // groups if bias
                else N * C_out * H * W * (C_in * 2 * k0 * k1 - groups) // groups)
        assert symconv.count_ops(module, shape, "docs") == page


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("convention", ["docs", "exact", "macs"])
def test_counts_equal_a_literal_simulation(kind, convention):
    rng = random.Random(kind)
    ndim = int(kind[-2])
    checked = 0
    for _ in range(12):
        g = rng.choice([1, 2])
        kwargs = dict(kernel_size=tuple(rng.randint(1, 3) for _ in range(ndim)),
                      stride=tuple(rng.randint(1, 3) for _ in range(ndim)),
                      padding=tuple(rng.randint(0, 2) for _ in range(ndim)),
                      dilation=tuple(rng.randint(1, 2) for _ in range(ndim)),
                      groups=g, bias=rng.random() < 0.5)
        if kind.startswith("ConvTranspose"):
            kwargs["output_padding"] = tuple(rng.randint(0, max(s, d) - 1)
                                             for s, d in zip(kwargs["stride"], kwargs["dilation"]))
        spec = Layer.make(kind, 2 * g, g * rng.randint(1, 2), **kwargs)
        shape = (rng.randint(1, 2), spec.in_channels, *(rng.randint(1, 5) for _ in range(ndim)))
        try:
            spec.check_input(shape)
        except symconv.SymconvError:
            continue
        checked += 1
        assert symconv.count_layer(spec, shape, convention).total == simulate(spec, shape, convention)
    assert checked >= 4, f"only {checked} of 12 random layers were valid"


def test_lambdified_functions_reject_invalid_layers():
    fn = symconv.cost_model("ConvTranspose1d").lambdify("total")
    base = dict(N=1, C_in=4, C_out=4, groups=2, L_in=4, kernel_size=3, stride=2, padding=1, dilation=1,
                output_padding=1)
    assert fn(**base) == symconv.count_layer(Layer.make("ConvTranspose1d", 4, 4, 3, stride=2, padding=1,
                                                        output_padding=1, groups=2), (1, 4, 4)).total
    cases = [(dict(groups=3), "groups=3 must divide in_channels=4"),
             (dict(output_padding=2), "output_padding=2 must be smaller than stride=2 or dilation=1"),
             (dict(padding=5), "output size 0 < 1 on axis 0 for L_in=4"),
             (dict(L_in=0), "L_in=0 must be >= 1"),
             (dict(C_in=np.array([4, 6, 3])), "in_channels=3 and out_channels=4 (configuration 2)")]
    for change, message in cases:
        with pytest.raises(symconv.SymconvError, match=re.escape(message)):
            fn(**{**base, **change})


def test_vectorised_overflow_checks_both_paths():
    # Inputs below 2**31 shadow only the top level; larger inputs shadow every piece.
    m = symconv.cost_model("ConvTranspose1d")
    fn = m.lambdify("total", convention="exact")
    rows = [dict(N=2 ** 30, C_in=2 ** 30, C_out=2 ** 30, groups=1, L_in=40, kernel_size=5, stride=3, padding=2,
                 dilation=2, output_padding=1),
            dict(N=1, C_in=1, C_out=1, groups=1, L_in=2 ** 40, kernel_size=5, stride=3, padding=2, dilation=2,
                 output_padding=1)]
    for row in rows:
        expected = int(m.quantity("total", convention="exact", resolved=True).xreplace(
            {s: row[s.name] for s in m.parameters()}))
        got = fn(**{k: np.array([v, 3 if k == "L_in" else v]) for k, v in row.items()})
        assert got[0] == expected
