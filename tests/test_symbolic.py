"""Counts as formulas of the input size: every formula against the concrete count at sampled sizes."""

from __future__ import annotations

import ast
import functools
import io
import itertools
import json
import random
import re
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from torch import nn

import symconv
from symconv.core import overlap
from symconv.core.printing import ScalarPrinter
from symconv.core.sized import sized_axis, sized_gradient_axis
from symconv.core.sizes import (Formula, any_of, as_residues, canonical, joined_below, normalized, parse_size,
                                says_not_one, tidied)
from symconv.core.text import formula_text
from symconv.frontends import examples
from symconv.frontends.cli import main
from symconv.numeric import _scalar_generated as generated
from symconv.numeric.layer import Layer, axis_accepted
from symconv.oracle import grid
from symconv.tracing.symbolic import SymbolicRun

from .bruteforce import simulate, simulate_gradients
from .models import Conv2dSame, SkipUp, Tokens

CONVENTIONS = ("docs", "exact", "macs")
COUNTERS = (overlap.LatticeCount, overlap.TransposedCoverage, overlap.PlainCoverage, overlap.TapCoverage)


def no_counter(expr: sp.Basic) -> bool:
    return not expr.atoms(*COUNTERS)


# --- one axis, every layer of the grid, every size up to past the thresholds --------------------------------------

@pytest.mark.parametrize("transposed", [True, False])
def test_axis_forms_equal_the_exact_counters_on_the_grid(transposed):
    # L_out, S and Z, and the backward pass's Z_in and Z_tap; plain axes with uneven padding too
    L = sp.Symbol("L", integer=True, positive=True)
    configs = sorted({pt.axis(0)[1:] for pt in grid.grid_1d(transposed)})
    fns = (generated.t_L_out, generated.t_S, generated.t_Z, generated.t_Zin, generated.t_Ztap) if transposed else \
        (generated.p_L_out, generated.p_S, generated.p_Z, generated.p_Zin, generated.p_Ztap)
    checked = 0
    for k, s, p, d, op in configs:
        for pr in (p,) if transposed else (p, p + 1, max(p - 2, 0)):
            axis = sized_axis(transposed, L, k, s, p, pr, d, op)
            forms = (axis.L_out, axis.S, axis.Z, *sized_gradient_axis(transposed, L, k, s, p, pr, d, op))
            assert all(no_counter(e) for e in forms[1:])
            values = sp.lambdify(L, forms, modules=["math"], printer=ScalarPrinter())  # one function, all five
            for n in range(1, 3 * (k * d + p + pr + s) + 4):
                args = (n, k, s, p, d, op) if transposed else (n, k, s, p, pr, d)
                if not (axis_accepted(True, n, k, s, p, d, op) if transposed else generated.p_L_out(*args) >= 1):
                    continue
                assert tuple(map(int, values(n))) == tuple(f(*args) for f in fns), (k, s, p, pr, d, op, n)
                checked += 1
    assert checked > (15_000 if transposed else 40_000)


def test_sizes_written_as_multiples_make_the_floors_vanish():
    h = parse_size("h")
    axis = sized_axis(False, 8 * h, 3, 2, 1, 1, 1, 0)
    assert axis.L_out == 4 * h and axis.S == 12 * h - 1 and axis.Z == 4 * h
    axis = sized_axis(True, 4 * h, 4, 2, 1, 1, 1, 0)
    assert (axis.L_out, axis.S, axis.Z) == (8 * h, 16 * h - 2, 8 * h)


# --- single layers against the single-layer engine ------------------------------------------------------------------

def _random_layer(rng: random.Random) -> tuple[Layer, int]:
    while True:
        ndim, transposed = rng.randint(1, 3), rng.random() < 0.5
        g = rng.choice([1, 2])
        k = tuple(rng.randint(1, 5) for _ in range(ndim))
        s = tuple(rng.randint(1, 3) for _ in range(ndim))
        d = tuple(rng.randint(1, 3) for _ in range(ndim))
        mode = "zeros" if transposed else rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"])
        try:
            if not transposed and rng.random() < 0.2:
                layer = Layer.make(f"Conv{ndim}d", 2 * g, 2 * g, k, dilation=d, padding="same", groups=g,
                                   padding_mode=mode)
            else:
                op = tuple(rng.randint(0, max(si, di) - 1) for si, di in zip(s, d)) if transposed else 0
                p = tuple(rng.randint(0, di * (ki - 1) + 1) for ki, di in zip(k, d))
                layer = Layer.make(("ConvTranspose" if transposed else "Conv") + f"{ndim}d", 2 * g, 2 * g, k,
                                   stride=s, padding=p, dilation=d, output_padding=op, groups=g,
                                   bias=rng.random() < 0.5, padding_mode=mode)
            return layer, ndim
        except symconv.SymconvError:
            continue


@pytest.mark.parametrize("seed", range(4))
def test_random_layers_against_the_single_layer_engine(seed):
    rng = random.Random(seed)
    checked = 0
    for _ in range(12):
        layer, ndim = _random_layer(rng)
        names = ["D", "H", "W"][-ndim:]
        shape = ("N", layer.in_channels, *names)
        counts = {c: symconv.count_layer(layer, shape, c) for c in CONVENTIONS}
        for c in counts.values():
            assert all(no_counter(v) for v in c.as_dict().values())
        for _ in range(12):
            sizes = {n: rng.randint(1, 40) for n in names}
            sizes["N"] = rng.randint(1, 3)
            concrete = (sizes["N"], layer.in_channels, *(sizes[n] for n in names))
            try:
                expected = {c: symconv.count_layer(layer, concrete, c) for c in CONVENTIONS}
            except symconv.SymconvError:  # torch refuses these sizes: so does the formula's domain
                with pytest.raises(symconv.SymconvError, match="outside the domain"):
                    Formula(counts["exact"].total, counts["exact"].domain)(**sizes)
                continue
            for c in CONVENTIONS:
                got = counts[c]
                for q in ("psi", "multiplications", "additions", "lambda", "gamma", "total"):
                    assert Formula(got.as_dict()[q], got.domain)(**sizes) == expected[c].as_dict()[q], (layer, q, c)
            checked += 1
    assert checked >= 60


@pytest.mark.parametrize("seed", range(3))
def test_random_layers_backward_against_a_triple_by_triple_count(seed):
    rng = random.Random(100 + seed)
    checked = 0
    for _ in range(10):
        layer, ndim = _random_layer(rng)
        if layer.right_padding != layer.padding:
            continue  # the brute force's docs adjoint is a torch layer: even padding only
        layer = replace(layer, padding_mode="zeros")  # what a convolution's backward runs on: the padded input
        names = ["D", "H", "W"][-ndim:]
        counts = {c: symconv.count_gradients(layer, ("N", layer.in_channels, *names), c) for c in CONVENTIONS}
        assert all(no_counter(v) for c in counts.values() for v in c.values())
        domain = symconv.count_layer(layer, ("N", layer.in_channels, *names), "exact").domain
        for _ in range(8):
            sizes = {n: rng.randint(1, {1: 40, 2: 20, 3: 9}[ndim]) for n in names}  # the brute force is cubic in 3-d
            sizes["N"] = rng.randint(1, 2)
            concrete = (sizes["N"], layer.in_channels, *(sizes[n] for n in names))
            try:
                layer.check_input(concrete)
            except symconv.SymconvError:
                continue
            for c in CONVENTIONS:
                expected = simulate_gradients(layer, concrete, c)
                assert {w: Formula(v, domain)(**sizes) for w, v in counts[c].items()} == expected, (layer, c, sizes)
            checked += 1
    assert checked >= 40


# --- whole models: the formula at 50 sizes against the concrete profile ----------------------------------------------

class Encoder2d(nn.Module):
    """Stride-2 encoder and a transposed decoder with output_padding, dilation, groups, padding='same'."""

    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
                                  nn.Conv2d(16, 16, 4, padding="same", groups=4))
        self.up = nn.Sequential(nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, groups=2))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.up(self.down(x)).permute(0, 2, 3, 1))


class Audio1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(2, 8, 7, stride=3, padding=3), nn.LeakyReLU(0.1),
                                 nn.Conv1d(8, 8, 3, dilation=3, padding="same", padding_mode="reflect"),
                                 nn.ConvTranspose1d(8, 4, 5, stride=3, padding=1, output_padding=2))

    def forward(self, x):
        return self.net(x)


class Volume3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv3d(1, 4, 3, stride=2, padding=1)
        self.mid = nn.Conv3d(4, 4, 2, padding="same", groups=2)
        self.dec = nn.ConvTranspose3d(4, 2, 2, stride=2)

    def forward(self, x):
        return self.dec(self.mid(self.enc(x)))


MODELS = [
    ("2-d encoder-decoder", Encoder2d, (1, 3, "H", "W"), ("H", "W")),
    ("2-d encoder-decoder at multiples", Encoder2d, (1, 3, "8*h", "8*w"), ("h", "w")),
    ("1-d, reflect and dilation", Audio1d, ("N", 2, "L"), ("N", "L")),
    ("3-d", Volume3d, (1, 1, "D", "H", "W"), ("D", "H", "W")),
    ("DCGAN generator", lambda: examples.dcgan_generator(nz=16, ngf=8), (1, 16, "H", "W"), ("H", "W")),
    ("U-Net decoder", lambda: examples.unet_decoder(channels=16), (1, 16, "H", "W"), ("H", "W")),
    ("output_size= from the input's sizes", SkipUp, (1, 3, "H", "W"), ("H", "W")),
    ("TensorFlow's 'same' padding computed from the sizes", lambda: Conv2dSame(3, 4, (3, 4), stride=(2, 3)),
     (2, 3, "H", "W"), ("H", "W")),
]


@pytest.mark.parametrize("name, build, shape, names", MODELS, ids=[m[0] for m in MODELS])
def test_model_formulas_at_50_sizes_against_the_concrete_profile(name, build, shape, names):
    model = build()
    result = symconv.profile(model, shape, "exact", all_conventions=True)
    assert result.symbolic and all(no_counter(result.total(c)) for c in CONVENTIONS)
    # SymPy's own functions only (torch's CeilToInt, IntTrueDiv, … translated), so that it prints and converts
    assert all(type(f).__module__.startswith("sympy") for f in result.total("exact").atoms(sp.Function))
    formulas = _against_concrete_profiles(model, result, shape, names, random.Random(name), 50, 60)
    if "multiples" in name:
        for c in CONVENTIONS:
            readable = formulas[c].readable()
            assert readable.is_polynomial(*(parse_size(n) for n in names)), readable


def _against_concrete_profiles(model: nn.Module, result: symconv.Profile, shape: tuple, names: tuple[str, ...],
                               rng: random.Random, count: int, largest: int) -> dict:
    """The profile's formulas, each equal to the concrete profile's total at ``count`` sizes within the domain."""
    formulas = {c: result.formula(c) for c in CONVENTIONS}
    checked = refused = 0
    while checked < count:
        sizes = {n: rng.randint(1, largest) for n in names}
        concrete = tuple(int(parse_size(v).xreplace({parse_size(n): v for n, v in sizes.items()}))
                         if isinstance(v, str) else v for v in shape)
        try:
            formulas["exact"].check(sizes)
        except symconv.SymconvError:
            refused += 1
            assert refused < 4 * count
            continue
        profile = symconv.profile(model, concrete, "exact", all_conventions=True, backward=result.backward)
        assert {c: formulas[c](**sizes) for c in CONVENTIONS} == {c: profile.total(c) for c in CONVENTIONS}, sizes
        checked += 1
    return formulas


TRAINED = [m for m in MODELS if "multiples" not in m[0] and "DCGAN" not in m[0]] + [
    ("transformer layer", lambda: nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), (2, "T", 16), ("T",))]


@pytest.mark.parametrize("name, build, shape, names", TRAINED, ids=[m[0] for m in TRAINED])
def test_training_step_formulas_against_the_concrete_training_step(name, build, shape, names):
    # the backward pass as formulas: every convolution's three gradients and the backward's matrix products
    model = build()
    result = symconv.profile(model, shape, "exact", all_conventions=True, backward=True)
    backward = [r for r in result.records if r.phase == "backward" and r.counted is not None]
    assert backward and any(r.counted.totals["exact"].free_symbols for r in backward)
    assert all(no_counter(result.total(c)) for c in CONVENTIONS)
    _against_concrete_profiles(model, result, shape, names, random.Random(name), 12, 40)


@pytest.mark.parametrize("build", [SkipUp, lambda: Conv2dSame(3, 4, (3, 4), stride=(2, 3))],
                         ids=["output_size=", "size-dependent zero padding"])
def test_a_parameter_that_follows_the_sizes_is_exact_at_every_size(build):
    # its counts hold where its values do: the smallest sizes, whose paddings differ, are not refused
    model = build()
    formula = symconv.profile(model, (2, 3, "H", "W"), "exact").formula()
    assert formula.conditions() == []
    for h, w in itertools.product(range(1, 17), repeat=2):
        assert formula(H=h, W=w) == symconv.profile(model, (2, 3, h, w), "exact").total(), (h, w)


@pytest.mark.parametrize("build, shape, concrete", [
    (Audio1d, ("N", 2, "L"), (2, 2, 40)),
    (lambda: nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), (2, "T", 16), (2, 9, 16)),
], ids=["1-d convolutions", "transformer layer"])
def test_symbolic_and_concrete_runs_list_the_same_uncounted_operators(build, shape, concrete):
    # Fake tensors dispatch metadata queries (tensor.device) that meta tensors answer directly: not operators.
    model = build()
    listed = [Counter(r.op for r in symconv.profile(model, s, "exact").records if r.counted is None)
              for s in (shape, concrete)]
    assert listed[0] and listed[0] == listed[1]


class Recognizer(nn.Module):
    """A text-line recogniser: convolutions over a line image, then a bidirectional LSTM along its width."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3))
        self.rnn = nn.LSTM(6 * 2, 5, 2, bidirectional=True, proj_size=3)
        self.head = nn.Linear(6, 7)

    def forward(self, x):  # (N, 1, 8, W)
        features = self.conv(x)  # (N, 6, 2, W/2 - 2)
        steps = features.flatten(1, 2).permute(2, 0, 1)  # (T, N, 12)
        return self.head(self.rnn(steps)[0])


class LearnedStart(nn.Module):
    """A GRU whose initial state is a parameter: its gradient runs through the first step too."""

    def __init__(self):
        super().__init__()
        self.rnn, self.start = nn.GRU(4, 6, 2), nn.Parameter(torch.zeros(2, 1, 6))

    def forward(self, x):  # (T, B, 4)
        return self.rnn(x, self.start.expand(-1, x.shape[1], -1).contiguous())[1]


RECURRENT = [
    ("LSTM", lambda: nn.LSTM(8, 16, batch_first=True), ("B", "T", 8), ("B", "T")),
    ("GRU from a learned initial state", LearnedStart, ("T", "B", 4), ("T", "B")),
    ("LSTM, 2 layers, bidirectional, projections", lambda: nn.LSTM(6, 7, 2, bidirectional=True, proj_size=4),
     ("T", "B", 6), ("T", "B")),
    ("GRU without bias, unbatched", lambda: nn.GRU(5, 6, 3, bias=False), ("T", 5), ("T",)),
    ("RNN relu, bidirectional", lambda: nn.RNN(4, 5, nonlinearity="relu", bidirectional=True, batch_first=True),
     (3, "T", 4), ("T",)),
    ("convolutions, then an LSTM along the width", Recognizer, ("N", 1, 8, "W"), ("N", "W")),
]


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "training step"])
@pytest.mark.parametrize("name, build, shape, names", RECURRENT, ids=[m[0] for m in RECURRENT])
def test_recurrent_layers_keep_the_sequence_length_symbolic(name, build, shape, names, backward):
    # torch's recurrent layers loop over the steps, which fixed the sequence length at its hint; counted whole,
    # the formulas hold at every length, checked against concrete profiles (their products counted step by step,
    # forward, and backward as autograd differentiates the steps)
    model = build()
    result = symconv.profile(model, shape, "exact", all_conventions=True, backward=backward)
    assert {s.name for s in result.formula().expr.free_symbols} == set(names)
    assert not [c for c in result.domain if isinstance(c, sp.Eq)]  # no size fixed
    _against_concrete_profiles(model, result, shape, names, random.Random(name), 6, 12)
    assert any(r.op in ("aten.lstm", "aten.gru", "aten.rnn_relu") for r in result.counted)
    assert "aten.new_empty" not in {r.op for r in result.records}  # the stand-ins symconv makes are not listed
    # the first name at 1 is in the domain (the recogniser's batch through its steps: N*(floor(W/2) - 2) ≠ 1)
    at = {n: 1 if n == names[0] else 9 for n in names}
    concrete = tuple(at[v] if isinstance(v, str) else v for v in shape)
    assert result.formula("exact")(**at) == symconv.profile(model, concrete, "exact", backward=backward).total()


class Attention(nn.Module):
    """Scores with a learned bias through baddbmm, whose own symbolic kernel fails on a symbolic size."""

    def __init__(self):
        super().__init__()
        self.key, self.bias = nn.Parameter(torch.randn(2, 5, 7)), nn.Parameter(torch.randn(7))

    def forward(self, x):  # (2, M, 5)
        return torch.baddbmm(self.bias, x, self.key, beta=0.5, alpha=2.0).softmax(-1)


class Pyramid(nn.Module):
    """A feature pyramid's top-down path: the coarse level rescaled to the fine level's size, given as sizes."""

    def __init__(self):
        super().__init__()
        self.fine, self.coarse = nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 4, 3, 2, 1)
        self.out = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        fine = self.fine(x)
        coarse = F.interpolate(self.coarse(fine), size=fine.shape[-2:], mode="nearest")
        return self.out(fine + F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear"))


class Unfolded(nn.Module):
    """A convolution written as unfold, a product, and fold."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3 * 9, 3 * 9))

    def forward(self, x):  # (1, 3, H, W)
        columns = F.unfold(x, 3, padding=1)
        return F.fold(self.weight @ columns, x.shape[-2:], 3, padding=1)


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "training step"])
@pytest.mark.parametrize("name, build, shape, names", [
    ("baddbmm", Attention, (2, "M", 5), ("M",)),
    ("bilinear and nearest rescaling", lambda: nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2), nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.Conv2d(3, 2, 3), nn.Upsample(scale_factor=2), nn.Conv2d(2, 2, 1)), (1, 3, "H", "W"), ("H", "W")),
    ("rescaling to sizes given", Pyramid, ("N", 3, "H", "W"), ("N", "H", "W")),
    ("1-d max pooling", lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.MaxPool1d(3, 2, ceil_mode=True),
                                              nn.Conv1d(4, 4, 3), nn.MaxPool1d(2), nn.Conv1d(4, 2, 1)),
     (2, 2, "L"), ("L",)),
    ("unfold and fold", Unfolded, (1, 3, "H", "W"), ("H", "W")),
], ids=["baddbmm", "rescaling", "rescaling to sizes", "1-d max pooling", "unfold"])
def test_operators_whose_symbolic_kernels_fail_run_on_symbolic_sizes(name, build, shape, names, backward):
    # torch's own symbolic paths refuse these or fix the sizes at their hints (baddbmm's kernel expands the bias
    # with symbolic sizes; a rescaling's gradient and a rescaling to sizes given take the sizes as a list; 1-d
    # max pooling and unfold read them as numbers): their outputs are made from the sizes instead
    model = build()
    result = symconv.profile(model, shape, "exact", all_conventions=True, backward=backward)
    assert {s.name for s in result.formula().expr.free_symbols} == set(names)
    _against_concrete_profiles(model, result, shape, names, random.Random(name), 5, 40)


class LeNet(nn.Module):
    """A Linear after a flatten: it takes one flattened size, which the formula's domain then requires."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.fc = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5), nn.Linear(16 * 5 * 5, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        return self.fc(F.max_pool2d(F.relu(self.c2(x)), 2).flatten(1))


class Rescaled(nn.Module):
    def __init__(self, mode: str, factor: float):
        super().__init__()
        self.mode, self.factor, self.conv = mode, factor, nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=self.factor, mode=self.mode))


@pytest.mark.parametrize("mode, factor", [("bilinear", 1.5), ("nearest", 0.5), ("bicubic", 0.75)])
def test_rescaling_by_a_dyadic_factor_keeps_the_sizes_symbolic(mode, factor):
    # torch floors size × factor in floats; for these factors that is the integer floor, at every size
    model = Rescaled(mode, factor)
    formula = symconv.profile(model, (1, 3, "H", "W"), "exact").formula()
    for h, w in itertools.product(range(1, 13), (1, 5, 8)):
        try:
            expected = symconv.profile(model, (1, 3, h, w), "exact").total()
        except symconv.SymconvError:  # an empty output: torch refuses it, and so does the domain
            with pytest.raises(symconv.SymconvError, match="outside the domain"):
                formula(H=h, W=w)
            continue
        assert formula(H=h, W=w) == expected, (h, w)


def test_a_product_whose_inner_size_is_a_formula_holds_where_it_equals_the_weights():
    model = LeNet()
    formula = symconv.profile(model, (1, 1, "H", "W"), "exact", hints={"H": 32, "W": 32}).formula()
    for h, w in ((32, 32), (35, 33), (34, 35)):  # floor(H/4) = floor(W/4) = 8: 16·5·5 inputs to the Linear
        assert formula(H=h, W=w) == symconv.profile(model, (1, 1, h, w), "exact").total()
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        formula(H=36, W=32)


class Upsampled(nn.Module):
    """A strided convolution, upsampling by 2 and a skip connection concatenated at full size."""

    def __init__(self, mode: str = "nearest"):
        super().__init__()
        self.down, self.skip = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(3, 8, 1)
        self.up, self.out = nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        return self.out(torch.cat([self.up(self.down(x)), self.skip(x)], 1))


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_upsampling_by_whole_factors_keeps_the_sizes_symbolic(mode):
    # torch's own interpolate multiplies sizes as floats and would fix them at their hints; its bilinear and
    # bicubic kernels need concrete sizes
    model = Upsampled(mode)
    result = symconv.profile(model, (1, 3, "2*h", "2*w"), "exact")
    formula = result.formula()
    assert formula.conditions() == []
    for h, w in ((1, 1), (16, 16), (20, 24), (32, 17)):
        assert formula(h=h, w=w) == symconv.profile(model, (1, 3, 2 * h, 2 * w), "exact").total()
    concrete = symconv.profile(model, (1, 3, 8, 8))
    listed = [Counter(r.op for r in p.records if r.counted is None) for p in (result, concrete)]
    kernel = {"nearest": "upsample_nearest2d", "bilinear": "upsample_bilinear2d", "bicubic": "upsample_bicubic2d"}
    assert listed[0] == listed[1] == Counter({f"aten.{kernel[mode]}": 1, "aten.cat": 1})


def test_a_batch_or_sequence_of_one_is_in_the_domain_where_a_concrete_profile_agrees():
    # torch's tracing assumes such a size is not 1 (broadcasting would differ); the counts hold there all the same
    for model, shape in ((nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4).eval(), nn.Flatten(), nn.Linear(196, 5)),
                          ("N", 3, 9, 9)),
                         (nn.TransformerEncoderLayer(16, 2, 32, batch_first=True).eval(), (2, "L", 16))):
        result = symconv.profile(model, shape, "exact", all_conventions=True)
        name = next(v for v in shape if isinstance(v, str))
        assert result.formula().conditions() == []
        for n in (1, 2, 5):
            at_n = tuple(n if v == name else v for v in shape)
            concrete = symconv.profile(model, at_n, "exact", all_conventions=True)
            assert {c: result.formula(c)(**{name: n}) for c in CONVENTIONS} == \
                {c: concrete.total(c) for c in CONVENTIONS}
    # a count that holds at its hint only is not widened: a loop of 1 step is not one of 256
    loop = symconv.profile(Steps(), ("T", 2, 8), "macs").formula()
    assert loop.conditions() == ["T = 256"]


class Steps(nn.Module):
    """A loop over the first size in the model's own code: tracing unrolls it at the hint."""

    def __init__(self):
        super().__init__()
        self.cell = nn.Linear(8, 8)

    def forward(self, x):
        state = x[0]
        for t in range(x.shape[0]):
            state = torch.tanh(self.cell(state) + x[t])
        return state


@pytest.mark.parametrize("backward", [False, True])
def test_a_batch_of_one_is_in_the_domain_beside_other_names_where_the_counts_agree(backward):
    # in several names the batch of one is checked as formulas: the model profiled again with N = 1
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4).eval(), nn.ReLU(),
                          nn.ConvTranspose2d(4, 2, 2, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(2, 3))
    result = symconv.profile(model, ("N", 3, "H", 8), "exact", all_conventions=True, backward=backward)
    assert "N" not in " ".join(result.formula().conditions())
    rng = random.Random(int(backward))
    for n, h in [(1, 1), (1, 2), (2, 7)] + [(1, rng.randint(3, 40)) for _ in range(6)]:
        concrete = symconv.profile(model, (n, 3, h, 8), "exact", all_conventions=True, backward=backward)
        assert {c: result.formula(c)(N=n, H=h) for c in CONVENTIONS} == {c: concrete.total(c) for c in CONVENTIONS}
    # a batch beside a sequence length, each assumed not 1 (torch writes 1 < B, Ne(16*T, 16), B*T ≠ B), and both
    # not 1 at once (B*T ≠ 1): each joins, the batch of one then in one name, where T = 1 joins too
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    formula = symconv.profile(layer, ("B", "T", 16), "exact", backward=backward).formula()
    assert formula.conditions() == []
    for b, t in ((1, 5), (1, 2), (3, 1), (3, 4), (1, 1)):
        assert formula(B=b, T=t) == symconv.profile(layer, (b, t, 16), "exact", backward=backward).total()
    # token ids: torch writes T ≠ 1 as B*Mod(1, T) ≠ 0 too
    ids = symconv.profile(Tokens(), [("B", "T"), ("B", "T", 8)], "exact", backward=backward,
                          dtype=[torch.long, None]).formula()
    assert ids.conditions() == []
    for b, t in ((2, 1), (1, 7), (1, 1)):
        assert ids(B=b, T=t) == symconv.profile(Tokens(), [(b, t), (b, t, 8)], "exact", backward=backward,
                                                dtype=[torch.long, None]).total()
    # where torch needs more than one value per channel (a BatchNorm in training), one sample of one position
    # stays outside
    trained = symconv.profile(nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4)), ("N", 2, "L"), "macs").formula()
    assert trained(N=1, L=4) == symconv.profile(nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4)), (1, 2, 4),
                                                "macs").total()
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        trained(N=1, L=3)


class EvenOnly(nn.Module):
    """Down by 2, then back up to the input's size by a transposed convolution that makes only even sizes."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)

    def forward(self, x):
        return self.up(self.down(x), output_size=x.shape[-2:])


def test_the_domain_reads_as_thresholds_and_equalities():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    formula = symconv.profile(conv, (1, 3, "H", 8), "exact").formula()
    # tracing assumed H - 2 ≠ 1 (torch specialises sizes of 1): a concrete profile at H = 3 counts the same
    assert formula.conditions() == ["H >= 3"]
    for h in (3, 4):
        assert formula(H=h) == symconv.profile(conv, (1, 3, h, 8), "exact").total()
    for h in (1, 2):  # torch refuses a kernel larger than the input
        with pytest.raises(symconv.SymconvError, match="outside the domain"):
            formula(H=h)
        with pytest.raises(symconv.SymconvError):
            symconv.profile(conv, (1, 3, h, 8), "exact")
    assert [str(c) for c in Formula(parse_size("H"), (sp.Ne(parse_size("H") - 2, 5),)).conditions()] == ["H ≠ 7"]
    # guards that hold at every size (output_size= within torch's range, whatever the parity) go unsaid
    skip = symconv.profile(SkipUp(), (1, 3, "H", "W"), "exact").formula()
    assert skip.domain and skip.conditions() == []
    # a parity, written by torch as H >= 2*floor(H/2 - 1/2) + 2, reads as one
    even = symconv.profile(EvenOnly(), (1, 3, "H", "W"), "exact").formula()
    assert even.conditions() == ["H even", "W even"]
    for h in (2, 4, 10):
        assert even(H=h, W=6) == symconv.profile(EvenOnly(), (1, 3, h, 6), "exact").total()
    for h in (3, 9):  # torch refuses odd sizes: output_size is below what the layer can make
        with pytest.raises(symconv.SymconvError, match="outside the domain"):
            even(H=h, W=6)
        with pytest.raises(symconv.SymconvError):
            symconv.profile(EvenOnly(), (1, 3, h, 6), "exact")
    H, N = parse_size("H"), parse_size("N")
    assert Formula(H, (sp.Eq(sp.Mod(H + 1, 4), 0),)).conditions() == ["H ≡ 3 (mod 4)"]
    # what a size of several names above 1 implies goes unsaid, and nothing else
    positions = (sp.floor(H / 2) + 1) * (sp.floor(N / 2) + 1)
    implied = (sp.Ne(N * positions, 1), sp.Or(sp.Ne(N, 1), sp.Ne(sp.Mod(1, positions), 0)), sp.Ne(positions, 1),
               sp.Ne(2 * N * positions, 2 * positions) | sp.Ne(sp.Mod(1, positions), 0))
    # (a product of sizes above 1, each at least 1, reads as one of them above 1; names alone as they are)
    assert Formula(N * H, (positions > 1, *implied)).conditions() == ["H >= 2 or N >= 2"]
    assert Formula(N * H, (positions > 1, sp.Ne(positions, 4), sp.Ne(N * positions, 6))).conditions() == \
        ["H >= 2 or N >= 2", "(floor(H/2) + 1)*(floor(N/2) + 1) ≠ 4", "N*(floor(H/2) + 1)*(floor(N/2) + 1) ≠ 6"]
    assert Formula(N * H, (sp.Ne(N * H, 1),)).conditions() == ["H*N ≠ 1"]
    # a linear bound on one name within an or, solved for it as at the top
    assert Formula(N * H, (sp.Or(sp.Lt(8, 8 * N), sp.Ne(H, 3)),)).conditions() == ["H ≠ 3 or N > 1"]
    for n, h in itertools.product(range(1, 7), repeat=2):  # the words mean the condition
        assert bool((positions > 1).xreplace({N: n, H: h})) == (h >= 2 or n >= 2), (n, h)
    # sizes joined from a name's least one up read as a bound on it; others stay as equations
    W = parse_size("W")
    joined = Formula(H * W, (sp.floor(W / 4) >= 1, sp.Or(*(sp.Eq(W, k) for k in range(4, 8)), sp.Ne(H, 3))))
    assert joined.conditions() == ["W >= 4", "W <= 7 or H ≠ 3"]
    apart = Formula(H * W, (sp.floor(W / 4) >= 1, sp.Or(sp.Eq(W, 5), sp.Eq(W, 6), sp.Ne(H, 3))))
    assert apart.conditions() == ["W >= 4", "W = 5 or W = 6 or H ≠ 3"]
    # a size compared with a multiple of it by other sizes: the multiplier compared with 1 (a ViT's training step)
    rows = Formula(H * W, (H >= 4, W >= 4, sp.Or(W <= 7, sp.Lt(sp.floor(W / 4), sp.floor(H / 4) * sp.floor(W / 4)))))
    assert rows.conditions() == ["H >= 4", "W >= 4", "W <= 7 or H >= 8"]
    for h, w in itertools.product(range(1, 13), repeat=2):  # the words mean the domain
        assert all(bool(c.xreplace({H: h, W: w})) for c in rows.domain) == (h >= 4 and w >= 4 and (w <= 7 or h >= 8))
    # widths below the least one joined, each needing a height of 3 (one output row more): one threshold on H
    one_column, one_row = (sp.Ne(sp.floor(v / 2 - sp.Rational(1, 2)) + 1, 1) for v in (W, H))
    either = Formula(H * W, (joined_below(one_column, W, {2: one_row, 1: one_row}, 3, {H: 1}),))
    assert either.domain == (sp.Or(one_column, one_row),)
    assert either.conditions() == ["H >= 3 or W >= 3"]
    # unlike needs, or a width not joined (W = 1 refused): sizes of their own, from the least down while the
    # heights' least size settles what they need
    assert joined_below(one_column, W, {2: sp.true, 1: one_row}, 3, {H: 1}) == sp.Or(one_column, sp.Eq(W, 2))
    assert joined_below(one_column, W, {2: one_row}, 3, {H: 1}) == one_column
    assert joined_below(one_column, W, {2: one_row}, 3, {H: 3}) == sp.Or(one_column, sp.And(sp.Eq(W, 2), one_row))
    words = {joined: lambda h, w: w >= 4 and (w <= 7 or h != 3), apart: lambda h, w: w >= 4 and (w in (5, 6) or h != 3),
             either: lambda h, w: h >= 3 or w >= 3}
    for (f, said), h, w in itertools.product(words.items(), range(1, 6), range(1, 12)):  # the words mean the domain
        assert all(bool(c.xreplace({H: h, W: w})) for c in f.domain) == said(h, w), (f.conditions(), h, w)
    # a condition undefined below the least size (1 mod floor(H/4) at H < 4), whichever order torch wrote them in
    for domain in ((sp.Ne(sp.Mod(1, sp.floor(H / 4)), 0), sp.floor(H / 4) >= 1),
                   (sp.floor(H / 4) >= 1, sp.Ne(sp.Mod(1, sp.floor(H / 4)), 0))):
        assert Formula(H, domain).conditions() == ["H >= 8"]
        assert Formula(H, domain)(H=8) == 8
        for h in (1, 3, 4, 7):
            with pytest.raises(symconv.SymconvError, match="outside the domain"):
                Formula(H, domain)(H=h)
    # a size of 1 joined with what it needs of the other names: in words, nested where it is
    assert Formula(N * H, (sp.Or(sp.Ne(N, 1), sp.And(sp.Ne(H, 1), H >= 3)),)).conditions() == \
        ["N ≠ 1 or (H >= 3 and H ≠ 1)"]
    # torch's ways of writing that a size is not 1, and their normal forms
    B, T, W = parse_size("B"), parse_size("T"), parse_size("W")
    for written, name in ((sp.Ne(N, 1), N), (sp.Lt(1, N), N), (sp.Ge(N, 2), N), (sp.Ne(16 * T, 16), T),
                          (sp.Ne(16 * H * N * W, 16 * H * W), N), (sp.Ne(B * T, B), T),
                          (sp.Ne(B * sp.Mod(1, T), 0), T)):
        assert says_not_one(written, name), written
    for written, name in ((sp.Ne(B * T, B), B), (sp.Ne(N * H, 4), N), (sp.Ge(N, 3), N), (sp.Ne(N, 2), N),
                          (sp.Ne((N - 1) * (H - 1), 0), N)):
        assert not says_not_one(written, name), written
    # a size derived from the input's is positive where it grows with the sizes and the domain makes it positive
    steps = sp.floor(W / 2) - 2
    assert says_not_one(sp.Ne(N * steps, steps), N, (W >= 8,))
    assert not says_not_one(sp.Ne(N * steps, steps), N, (W >= 4,))  # no step at W = 4
    assert not says_not_one(sp.Ne(N * steps, steps), N)
    assert not says_not_one(sp.Ne(N * (4 - sp.floor(W / 2)), 4 - sp.floor(W / 2)), N, (W >= 8, W <= 6))
    assert tidied([sp.Ne(sp.Mod(1, B), 0), sp.Lt(1, B), sp.Ne(16 * T, 16)]) == (sp.Gt(B, 1), sp.Ne(T, 1))
    assert tidied([sp.Lt(12, 12 * N), sp.Le(3 - T, 1), sp.Gt(2 * B, 3), sp.Ne(B, 1) | sp.Ne(T, 1)]) == \
        (sp.Gt(N, 1), sp.Ge(T, 2), sp.Gt(2 * B, 3), sp.Ne(B * T, 1))
    # conditions on output sizes that the names' thresholds imply are not printed: each output size only grows
    # with the names and is positive at their thresholds
    rows, columns = sp.floor(H / 2 - sp.Rational(1, 2)) + 1, sp.floor(W / 2 - sp.Rational(1, 2)) + 1
    implied = (rows * columns > 1, sp.Lt(columns, rows * columns), sp.Ne(sp.Mod(1, rows * columns), 0),
               sp.Ne(N * rows * columns, rows * columns) | sp.Ne(rows, sp.floor(4 * rows * columns / 4)),
               sp.Ne(rows * columns, 3), (H - 6) * sp.Max(1, W - 6) > 1)
    assert Formula(N * H * W, (H >= 8, W >= 8, *implied)).conditions() == ["H >= 8", "W >= 8"]
    assert Formula(N * H * W, (H >= 3, W >= 3, sp.Ne(rows * columns, 4), rows * columns < 9)).conditions() == \
        ["H >= 3", "W >= 3", "(floor((H - 1)/2) + 1)*(floor((W - 1)/2) + 1) ≠ 4",
         "(floor((H - 1)/2) + 1)*(floor((W - 1)/2) + 1) < 9"]
    assert says_not_one(sp.Lt(12, 12 * N), N) and says_not_one(T ** 2 >= 2, T) and not says_not_one(T <= 300, T)


def test_conditions_read_in_normal_form_and_mean_what_they_said():
    # torch's guards, written many ways, each read as the one condition it is; every reading checked against the
    # condition itself at every size from 1 to 5 of each name
    B, H, N, T, W = (parse_size(n) for n in "BHNTW")
    readings = [
        (sp.Or(H > 1, sp.Ne(W, 1)), sp.Ne(H * W, 1)), (sp.Or(sp.Ne(N, 1), sp.Ne(H * W, H)), sp.Ne(N * W, 1)),
        (sp.Or(H > 1, sp.Ne(H * sp.Mod(1, W), 0)), sp.Ne(H * W, 1)), (H ** 2 * W ** 2 >= 2, sp.Ne(H * W, 1)),
        (sp.Lt(W, H * W), sp.Ne(H, 1)), (sp.Ge(8 * N * W, 8 * N), sp.true), (sp.Gt(8 * N, 8 * N * W), sp.false),
        (sp.Le(8 * N * W, 8 * N), sp.Eq(W, 1)), (sp.Eq(H * W, H), sp.Eq(W, 1)),
        (sp.Ne(16 * H * N * W, 16 * N), sp.Ne(H * W, 1)), (sp.Ne(8 * sp.Mod(1, N * W), 0), sp.Ne(N * W, 1)),
        (sp.Or(sp.Gt(B, 1), sp.Ne(B * T, 1)), sp.Ne(B * T, 1)), (sp.Ne(T ** 2, 1), sp.Ne(T, 1)),
        (sp.Lt(T, T ** 2), sp.Ne(T, 1)), (sp.Ne(T ** 2 + T, 2), sp.Ne(T, 1)),
    ]
    unread = [sp.Ne(N * (H - 2), 1), sp.Or(H > 3, sp.Ne(W, 1)), sp.Ne((N - 1) * (H - 1), 0), sp.Ne(sp.floor(H / 2), 1)]
    for written, reading in readings + [(c, c) for c in unread]:
        assert normalized(written) == reading, written
        names = sorted(written.free_symbols, key=str)
        for values in itertools.product(range(1, 6), repeat=len(names)):
            at = dict(zip(names, values))
            assert bool(written.xreplace(at)) == bool(sp.sympify(reading).xreplace(at)), (written, at)
    # in a profile: convolutions, batch norm and attention over an image's pixels, batch 1
    class PixelAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
            self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            y = self.norm(self.conv(x)).flatten(2).transpose(1, 2)
            return self.attention(y, y, y)[0]

    model = PixelAttention()
    assert symconv.profile(model, (1, 3, "H", "W"), "exact").formula().conditions() == ["H*W ≠ 1"]
    # a training step in three names: each size of 1 joins the domain, and any two at once (a concrete profile
    # agrees), but not all three: the batch norm in training then normalises one value per channel, which torch
    # refuses
    step = symconv.profile(model, ("N", 3, "H", "W"), "exact", all_conventions=True, backward=True)
    assert step.formula().conditions() == ["H*N*W ≠ 1"]
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        step.formula()(N=1, H=1, W=1)
    with pytest.raises(symconv.SymconvError, match="more than 1 value per channel"):
        symconv.profile(model, (1, 3, 1, 1), "exact", backward=True)
    for n, h, w in ((2, 1, 5), (1, 1, 4), (1, 2, 1), (3, 1, 1)):
        concrete = symconv.profile(model, (n, 3, h, w), "exact", all_conventions=True, backward=True)
        assert {c: step.formula(c)(N=n, H=h, W=w) for c in CONVENTIONS} == {c: concrete.total(c) for c in CONVENTIONS}


class Causal(nn.Module):
    """Token ids through causal self-attention: torch's attention adds a (T, T) mask to the scores."""

    def __init__(self):
        super().__init__()
        self.embed, self.qkv, self.head = nn.Embedding(50, 16), nn.Linear(16, 48), nn.Linear(16, 50)

    def forward(self, ids):
        batch, steps = ids.shape
        q, k, v = (t.view(batch, steps, 2, 8).transpose(1, 2) for t in self.qkv(self.embed(ids)).split(16, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.head(y.transpose(1, 2).reshape(batch, steps, 16))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "training step"])
def test_a_causal_mask_on_one_key_is_no_bias_and_one_step_joins_the_domain(backward):
    # at T = 1 the mask is (1, 1), shaped like a bias of the scores: counted as one, T = 1 counted 2·2 more
    # additions than the formula and was left out; torch's guard T**2 >= 2 says T ≠ 1 too
    model = Causal()
    result = symconv.profile(model, ("B", "T"), "exact", all_conventions=True, backward=backward, dtype=torch.long)
    assert result.formula().conditions() == []
    for b in (2, 1):
        one_step = symconv.profile(model, (b, 1), "exact", all_conventions=True, backward=backward, dtype=torch.long)
        assert {c: result.formula(c)(B=b, T=1) for c in CONVENTIONS} == {c: one_step.total(c) for c in CONVENTIONS}
    assert not [r for r in one_step.counted if "bias" in r.counted.what and r.op == "aten.bmm"]


class Tokens2d(nn.Module):
    """A strided convolution's positions as tokens of a Linear: torch guards on the number of positions."""

    def __init__(self):
        super().__init__()
        self.conv, self.linear = nn.Conv2d(3, 4, 3, 2, 1), nn.Linear(4, 5)

    def forward(self, x):
        y = self.conv(x)
        return self.linear(y.reshape(y.size(0), 4, -1).transpose(1, 2))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "training step"])
def test_guards_on_output_sizes_that_the_thresholds_imply_are_not_printed(backward):
    # torch's guards on the positions (a product of output sizes not 1, not equal to one of its factors, 1 mod it
    # not 0…) all follow from there being more than one position; the batch of one is joined. A training step's
    # also assume each output size is not 1 (autograd's own checks, README)
    model = Tokens2d()
    result = symconv.profile(model, ("N", 3, "H", "W"), "exact", all_conventions=True, backward=backward)
    positions = "H >= 3 or W >= 3"  # more than one position
    assert result.formula().conditions() == (["H >= 3", "W >= 3"] if backward else [positions])
    formulas = _against_concrete_profiles(model, result, ("N", 3, "H", "W"), ("N", "H", "W"), random.Random(7), 5,
                                          12)
    if not backward:  # heights and widths of 1 and 2: the view of the map as positions assumed them not 1 before
        for n, h, w in ((1, 1, 3), (2, 2, 5), (1, 4, 1), (3, 2, 3)):
            profile = symconv.profile(model, (n, 3, h, w), "exact", all_conventions=True)
            assert {c: f(N=n, H=h, W=w) for c, f in formulas.items()} == \
                {c: profile.total(c) for c in CONVENTIONS}, (n, h, w)
        with pytest.raises(symconv.SymconvError, match="outside the domain"):
            formulas["exact"](N=1, H=2, W=2)  # one position: the products' own guards


def test_a_strided_convolutions_training_step_holds_where_its_forward_does():
    # autograd's checks of the gradients assume each output size not 1 (H >= 5, W >= 5); at H = 3 and 4 in W (and
    # W = 3 and 4 in H) the step counts the same, needing of the other name only what its own least size settles
    layer = nn.Conv2d(2, 4, 3, stride=2)
    result = symconv.profile(layer, (1, 2, "H", "W"), "exact", all_conventions=True, backward=True)
    assert result.formula().conditions() == ["H >= 3", "W >= 3"]
    formulas = {c: result.formula(c) for c in CONVENTIONS}
    for h, w in itertools.product((3, 4, 5, 8), (3, 4, 7)):
        profile = symconv.profile(layer, (1, 2, h, w), "exact", all_conventions=True, backward=True)
        assert {c: f(H=h, W=w) for c, f in formulas.items()} == {c: profile.total(c) for c in CONVENTIONS}, (h, w)
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        formulas["exact"](H=2, W=4)  # torch refuses a kernel larger than the input


def test_small_sizes_join_where_another_name_is_large_enough():
    # a strided convolution into a batch norm that learns, which needs more than one value per channel: a width
    # of 1 or 2 (one output column) runs where the height makes more than one row. The step profiled again at
    # each small width needs H >= 3: joined as that threshold (before, only the heights were joined: W >= 3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4))
    result = symconv.profile(model, (1, 3, "H", "W"), "exact", all_conventions=True, backward=True)
    assert result.formula().conditions() == ["H >= 3 or W >= 3"]
    formulas = {c: result.formula(c) for c in CONVENTIONS}
    refused = []
    for h, w in itertools.product(range(1, 7), repeat=2):
        try:
            profile = symconv.profile(model, (1, 3, h, w), "exact", all_conventions=True, backward=True)
        except symconv.SymconvError:  # torch refuses one value per channel; the domain excludes it as well
            refused.append((h, w))
            with pytest.raises(symconv.SymconvError, match="outside the domain"):
                formulas["exact"](H=h, W=w)
            continue
        assert {c: f(H=h, W=w) for c, f in formulas.items()} == {c: profile.total(c) for c in CONVENTIONS}, (h, w)
    assert refused == [(1, 1), (1, 2), (2, 1), (2, 2)]


class StridedSteps(nn.Module):
    """A strided 1-d convolution's output steps as the rows of a Linear (a permute, then a reshape: a copy)."""

    def __init__(self):
        super().__init__()
        self.conv, self.linear = nn.Conv1d(4, 8, 3, stride=2), nn.Linear(8, 2)

    def forward(self, x):
        return self.linear(self.conv(x).permute(0, 2, 1).reshape(-1, 8))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "training step"])
def test_sizes_below_the_least_one_are_joined_where_they_count_the_same(backward):
    # torch's copy assumes the output length floor((L - 3)/2) + 1 is not 1 (L >= 5); profiled again at L = 4 and
    # L = 3, in N, the model counts the same and needs nothing of N: the domain reads from where torch runs it
    model = StridedSteps()
    result = symconv.profile(model, ("N", 4, "L"), "exact", all_conventions=True, backward=backward)
    assert result.formula().conditions() == ["L >= 3"]
    formulas = {c: result.formula(c) for c in CONVENTIONS}
    for n, length in ((1, 3), (2, 3), (1, 4), (3, 4), (2, 9)):
        profile = symconv.profile(model, (n, 4, length), "exact", all_conventions=True, backward=backward)
        assert {c: f(N=n, L=length) for c, f in formulas.items()} == {c: profile.total(c) for c in CONVENTIONS}
    for length in (1, 2):  # the kernel is longer than the input
        with pytest.raises(symconv.SymconvError, match="outside the domain"):
            formulas["exact"](N=1, L=length)
        with pytest.raises(symconv.SymconvError):
            symconv.profile(model, (1, 4, length), "exact")


class PaddedToSkip(nn.Module):
    """A U-Net's step up: the upsampled map zero-padded to its skip's size (by the difference of the sizes, 0 or 1
    here), then convolved with it."""

    def __init__(self):
        super().__init__()
        self.inc = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1))
        self.up, self.conv = nn.ConvTranspose2d(16, 8, 2, stride=2), nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x):
        skip = self.inc(x)
        y = self.up(self.down(skip))
        dy, dx = skip.size(2) - y.size(2), skip.size(3) - y.size(3)
        return self.conv(torch.cat([skip, F.pad(y, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])], 1))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "training step"])
def test_a_pad_to_the_skips_size_holds_at_odd_sizes(backward):
    # the pad's gradient crops by the same amounts, negated: looking at it as a zero pad tested them >= 0, which
    # holds at even sizes only (the training step read "H even, W even"); the sizes 2 and 3, which autograd's own
    # checks assumed away (floor(H/2) ≠ 1), are joined as profiles at those sizes count the same
    model = PaddedToSkip()
    result = symconv.profile(model, (1, 3, "H", "W"), "exact", all_conventions=True, backward=backward)
    assert result.formula().conditions() == ["H >= 2", "W >= 2"]
    formulas = {c: result.formula(c) for c in CONVENTIONS}
    for h, w in ((5, 7), (4, 9), (8, 6), (11, 11), (2, 3), (3, 2), (2, 2)):
        profile = symconv.profile(model, (1, 3, h, w), "exact", all_conventions=True, backward=backward)
        assert {c: f(H=h, W=w) for c, f in formulas.items()} == {c: profile.total(c) for c in CONVENTIONS}, (h, w)


class PatchTokens(nn.Module):
    """A patch embedding's positions as the tokens of a transformer layer, as a ViT makes them."""

    def __init__(self):
        super().__init__()
        self.patch, self.head = nn.Conv2d(3, 16, 4, stride=4), nn.Linear(16, 10)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)

    def forward(self, x):
        return self.head(self.layer(self.patch(x).flatten(2).transpose(1, 2)).mean(1))


def test_patch_tokens_hold_from_one_row_of_patches():
    # flattening the patches views a contiguous map, which assumes nothing of its sizes (torch's own view
    # assumed floor(H/4) ≠ 1 and floor(W/4) ≠ 1: H >= 8, W >= 8); the attention assumes more than one token
    model = PatchTokens().eval()
    result = symconv.profile(model, (2, 3, "H", "W"), "exact", all_conventions=True)
    assert result.formula().conditions() == ["H >= 4", "W >= 4", "H >= 8 or W >= 8"]  # more than one token
    formulas = {c: result.formula(c) for c in CONVENTIONS}
    for h, w in ((4, 8), (7, 9), (13, 5), (16, 16)):
        profile = symconv.profile(model, (2, 3, h, w), "exact", all_conventions=True)
        assert {c: f(H=h, W=w) for c, f in formulas.items()} == {c: profile.total(c) for c in CONVENTIONS}, (h, w)
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        formulas["exact"](H=7, W=5)  # one token


def test_a_total_that_does_not_depend_on_the_sizes_is_a_formula_too():
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    formula = symconv.profile(head, (2, 4, "H", "W"), "exact").formula()
    assert formula(H=5, W=7) == symconv.profile(head, (2, 4, 5, 7), "exact").total() == 2 * 3 * (2 * 4 - 1 + 1)
    # a loop over the sequence in the model's code: traced at a hint, its count holds at that length only, and
    # says so
    formula = symconv.profile(Steps(), ("T", 2, 8), "macs", hints={"T": 7}).formula()
    assert formula(T=7) == symconv.profile(Steps(), (7, 2, 8), "macs").total()
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        formula(T=9)
    assert formula.conditions() == ["T = 7"]
    # at the default hint, the end of the sizes scanned for thresholds: still an equality, not "T >= 256"
    assert symconv.profile(Steps(), ("T", 2, 8), "macs").formula().conditions() == ["T = 256"]


class Scaled(nn.Module):
    """A lazy convolution, then a scale held as a plain tensor attribute (no buffer), then a lazy Linear."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.LazyConv2d(4, 3), nn.LazyLinear(5)
        self.scale = torch.tensor(0.5)

    def forward(self, x):
        return self.fc((self.conv(x) * self.scale).flatten(1))


def test_lazy_modules_and_plain_tensor_attributes_run_symbolically():
    model = Scaled()
    # the Linear's input width is 4·(H − 2)·(W − 2): its weights, made at the first call, fix the sizes there
    formula = symconv.profile(model, (2, 3, "H", 9), "exact", hints={"H": 12}).formula()
    assert formula(H=12) == symconv.profile(model, (2, 3, 12, 9), "exact").total()
    assert formula.conditions() == ["H = 12"]  # not also "H >= 3", which H = 12 implies
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        formula(H=13)
    lazy = nn.LazyConv2d(4, 3)  # alone, its formula holds at every size
    assert symconv.profile(lazy, (2, 3, "H", "W"), "exact").formula()(H=7, W=30) == \
        symconv.profile(lazy, (2, 3, 7, 30), "exact").total()
    assert isinstance(model.conv.weight, nn.parameter.UninitializedParameter)  # the user's model stays lazy


def test_resnet50_formula():
    model = examples.resnet50()
    result = symconv.profile(model, (1, 3, "32*h", "32*w"), "exact", all_conventions=True)
    h, w = parse_size("h"), parse_size("w")
    for c in CONVENTIONS:
        assert result.formula(c).readable().is_polynomial(h, w)
    # torch assumed h, w not 1, and not both 1: each joins beside the other, then both (32×32), as README states
    assert result.formula().conditions() == []
    for h_size, w_size in ((2, 3), (7, 8), (9, 10), (1, 2), (3, 1), (1, 1)):
        concrete = symconv.profile(model, (1, 3, 32 * h_size, 32 * w_size), "exact", all_conventions=True)
        assert {c: result.formula(c)(h=h_size, w=w_size) for c in CONVENTIONS} == \
            {c: concrete.total(c) for c in CONVENTIONS}


def test_sizes_assumed_not_1_by_torch_kernels_alone_stay_in_the_domain():
    # torch's fake kernels of pointwise operators and of batch norm guard every size not 1 while broadcasting,
    # even between operands of one shape: ResNet-50's formula left out every size up to 32 (each stage's output
    # assumed not 1), though it holds there, as CIFAR-sized inputs and 1×1 show
    model = examples.resnet50()
    formula = symconv.profile(model, (1, 3, "H", "W"), "macs").formula()
    assert formula.conditions() == []
    for h, w in ((32, 32), (20, 40), (1, 1), (65, 3)):
        assert formula(H=h, W=w) == symconv.profile(model, (1, 3, h, w), "macs").total()
    # a mobile block: hardswish (which torch does not tag pointwise), a squeeze-and-excitation product broadcast
    # over the image, batch norm and a mean; and max pooling, whose own limit stays (two 2×2 pools need 4)
    for model, shape, least in ((MobileBlock().eval(), ("N", 3, "H", "W"), {}),
                                (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.MaxPool2d(2)),
                                 (1, 3, "H", "W"), {"H": 4, "W": 4})):
        formula = symconv.profile(model, shape, "exact").formula()
        assert formula.conditions() == [f"{name} >= {size}" for name, size in least.items()]
        for n, h, w in ((1, 1, 1), (2, 4, 1), (1, 9, 6), (1, 4, 5)):
            at = {"N": n, "H": h, "W": w}
            if all(at[name] >= size for name, size in least.items()):
                sizes = tuple(at.get(v, v) if isinstance(v, str) else v for v in shape)
                assert formula(**{k: v for k, v in at.items() if k in shape}) == \
                    symconv.profile(model, sizes, "exact").total()
    # convolutions: a strided one after a "same" one, then a transposed one (torch's kernels guarded the strided
    # output and the batch not 1, which left out L = 5, 6, 7), and a 3-d one (a layout check of its output)
    chain = nn.Sequential(nn.Conv1d(2, 4, 4, padding="same"), nn.ReLU(), nn.Conv1d(4, 4, 5, stride=3),
                          nn.ConvTranspose1d(4, 2, 5, stride=3, dilation=2))
    formula = symconv.profile(chain, ("N", 2, "L"), "exact").formula()
    assert formula.conditions() == ["L >= 5"]
    for n, length in ((1, 5), (2, 6), (1, 7), (3, 20)):
        assert formula(N=n, L=length) == symconv.profile(chain, (n, 2, length), "exact").total()
    volume = symconv.profile(nn.Conv3d(2, 4, 3), (1, 2, "D", "H", "W"), "exact").formula()
    assert volume.conditions() == ["D >= 3", "H >= 3", "W >= 3"]
    assert volume(D=3, H=3, W=3) == symconv.profile(nn.Conv3d(2, 4, 3), (1, 2, 3, 3, 3), "exact").total()
    with pytest.raises(symconv.SymconvError, match="does not fit a convolution"):
        symconv.profile(nn.Sequential(nn.Conv2d(2, 4, 3), nn.Conv2d(3, 4, 3)), (1, 2, "H", "W"))
    # sizes that do meet a 1 are still compared: a per-channel bias broadcast over the image keeps the sizes
    # symbolic, and a shape of another length is no condition on them (a transformer layer's bias of 48)
    biased = symconv.profile(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), Shifted(4)), (1, 3, "H", "W"), "exact")
    assert biased.formula().conditions() == ["H >= 3", "W >= 3"]
    assert not [c for c in symconv.profile(nn.TransformerEncoderLayer(16, 2, 48, batch_first=True).eval(),
                                           (2, "L", 16), "exact").domain if 48 in c.atoms(sp.Integer)]


def test_a_parameter_that_repeats_with_the_size_is_read_as_residues():
    # where a layer's parameter follows the size (output_padding from output_size=, TensorFlow's "same" padding),
    # each value it takes holds at residues of the size: H odd reads Eq(Mod(H, 2), 1), not an equation in floors
    H = parse_size("H")
    half = sp.floor(H / 2 - sp.Rational(1, 2))
    readings = [(sp.Eq(H - 2 * half, 1), sp.Eq(sp.Mod(H, 2), 1)), (sp.Eq(H - 2 * half - 1, 1), sp.Eq(sp.Mod(H, 2), 0)),
                (sp.Eq(4 * sp.ceiling(H / 4) - H, 1), sp.Eq(sp.Mod(H, 4), 3)),
                (sp.Eq(sp.Mod(H + 1, 3), 0), sp.Eq(sp.Mod(H, 3), 2)), (sp.Eq(H - 2 * half, 3), sp.false),
                (sp.Eq(sp.Mod(2 * H, 2), 0), sp.true)]
    kept = [sp.Eq(H, 5), sp.Eq(sp.floor(H / 2), 3), sp.Eq(3 * H - 3 * sp.floor(H / 3), 1)]  # not repeating
    for written, reading in readings + [(c, c) for c in kept]:
        assert as_residues(written) == reading, written
        assert all(bool(written.xreplace({H: n})) == bool(reading.xreplace({H: n})) for n in range(1, 41)), written
    assert any_of([sp.Eq(sp.Mod(H, 2), 0), sp.Eq(sp.Mod(H, 2), 1)]) is sp.true
    model = Conv2dSame(3, 8, (3, 4), stride=2, bias=False)
    total = symconv.profile(model, (1, 3, "H", "W"), "exact").formula()
    pieces = total.expr.atoms(sp.Piecewise)
    assert pieces and all(not c.atoms(sp.floor, sp.ceiling) and c.atoms(sp.Mod) for p in pieces for _, c in p.args)
    for h, w in ((5, 8), (6, 7), (1, 1), (12, 13)):
        assert total(H=h, W=w) == symconv.profile(model, (1, 3, h, w), "exact").total()


class PaddedBy(nn.Module):
    """A convolution whose padding the model computes from another input's size."""

    def __init__(self, padding, transposed: bool = False):
        super().__init__()
        self.padding, self.transposed = padding, transposed
        self.weight = nn.Parameter(torch.randn(2, 4, 3, 3) if transposed else torch.randn(4, 2, 3, 3))

    def forward(self, x, y):
        conv = F.conv_transpose2d if self.transposed else F.conv2d
        return conv(x, self.weight, padding=self.padding(y.shape[-1]))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "training step"])
def test_a_padding_computed_from_the_sizes_is_counted_at_each_amount(backward):
    # zero padding of a plain convolution, as a merged F.pad is; a crash in the count before (int of a formula)
    model = PaddedBy(lambda n: n % 2)
    formula = symconv.profile(model, [(1, 2, 9, 9), (1, "L")], "exact", backward=backward).formula()
    assert formula.conditions() == []
    for n in (3, 4, 300, 1):
        assert formula(L=n) == symconv.profile(model, [(1, 2, 9, 9), (1, n)], "exact", backward=backward).total()
    # amounts that grow with the size (the scan would not see them all), and a transposed convolution's padding
    # (it crops the output: no zero padding of the input), refused in one line
    for refused, match in ((PaddedBy(lambda n: n // 8), "grows with the sizes"),
                           (PaddedBy(lambda n: n % 2, transposed=True), "transposed convolution")):
        with pytest.raises(symconv.SymconvError, match=match):
            symconv.profile(refused, [(1, 2, 9, 9), (1, "L")], "exact", backward=backward)


class BranchedAt300(nn.Module):
    """A layer the model runs only on inputs longer than 300."""

    def __init__(self):
        super().__init__()
        self.conv, self.extra = nn.Conv1d(2, 2, 3), nn.Conv1d(2, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        return self.extra(y) if x.shape[-1] > 300 else y


def test_a_bound_beyond_the_sizes_scanned_is_printed():
    # traced at L = 256, the model's branch holds up to L = 300: the domain said only L >= 3 (the condition held at
    # every size scanned), while evaluation refused L = 400
    formula = symconv.profile(BranchedAt300(), (1, 2, "L"), "exact").formula()
    assert formula.conditions() == ["L >= 3", "L <= 300"]
    assert formula(L=300) == symconv.profile(BranchedAt300(), (1, 2, 300), "exact").total()
    with pytest.raises(symconv.SymconvError, match=r"L <= 300 does not hold \(domain: L >= 3, L <= 300\)"):
        formula(L=400)


def test_a_guard_on_several_conditions_is_read_as_each():
    # a kernel's check of two sizes at once (torch writes floor(H/4) >= 1 and floor(W/4) >= 1) is two conditions,
    # each read alone: thresholds, not a conjunction printed as written
    run = SymbolicRun([(1, "H", "W")])
    (x,) = run.inputs([torch.empty(0)])
    h, w = x.shape[-2:]
    assert bool((h // 4 >= 1) & (w >= 2))
    H, W = parse_size("H"), parse_size("W")
    assert len(run.domain()) == 2 and not [c for c in run.domain() if isinstance(c, sp.And)]
    assert Formula(H * W, tuple(run.domain())).conditions() == ["H >= 4", "W >= 2"]


class MobileBlock(nn.Module):
    """A strided convolution, hardswish, a depthwise convolution scaled by squeeze-and-excitation, a pointwise
    convolution and batch norm, averaged over the image."""

    def __init__(self):
        super().__init__()
        self.stem, self.depthwise = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.squeeze, self.excite = nn.Conv2d(8, 2, 1), nn.Conv2d(2, 8, 1)
        self.pointwise, self.norm = nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16)

    def forward(self, x):
        z = self.depthwise(F.hardswish(self.stem(x)))
        scale = torch.sigmoid(self.excite(F.relu(self.squeeze(F.adaptive_avg_pool2d(z, 1)))))
        return self.norm(self.pointwise(z * scale)).mean((2, 3))


class Shifted(nn.Module):
    """A learned per-channel shift, added by broadcasting: a pointwise add of (C, 1, 1) to (N, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(channels, 1, 1))

    def forward(self, x):
        return x + self.shift


def test_the_domain_refuses_sizes_the_model_cannot_take():
    model = nn.Sequential(nn.Conv2d(1, 2, 5, stride=2), nn.Conv2d(2, 2, 3, padding=4, padding_mode="reflect"))
    result = symconv.profile(model, (1, 1, "H", "W"))
    formula = result.formula()
    assert "H >= 13" in formula.conditions()  # (H - 5)//2 + 1 > 4: reflect padding 4 needs an input of 5
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        formula(H=12, W=20)
    with pytest.raises(symconv.SymconvError):
        symconv.profile(model, (1, 1, 12, 20))
    assert formula(H=13, W=20) == symconv.profile(model, (1, 1, 13, 20)).total()
    assert formula.latex() and "H" in formula.latex()
    vector = formula.lambdify()
    H, W = np.array([13, 40, 99]), np.array([20, 20, 57])
    assert vector(H=H, W=W).tolist() == [formula(H=int(a), W=int(b)) for a, b in zip(H, W)]
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        vector(H=np.array([13, 5]), W=np.array([20, 20]))


def test_hints_decide_the_branches_and_the_domain_says_so():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.small, self.large = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 5)

        def forward(self, x):
            return self.large(x) if x.shape[-1] > 64 else self.small(x)

    large = symconv.profile(Branchy(), (1, 1, "H", "W"))
    small = symconv.profile(Branchy(), (1, 1, "H", "W"), hints={"W": 32})
    assert large.formula()(H=80, W=100) == symconv.profile(Branchy(), (1, 1, 80, 100)).total()
    assert small.formula()(H=80, W=40) == symconv.profile(Branchy(), (1, 1, 80, 40)).total()
    with pytest.raises(symconv.SymconvError, match="outside the domain"):
        large.formula()(H=80, W=40)
    # a hint is a size: numpy's integers are taken; a string ended in int()'s ValueError, a float was truncated
    assert symconv.profile(Branchy(), (1, 1, "H", "W"), hints={"W": np.int64(32)}).formula()(H=80, W=40) == \
        small.formula()(H=80, W=40)
    for bad in ("32", 32.5, 32.0, True, 0):
        with pytest.raises(symconv.SymconvError, match=re.escape(f"hint W={bad!r} must be a positive integer")):
            symconv.profile(Branchy(), (1, 1, "H", "W"), hints={"W": bad})


def test_symbolic_sizes_parse_strictly():
    assert parse_size("8*h") == 8 * parse_size("h") and parse_size("2*k+1") == 2 * parse_size("k") + 1
    for bad in ("h/2", "2.5", "h**-1", "__import__('os')", "h;1"):
        with pytest.raises(symconv.SymconvError):
            parse_size(bad)


def test_a_symbolic_profile_exports_as_json_and_as_a_dataframe():
    model, at = SkipUp(), {"H": 9, "W": 14}
    result = symconv.profile(model, (1, 3, "H", "W"), "exact", all_conventions=True)
    concrete = symconv.profile(model, (1, 3, 9, 14), "exact", all_conventions=True)

    names = {n: parse_size(n) for n in at}

    def value(text_or_expr) -> int:
        return int(sp.sympify(text_or_expr, locals=names).xreplace({names[n]: v for n, v in at.items()}))

    report = json.loads(result.to_json())
    assert report["domain"] == result.formula().conditions() and report["hints"] == result.hints
    assert {c: value(report["totals"][c]) for c in CONVENTIONS} == {c: concrete.total(c) for c in CONVENTIONS}
    frame = result.to_dataframe()
    assert value(frame["total"].sum()) == concrete.total("exact")
    # shapes as the tables write them (floor((H - 1)/2) + 1), each size the concrete profile's
    counted = frame["output"] != ""
    assert not frame["output"].str.contains("/2 - ").any()
    def sizes(text: str) -> tuple:
        parsed = sp.sympify(text, locals=names)  # a tuple, or one size: shape_text writes (8), not (8,)
        return tuple(value(v) for v in (parsed if isinstance(parsed, (tuple, sp.Tuple)) else (parsed,)))

    assert [sizes(text) for text in frame["output"][counted]] == \
        [ast.literal_eval(text) for text in concrete.to_dataframe()["output"][counted]]
    assert value(frame["total_macs"].sum()) == concrete.total("macs")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["profile", f"{Path(__file__).with_name('models.py')}:SkipUp", "--input", "1,3,H,W",
                     "--format", "json"]) == 0
    assert value(json.loads(out.getvalue())["totals"]["docs"]) == concrete.total("docs")


def _cli_output(*argv: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


def test_count_cli_prints_the_gradients_of_a_training_step():
    layer = Layer.make("Conv2d", 4, 6, 3, stride=2, padding=1, groups=2)
    text = _cli_output("count", "Conv2d(4, 6, 3, stride=2, padding=1, groups=2)", "--input", "2,4,9,9",
                       "--convention", "all", "--backward")
    rows = {line.split()[0]: [int(v.replace(",", "")) for v in line.split()[1:]]
            for line in text.split("backward pass")[1].splitlines()[2:]}
    expected = {c: simulate_gradients(layer, (2, 4, 9, 9), c) for c in ("docs", "exact", "macs")}
    assert rows == {w: [expected[c][w] for c in ("docs", "exact", "macs")] for w in ("grad_input", "grad_weight",
                                                                                      "grad_bias")}
    # with names: formulas (grad_bias = C_out·(N·ΠL_out − 1) with L_out = 2H, 2W), and LaTeX
    text = _cli_output("count", "ConvTranspose2d(8, 4, 4, stride=2, padding=1)", "--input", "N,8,H,W",
                       "--convention", "exact", "--backward")
    assert "  grad_bias        16*H*N*W - 4" in text.split("backward pass")[1]
    # Z_tap below the size where every tap is touched, as one line where one fits: 2 taps of 4 at a size of 1
    assert "32*Min(4, 2*H)*Min(4, 2*W)" in text.split("backward pass")[1]
    text = _cli_output("count", "Conv1d(2, 4, 3)", "--input", "1,2,10", "--backward", "--latex")
    assert r"\text{grad\_bias} = \left(N \times L_{out} - 1\right) \times C_{out} = 28" in text


def test_count_cli_prints_formulas_and_latex():
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["count", "ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=False)", "--input",
                     "1,512,H,W", "--latex", "--convention", "exact"]) == 0
    text = out.getvalue()
    layer = Layer.make("ConvTranspose2d", 512, 256, 4, stride=2, padding=1, bias=False)
    total = symconv.count_layer(layer, (1, 512, "H", "W"), "exact")
    expected = Formula(total.total, total.domain)
    assert f"\\text{{ConvTranspose2d}}_{{ops}} = {expected.latex()}" in text
    assert expected(H=4, W=4) == symconv.count_layer(layer, (1, 512, 4, 4), "exact").total
    for quantity in (r"\psi = ", r"\lambda = ", r"\gamma = ", r"\text{additions} = "):
        assert quantity in text


def test_floors_print_over_one_denominator_and_read_back_as_the_formula():
    """Output sizes read as torch's documentation writes them, floor((H - 3)/2) + 1 (SymPy prints floor(H/2 - 3/2)),
    in the CLI, a profile's table, its JSON and LaTeX; each text parses back to the formula, whose values are
    torch's output sizes and the brute-force count."""
    names = {n: parse_size(n) for n in ("H", "W")}
    text = _cli_output("count", "Conv2d(3, 8, 3, stride=2)", "--input", "1,3,H,W", "--convention", "exact")
    assert "-> output (1, 8, floor((H - 3)/2) + 1, floor((W - 3)/2) + 1)" in text and "/2 - " not in text
    size = sp.sympify("floor((H - 3)/2) + 1", locals=names)
    # a term divided by a name (a page's L/s) keeps SymPy's writing: over one denominator it would read 2*L/s
    assert formula_text(sp.floor(names["H"] / sp.Symbol("s") + sp.Rational(1, 2))) == "floor(H/s + 1/2)"
    for h in range(3, 12):
        assert size.xreplace({names["H"]: h}) == F.conv2d(torch.ones(1, 3, h, 3), torch.ones(8, 3, 3, 3),
                                                          stride=2).shape[2]
    layer = Layer.make("Conv2d", 3, 8, 3, stride=2)
    total = symconv.count_layer(layer, (1, 3, "H", "W"), "exact").total
    printed = next(line.split(None, 1)[1] for line in text.splitlines() if line.startswith("  total"))
    assert sp.expand(sp.sympify(printed, locals=names) - total) == 0
    for h, w in ((3, 3), (4, 7), (9, 6)):
        assert int(total.xreplace({names["H"]: h, names["W"]: w})) == simulate(layer, (1, 3, h, w), "exact")

    result = symconv.profile(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU()), (1, 3, "H", "W"), "exact")
    assert "(1, 8, floor((H - 3)/2) + 1, floor((W - 3)/2) + 1)" in str(result)
    formula = result.formula().expr
    assert sp.expand(sp.sympify(json.loads(result.to_json())["totals"]["exact"], locals=names) - formula) == 0
    tex = result.formula().latex()
    assert r"\left\lfloor{\frac{H - 3}{2}}\right\rfloor" in tex
    from sympy.parsing.latex import parse_latex
    parsed = parse_latex(tex.replace(r"\times", r"\cdot"), backend="lark")
    assert sp.expand(parsed.xreplace({s: names[s.name] for s in parsed.free_symbols}) - formula) == 0
    assert text.splitlines()[7] == "  total            432*(floor((H - 3)/2) + 1)*(floor((W - 3)/2) + 1)"
    # a flattened size in a row's shape and in the domain's words, as a product of output sizes
    flat = str(symconv.profile(nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.Flatten(), nn.LazyLinear(5)),
                               (1, 3, "H", "W"), "exact"))
    size = "8*(floor((H - 3)/2) + 1)*(floor((W - 3)/2) + 1)"
    assert f"matmul + bias  (1, {size})" in flat and f"{size} = " in flat
    for h, w in ((3, 3), (9, 6), (12, 17)):
        assert sp.sympify(size, locals=names).xreplace({names["H"]: h, names["W"]: w}) == \
            F.conv2d(torch.ones(1, 3, h, w), torch.ones(8, 3, 3, 3), stride=2).flatten(1).shape[1]


def test_a_form_with_small_sizes_apart_prints_each_piece_once():
    """A closed form with the exact values of the sizes below its threshold (a 7×7 stride-2 stem) reads
    Piecewise((1, Eq(H, 1)), (2, Eq(H, 2)), (form, True)): the form, which holds above the small sizes and
    otherwise, is said once; the text reads back as the formula and its values are the brute-force counts."""
    layer = Layer.make("Conv2d", 3, 64, 7, stride=2, padding=3)
    count = symconv.count_layer(layer, (1, 3, "H", "W"), "exact")
    formula = Formula(count.total, count.domain)
    pieces = [p for p in formula.readable().atoms(sp.Piecewise)]
    assert pieces and all(len(p.args) == 3 and [c for _, c in p.args[:2]] == [sp.Eq(next(iter(p.free_symbols)), 1),
                                                                             sp.Eq(next(iter(p.free_symbols)), 2)]
                          for p in pieces)
    names = {n: parse_size(n) for n in ("H", "W")}
    printed = sp.sympify(str(formula), locals=names)
    for h, w in ((1, 1), (1, 2), (2, 3), (3, 8), (8, 5)):
        at = {names["H"]: h, names["W"]: w}
        assert int(printed.xreplace(at)) == int(count.total.xreplace(at)) == simulate(layer, (1, 3, h, w), "exact")


def test_a_formula_takes_numpy_integers_as_sizes():
    # sizes from np.arange were refused: "H=np.int64(8) must be a positive integer"
    layer = Layer.make("Conv2d", 3, 4, 3, stride=2)
    count = symconv.count_layer(layer, (1, 3, "H", "W"), "exact")
    formula = Formula(count.total, count.domain)
    assert [formula(H=h, W=np.int32(7)) for h in np.arange(3, 9)] == \
        [simulate(layer, (1, 3, h, 7), "exact") for h in range(3, 9)]
    for bad in (np.float64(8.0), True, np.int64(0)):
        with pytest.raises(symconv.SymconvError, match=re.escape(f"H={bad!r} must be a positive integer")):
            formula(H=bad, W=7)


def test_successive_strides_print_one_floor_and_the_text_reads_back_as_the_counts():
    """A stride-2 stem, then a stride-2 block whose shortcut is a 1×1 stride-2 convolution (ResNet's downsampling):
    the shortcut's output size nested one floor in another, floor(floor((H - 1)/2)/2) + 1, beside the main path's
    floor((H - 1)/4) + 1, so the total said the same product twice in two writings, and the main path's count read
    Mod(floor((H - 1)/2), 2) + 3*floor((H - 1)/4) + 1. One floor now, and floor((H - 1)/4) + floor((H - 1)/2) + 1;
    the printed total, read back, is the brute-force count of every convolution at each size."""
    stem, conv, shortcut = (nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Conv2d(4, 8, 3, stride=2, padding=1),
                            nn.Conv2d(4, 8, 1, stride=2))

    class Downsampled(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.conv, self.shortcut = stem, conv, shortcut

        def forward(self, x):
            x = self.stem(x)
            return self.conv(x) + self.shortcut(x)

    result = symconv.profile(Downsampled(), (1, 3, "H", "W"), "exact")
    text = str(result.formula())
    assert "floor(floor" not in text and "Mod(floor" not in text and "floor((H - 1)/4) + 1" in text
    names = {n: parse_size(n) for n in ("H", "W")}
    printed = sp.sympify(text, locals=names)
    layers = [symconv.layer_from_module(m) for m in (stem, conv, shortcut)]
    for h, w in itertools.product((1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17), (1, 6, 11)):
        sizes = [(1, 3, h, w)] + [(1, 4, (h - 1) // 2 + 1, (w - 1) // 2 + 1)] * 2
        expected = sum(simulate(layer, shape, "exact") for layer, shape in zip(layers, sizes))  # the add: no count
        assert int(printed.xreplace({names["H"]: h, names["W"]: w})) == expected, (h, w)
    # the identity itself, on rationals as on integers: floor((floor(x) + m)/n) is floor((x + m)/n)
    x = sp.Symbol("x")
    for inner, outer in ((sp.floor, sp.floor), (sp.ceiling, sp.ceiling)):
        for m, n in ((0, 2), (3, 4), (-5, 3)):
            nested = outer((inner(x / 7) + m) / n)
            flat = canonical(nested)
            assert "floor(floor" not in str(flat) and "ceiling(ceiling" not in str(flat)
            for value in [sp.Rational(k, 3) for k in range(-60, 61)]:
                assert flat.xreplace({x: value}) == nested.xreplace({x: value}), (nested, value)
    # a remainder of a floor beside the floor of its quotient: Mod(a, n) is a - n*floor(a/n)
    for n in (2, 3):
        remainder = sp.Mod(sp.floor(x / 5), n) + 3 * sp.floor(sp.floor(x / 5) / n)
        merged = canonical(remainder)
        assert not merged.has(sp.Mod) and "floor(floor" not in str(merged)
        for value in [sp.Rational(k, 2) for k in range(-80, 81)]:
            assert merged.xreplace({x: value}) == remainder.xreplace({x: value}), (remainder, value)


@functools.lru_cache(maxsize=None)  # SymPy's LaTeX parser takes a tenth of a second a formula
def _parsed_tex(tex: str) -> sp.Expr:
    from sympy.parsing.latex import parse_latex
    return parse_latex(tex.replace(r"\times", r"\cdot"), backend="lark")


def _tex_value(cell: str, at: dict[str, int]) -> str:
    """A LaTeX table cell evaluated at sizes: a formula ($…$) or a shape ($(…)$) as the concrete table writes it."""
    def value(tex: str) -> int:
        parsed = _parsed_tex(tex)
        return int(parsed.xreplace({s: at[s.name] for s in parsed.free_symbols}))
    if not cell.startswith("$") or cell.startswith(r"$\cdot"):
        return cell
    if cell.startswith("$("):
        return "(" + ", ".join(str(value(v)) for v in cell[2:-2].split(", ")) + ")"
    return f"{value(cell[1:-1]):,}"


def test_a_symbolic_profiles_latex_table_writes_formulas_as_math():
    """to_latex of a symbolic profile: every formula and shape in math, in the pages' notation; each cell, read
    back by SymPy's LaTeX parser at sizes, is the concrete profile's cell there."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ConvTranspose2d(8, 4, 4, stride=2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    result = symconv.profile(model.eval(), (1, 3, "H", "W"), "exact", all_conventions=True)
    table = [line.removesuffix(r" \\").split(" & ") for line in result.to_latex().splitlines() if " & " in line]
    assert any(cell.startswith(r"$432 \times \left(\left\lfloor{\frac{H - 3}{2}}") for row in table for cell in row)
    math = 0
    for h, w in ((3, 3), (9, 6), (12, 17)):
        concrete = symconv.profile(model.eval(), (1, 3, h, w), "exact", all_conventions=True)
        rows = [line.removesuffix(r" \\").split(" & ") for line in concrete.to_latex().splitlines() if " & " in line]
        assert table[0] == rows[0] and [[_tex_value(c, {"H": h, "W": w}) for c in row] for row in table[1:]] == rows[1:]
        math += sum(c.startswith("$") and c != rows[i][j] for i, row in enumerate(table) for j, c in enumerate(row))
    assert math > 30
