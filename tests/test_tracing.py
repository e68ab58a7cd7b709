"""The op-level profiler: what runs is counted, against independent counts, and the user's model is never touched."""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import itertools
import json
import math
import pickle
import random
import re
import threading
import types
import weakref
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import symconv
from symconv.frontends import examples
from symconv.frontends.cli import main
from symconv.numeric.layer import Layer
from symconv.oracle import grid
from symconv.tracing import shapes
from symconv.tracing.ops import Context, trilinear
from symconv.tracing.report import readable

from .bruteforce import simulate, simulate_gradients
from .models import Conv2dSame, Switched, Tokens

CONVENTIONS = ("docs", "exact", "macs")


def counted(model: nn.Module, inputs, convention: str = "exact", **options):
    result = symconv.profile(model, inputs, convention, all_conventions=True, **options)
    return result, {c: result.total(c) for c in CONVENTIONS}


def layer_totals(layer: Layer, shape: tuple[int, ...]) -> dict[str, int]:
    return {c: simulate(layer, shape, c) for c in CONVENTIONS}


def matmul_totals(rows: int, inner: int, columns: int, bias: bool) -> dict[str, int]:
    """The matrix-product rule restated: m·n·(2k − 1 + bias) operations, m·k·n MACs."""
    ops = rows * columns * (2 * inner - 1 + bias)
    return {"docs": ops, "exact": ops, "macs": rows * inner * columns}


def add(*totals: dict[str, int]) -> dict[str, int]:
    return {c: sum(t[c] for t in totals) for c in CONVENTIONS}


# --- whatever reaches a convolution ---------------------------------------------------------------------------

def test_a_pad_then_convolve_subclass_keeps_its_padding():
    module = Conv2dSame(3, 8, (3, 4), stride=2, bias=False)
    result, totals = counted(module, (2, 3, 9, 10))
    # TensorFlow's SAME: (1, 1) rows and (1, 2) columns of zeros, merged into the layer's padding
    merged = Layer("Conv2d", 3, 8, (3, 4), (2, 2), (1, 1), (1, 1), (0, 0), 1, False, "zeros", (1, 2))
    assert totals == layer_totals(merged, (2, 3, 9, 10))
    unmerged = Layer("Conv2d", 3, 8, (3, 4), (2, 2), (0, 0), (1, 1), (0, 0), 1, False)
    assert totals["exact"] < simulate(unmerged, (2, 3, 11, 13), "exact")  # counting on the padded input: more
    assert "merged from constant_pad_nd" in result.counted[0].counted.note


@pytest.mark.parametrize("kernel, dilation", [(2, 1), (4, 1), (4, 2), ((2, 5), 1), (3, 1)])
def test_padding_same_and_a_hand_written_pad(kernel, dilation):
    module = nn.Conv2d(2, 4, kernel, padding="same", dilation=dilation)
    _, totals = counted(module, (1, 2, 7, 8))
    assert totals == layer_totals(symconv.layer_from_module(module), (1, 2, 7, 8))

    class HandPad(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, bias=False)

        def forward(self, x):
            return self.conv(F.pad(x, (2, 0, 1, 3)))

    _, totals = counted(HandPad(), (1, 2, 6, 6))
    merged = Layer("Conv2d", 2, 4, (3, 3), (1, 1), (1, 2), (1, 1), (0, 0), 1, False, "zeros", (3, 0))
    assert totals == layer_totals(merged, (1, 2, 6, 6))


def test_zeros_padded_twice_merge_into_one_padding():
    class PaddedTwice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, bias=False)

        def forward(self, x):
            return self.conv(F.pad(F.pad(x, (1, 0)), (0, 2, 1, 1)))

    _, totals = counted(PaddedTwice(), (1, 2, 6, 7))
    merged = Layer("Conv2d", 2, 3, (3, 3), (1, 1), (1, 1), (1, 1), (0, 0), 1, False, "zeros", (1, 2))
    assert totals == layer_totals(merged, (1, 2, 6, 7))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_data_padding_counts_its_products(mode):
    module = nn.Conv2d(2, 3, 3, padding=2, padding_mode=mode)
    _, totals = counted(module, (1, 2, 5, 6))
    assert totals == layer_totals(symconv.layer_from_module(module), (1, 2, 5, 6))
    unpadded = Layer("Conv2d", 2, 3, (3, 3), (1, 1), (0, 0), (1, 1), (0, 0), 1, True)
    assert totals == layer_totals(unpadded, (1, 2, 9, 10))


def test_parametrized_convolutions_are_counted():
    plain = nn.Conv1d(4, 6, 5, padding=2)
    layer = symconv.layer_from_module(plain)
    for wrap in (nn.utils.parametrizations.weight_norm, nn.utils.parametrizations.spectral_norm,
                 nn.utils.weight_norm):
        model = nn.Sequential(wrap(copy.deepcopy(plain)), nn.LeakyReLU(0.1))
        result, totals = counted(model, (2, 4, 16))
        convs = [r for r in result.counted if r.op == "aten.convolution"]
        assert len(convs) == 1 and convs[0].module == "0"
        assert convs[0].counted.totals == layer_totals(layer, (2, 4, 16))
    # spectral_norm's power iteration runs matrix-vector products: counted too, not silently dropped
    assert {r.counted.what for r in result.counted} >= {"matrix-vector", "Conv1d"} or wrap is nn.utils.weight_norm


def test_hifigan_style_generator_is_not_zero():
    class ResBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            wn = nn.utils.parametrizations.weight_norm
            self.convs = nn.ModuleList(wn(nn.Conv1d(c, c, 3, dilation=d, padding=d)) for d in (1, 3))

        def forward(self, x):
            for conv in self.convs:
                x = x + conv(F.leaky_relu(x, 0.1))
            return x

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            wn = nn.utils.parametrizations.weight_norm
            self.pre = wn(nn.Conv1d(8, 16, 7, padding=3))
            self.up = wn(nn.ConvTranspose1d(16, 8, 16, stride=8, padding=4))
            self.res = ResBlock(8)
            self.post = wn(nn.Conv1d(8, 1, 7, padding=3))

        def forward(self, x):
            x = self.up(F.leaky_relu(self.pre(x), 0.1))
            return torch.tanh(self.post(self.res(x)))

    model = Generator()
    _, totals = counted(model, (1, 8, 20))
    expected = [(model.pre, (1, 8, 20)), (model.up, (1, 16, 20)), (model.res.convs[0], (1, 8, 160)),
                (model.res.convs[1], (1, 8, 160)), (model.post, (1, 8, 160))]
    assert totals == add(*(layer_totals(symconv.layer_from_module(m), s) for m, s in expected))
    assert totals["exact"] > 0


def test_functional_calls_and_output_size():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 2, 3, 3))
            self.v = nn.Parameter(torch.randn(4, 2, 3, 3))
            self.up = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)

        def forward(self, x):
            y = F.conv2d(x, self.w, stride=1, padding=1)
            y = F.conv_transpose2d(y, self.v, stride=2)
            return self.up(y, output_size=(26, 26))

    result, totals = counted(Functional(), (1, 2, 6, 6))
    conv = Layer.make("Conv2d", 2, 4, 3, padding=1, bias=False)
    convt = Layer.make("ConvTranspose2d", 4, 2, 3, stride=2, bias=False)
    # output_size=(26, 26) on a 13x13 input asks for output_padding 1: counted with it
    sized = Layer.make("ConvTranspose2d", 2, 2, 3, stride=2, padding=1, output_padding=1)
    assert totals == add(layer_totals(conv, (1, 2, 6, 6)), layer_totals(convt, (1, 4, 6, 6)),
                         layer_totals(sized, (1, 2, 13, 13)))
    assert result.counted[-1].counted.output_shape == (1, 2, 26, 26)


@pytest.mark.parametrize("pad", [0, 2])
def test_a_time_major_convolution_is_the_conv1d_it_is(pad):
    class TimeMajor(nn.Module):  # fairseq's convolutions: (time, batch, channels)
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(3, 4, 6))
            self.bias = nn.Parameter(torch.randn(6))

        def forward(self, x):
            return torch.conv_tbc(x, self.weight, self.bias, pad)

    x = torch.randn(9, 2, 4)
    for inputs in ((9, 2, 4), x):
        result, totals = counted(TimeMajor(), inputs)
        assert totals == layer_totals(Layer.make("Conv1d", 4, 6, 3, padding=pad), (2, 4, 9))
        (record,) = result.counted
        assert record.counted.output_shape == tuple(TimeMajor()(x).shape) == (9 + 2 * pad - 2, 2, 6)
        assert not [op for op, _, _, arithmetic in result.not_counted() if arithmetic]


class Annotated(nn.Module):
    """A forward that marks its parts for torch's profiler (record_function), as DataParallel also does."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        with torch.autograd.profiler.record_function("block"):
            return self.conv(x)


@pytest.mark.parametrize("build", [Annotated, lambda: nn.DataParallel(nn.Conv2d(3, 4, 3))])
def test_profiler_annotations_are_not_operators(build):
    model = build()
    result, totals = counted(model, (2, 3, 8, 8))
    assert totals == layer_totals(Layer.make("Conv2d", 3, 4, 3), (2, 3, 8, 8))
    assert [r.op for r in result.records] == ["aten.convolution"]  # and nothing listed as not counted


class Rearranging(nn.Module):
    """Operators that move, select or mask data: every output element a copy of an input element or a constant."""

    def forward(self, x):
        y = F.interpolate(F.pixel_shuffle(x, 2), scale_factor=2, mode="nearest")  # (1, 2, 8, 8) from (1, 8, 2, 2)
        mask = torch.triu(torch.ones(8, 8, dtype=torch.bool, device=x.device)).tril(2)
        y = torch.where(mask, y, y.flip(-1)).masked_fill(~mask, 0.5)
        patches = F.unfold(y, 2).unfold(2, 4, 4)  # im2col, then a strided view
        rows = torch.tensor([3, 1, 4], device=x.device)
        picked = y[:, :, rows].repeat_interleave(2, dim=1).roll(1, 0).narrow(3, 2, 4)
        return patches.flatten(), picked.diagonal(dim1=2, dim2=3).movedim(1, 0).reshape(-1)


def test_operators_listed_as_moving_data_do_no_arithmetic():
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    from symconv.tracing.counting_mode import DATA_MOVEMENT
    uninitialized = {"aten.empty", "aten.empty_like", "aten.empty_strided", "aten.new_empty",
                     "aten.new_empty_strided"}
    checked = set()

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name, leaves = str(func.overloadpacket), tree_leaves((args, kwargs or {}))
            tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
            if name in DATA_MOVEMENT and name not in uninitialized and tensors:
                allowed = {0.0, 1.0, *(float(v) for v in leaves if isinstance(v, (int, float))),
                           *(v for t in tensors for v in t.double().flatten().tolist())}
                for t in (t for t in tree_leaves(out) if isinstance(t, torch.Tensor)):
                    assert set(t.double().flatten().tolist()) <= allowed, name
                checked.add(name)
            return out

    x = torch.randperm(32).float().add(100).reshape(1, 8, 2, 2)  # distinct values, none of them a constant
    with Watch():
        Rearranging()(x)
    listed = {r.op for r in symconv.profile(Rearranging(), (1, 8, 2, 2)).records}
    assert {"aten.pixel_shuffle", "aten.upsample_nearest2d", "aten.triu", "aten.tril", "aten.where",
            "aten.masked_fill", "aten.im2col", "aten.unfold", "aten.index",
            "aten.diagonal"} <= checked
    assert {op for op in listed if op in DATA_MOVEMENT} - {"aten.ones", "aten.lift_fresh"} <= checked  # all seen
    assert all(not arithmetic for op, _, _, arithmetic in symconv.profile(Rearranging(), (1, 8, 2, 2)).not_counted()
               if op != "aten.bitwise_not")


def test_unbatched_input():
    module = nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1, groups=1)
    _, totals = counted(module, (3, 5, 5))
    assert totals == layer_totals(symconv.layer_from_module(module), (3, 5, 5))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_a_shape_takes_the_models_dtype(dtype):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.LazyConv2d(2, 3, stride=2), nn.Flatten(),
                          nn.Linear(18, 5)).to(dtype)
    conv1, conv2 = symconv.layer_from_module(model[0]), Layer("Conv2d", 4, 2, (3, 3), (2, 2), (0, 0), (1, 1),
                                                              (0, 0), 1, True)
    expected = add(layer_totals(conv1, (2, 3, 9, 9)), layer_totals(conv2, (2, 4, 7, 7)), matmul_totals(2, 18, 5, True))
    for inputs in ((2, 3, 9, 9), torch.randn(2, 3, 9, 9, dtype=dtype)):
        result, totals = counted(model, inputs)
        assert totals == expected and result.run == "meta"
    assert counted(model, (2, 3, "H", 9), hints={"H": 9})[0].formula("exact")(H=9) == expected["exact"]


@pytest.mark.parametrize("shape, bad", [((1.0, 3, 8, 8), "1.0 (float)"), ((True, 3, 8, 8), "True (bool)")])
def test_a_shape_with_a_size_that_is_not_one_is_refused_naming_it(shape, bad):
    with pytest.raises(symconv.SymconvError, match=re.escape(f"input shape {shape!r}: {bad} is not a size")):
        symconv.profile(nn.Conv2d(3, 4, 3), shape)


def test_inputs_and_options_of_the_wrong_kind_are_refused_naming_them_briefly():
    # an array was named by its whole repr (a dozen lines of numbers for an image); backward="yes" reached torch's
    # set_grad_enabled, whose TypeError was blamed on the model's forward
    conv = nn.Conv2d(3, 4, 3)
    image = np.zeros((1, 3, 224, 224), dtype=np.float32)
    for inputs, text in ((image, "inputs=ndarray of shape (1, 3, 224, 224) must be a shape (ints, names), a sequence "
                                 "of shapes, a tensor, a tuple of tensors, or a dict of shapes or tensors by argument "
                                 "name (an array is given as a tensor: torch.as_tensor(array))"),
                         ({"the image": image}, "inputs={'the image': ndarray of shape (1, 3, 224, 224)}: a dict"),
                         ([torch.randn(1, 3, 8, 8), image], "not a tensor, ndarray of shape (1, 3, 224, 224)")):
        with pytest.raises(symconv.SymconvError) as raised:
            symconv.profile(conv, inputs)
        assert text in str(raised.value) and "\n" not in str(raised.value)
    for option in ("backward", "all_conventions"):
        with pytest.raises(symconv.SymconvError, match=f"^{option}='yes' must be True or False$"):
            symconv.profile(conv, (1, 3, 8, 8), **{option: "yes"})


def test_an_input_of_another_dtype_than_the_weights_is_refused_as_torch_refuses_it():
    conv = nn.Conv2d(3, 4, 3, bias=False)  # without a bias, torch's meta kernel would let it through
    with pytest.raises(RuntimeError):
        conv(torch.randn(1, 3, 8, 8, dtype=torch.float16))
    for inputs in ({"inputs": (1, 3, 8, 8), "dtype": torch.float16}, {"inputs": torch.randn(1, 3, 8, 8).half()}):
        with pytest.raises(symconv.SymconvError, match="float16 input with float32 weights"):
            symconv.profile(conv, **inputs)


def test_several_inputs_given_as_shapes_with_their_dtypes():
    model, expected = Tokens(), matmul_totals(2 * 10, 8, 4, True)
    given = symconv.profile(model, (torch.randint(0, 50, (2, 10)), torch.randn(2, 10, 8)), "exact")
    result, totals = counted(model, [(2, 10), (2, 10, 8)], dtype=[torch.long, None])  # None: the model's
    assert totals == expected and given.total() == expected["exact"] and result.run == given.run == "meta"
    assert result.input_shapes == ((2, 10), (2, 10, 8))
    formula = counted(model, [(2, "L"), (2, "L", 8)], dtype=[torch.long, torch.float32])[0].formula("exact")
    assert [formula(L=n) for n in (3, 10)] == [matmul_totals(2 * n, 8, 4, True)["exact"] for n in (3, 10)]
    with pytest.raises(symconv.SymconvError, match="give each shape's dtype, e.g. dtype=torch.long"):
        symconv.profile(model, [(2, 10), (2, 10, 8)])  # token ids as floats: torch's embedding refuses them
    with pytest.raises(symconv.SymconvError, match=r"one per input shape \(2"):
        symconv.profile(model, [(2, 10), (2, 10, 8)], dtype=[torch.long])
    with pytest.raises(symconv.SymconvError, match="a tensor has its own"):
        symconv.profile(nn.Linear(8, 4), torch.randn(2, 8), dtype=torch.float64)


class Pyramid(nn.Module):
    """A feature pyramid's lateral convolutions: one argument, a list of tensors (and a dict of options)."""

    def __init__(self):
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(8, 4, 1), nn.Conv2d(16, 4, 3, padding=1)])

    def forward(self, features, options):
        return [conv(f) * options["scale"] for conv, f in zip(self.lateral, features)]


def test_an_argument_made_of_several_tensors():
    features = [torch.randn(2, 8, 8, 8, requires_grad=True), torch.randn(2, 16, 4, 4)]
    options = {"scale": torch.tensor(0.5)}
    expected = add(layer_totals(Layer.make("Conv2d", 8, 4, 1), (2, 8, 8, 8)),
                   layer_totals(Layer.make("Conv2d", 16, 4, 3, padding=1), (2, 16, 4, 4)))
    for inputs in ((features, options), {"features": features, "options": options}):
        result, totals = counted(Pyramid(), inputs)
        assert totals == expected and result.run == "meta"
    assert "on input features=[(2, 8, 8, 8), (2, 16, 4, 4)], options={scale: ()}" in result.summary()
    # numbers and strings beside the tensors, or instead of them (an option), are passed as they are
    for options, text in (({"scale": torch.tensor(0.5), "note": "levels"}, "{scale: (), note: 'levels'}"),
                          ({"scale": 0.5}, "{'scale': 0.5}")):
        result, totals = counted(Pyramid(), (features, options))
        assert totals == expected and f"input [(2, 8, 8, 8), (2, 16, 4, 4)], {text}, run" in result.summary()
    trained = symconv.profile(Pyramid(), (features, options), "exact", backward=True)
    grads = [r.counted.what for r in trained.counted if r.phase == "backward"]
    assert grads.count("grad_input") == 1 and grads.count("grad_weight") == 2  # only the first input needs one
    assert features[0].grad is None


def test_options_beside_the_inputs_are_passed_as_copies_of_themselves():
    # a string, a number or a dict beside a shape or a tensor was refused ("all be shapes or all be tensors")
    model, image, cache = Switched(), torch.randn(2, 3, 9, 9), {}
    large = layer_totals(Layer.make("Conv2d", 3, 4, 5, padding=1), (2, 3, 9, 9))
    for inputs in ({"x": (2, 3, 9, 9), "mode": "large", "cache": cache}, ((2, 3, 9, 9), "large", 0.5, cache),
                   [image, "large"], {"x": image, "cache": cache, "mode": "large"}):
        result, totals = counted(model, inputs)
        assert totals == large and result.run == "meta"
    assert cache == {}  # the forward wrote in its copy
    assert "on input x=(2, 3, 9, 9), cache={}, mode='large'" in result.summary()
    assert counted(model, (image, "small", 2.0))[1] == layer_totals(Layer.make("Conv2d", 3, 4, 3), (2, 3, 9, 9))
    formula = counted(model, {"x": (2, 3, "H", "W"), "mode": "large"})[0].formula("exact")
    assert [formula(H=h, W=w) for h, w in ((9, 9), (12, 7))] == \
        [layer_totals(Layer.make("Conv2d", 3, 4, 5, padding=1), (2, 3, h, w))["exact"] for h, w in ((9, 9), (12, 7))]
    # a layer handed to forward runs as a copy: counted, its gradients not written
    head = nn.Conv2d(4, 2, 1)
    trained = symconv.profile(model, {"x": image.requires_grad_(), "mode": "large", "head": head}, "exact",
                              backward=True)
    assert trained.total("exact", "forward") == \
        large["exact"] + layer_totals(Layer.make("Conv2d", 4, 2, 1), (2, 4, 7, 7))["exact"]
    assert head.weight.grad is None and image.grad is None and model.large.weight.grad is None
    with pytest.raises(symconv.SymconvError, match="all be shapes or all be tensors, not a tensor, a shape"):
        symconv.profile(model, (image, (3, 3)))  # a tuple of ints is a shape, never an option


def test_inputs_given_by_argument_name():
    model, expected = Tokens(), matmul_totals(2 * 10, 8, 4, True)
    by_name = {"offset": (2, 10, 8), "ids": (2, 10)}  # in another order than forward's
    result, totals = counted(model, by_name, dtype={"ids": torch.long})
    assert totals == expected and result.input_names == ("offset", "ids")
    assert "on input offset=(2, 10, 8), ids=(2, 10)" in result.summary()
    tensors = {"ids": torch.randint(0, 50, (2, 10)), "offset": torch.randn(2, 10, 8, requires_grad=True)}
    trained = symconv.profile(model, tensors, "exact", backward=True)
    assert trained.total("exact", "forward") == expected["exact"]
    # the head's input gradient (20×4 by 4×8) and weight gradient (4×20 by 20×8); its bias gradient is a sum
    assert trained.total("exact", "backward") == \
        matmul_totals(20, 4, 8, False)["exact"] + matmul_totals(4, 20, 8, False)["exact"]
    formula = counted(model, {"ids": (2, "L"), "offset": (2, "L", 8)}, dtype={"ids": torch.long})[0].formula("exact")
    assert formula(L=10) == expected["exact"]
    with pytest.raises(symconv.SymconvError, match="all be shapes or all be tensors, not a shape, a tensor"):
        symconv.profile(model, {"ids": (2, 10), "offset": torch.randn(2, 10, 8)})
    with pytest.raises(symconv.SymconvError, match="got an unexpected keyword argument 'mask'"):
        symconv.profile(model, {"ids": (2, 10), "mask": (2, 10, 8)}, dtype={"ids": torch.long})


# --- matrix products and attention ------------------------------------------------------------------------------

def test_linear_on_every_input_layout():
    lin = nn.Linear(6, 5)
    for shape, permute in (((4, 6), None), ((2, 3, 6), None), ((2, 6, 3, 4), (0, 2, 3, 1))):
        class Head(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = lin

            def forward(self, x):
                return self.lin(x.permute(*permute) if permute else x)

        _, totals = counted(Head(), shape)
        rows = math.prod(shape) // 6
        assert totals == matmul_totals(rows, 6, 5, True), shape


@pytest.mark.parametrize("training", [True, False])
def test_multihead_attention_counts_projections_and_products(training):
    E, H, B, L, S = 8, 2, 2, 5, 7
    mha = nn.MultiheadAttention(E, H, batch_first=True).train(training)

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, q, kv):
            return self.attn(q, kv, kv, need_weights=False)[0]

    result, totals = counted(Cross(), (torch.randn(B, L, E), torch.randn(B, S, E)))
    head = E // H
    expected = add(matmul_totals(B * L, E, E, True), matmul_totals(B * S, E, E, True),
                   matmul_totals(B * S, E, E, True), matmul_totals(B * H * L, head, S, False),
                   matmul_totals(B * H * L, S, head, False), matmul_totals(B * L, E, E, True))
    assert totals == expected
    assert all(r.module == "attn" for r in result.counted)


def test_scaled_dot_product_attention_counts_both_products():
    class SDPA(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    _, totals = counted(SDPA(), (q, k, v))
    assert totals == add(matmul_totals(2 * 3 * 5, 4, 7, False), matmul_totals(2 * 3 * 5, 7, 6, False))
    # the fused CPU kernel that runs on real tensors has its own rule, with the same counts
    from symconv.tracing.ops import Context, fused_attention
    fused = fused_attention(tuple(q.shape), tuple(k.shape), tuple(v.shape), context=Context(CONVENTIONS))
    assert add(*(f.totals for f in fused)) == totals


def test_fused_multihead_attention_rule():
    from symconv.tracing.ops import Context, multi_head_attention
    E, H, B, L = 8, 2, 3, 4
    entries = multi_head_attention((B, L, E), (B, L, E), (B, L, E), E, H, (3 * E, E), (3 * E,), (E, E), (E,),
                                   context=Context(CONVENTIONS))
    assert add(*(e.totals for e in entries)) == add(
        *[matmul_totals(B * L, E, E, True)] * 3, matmul_totals(B * H * L, E // H, L, False),
        matmul_totals(B * H * L, L, E // H, False), matmul_totals(B * L, E, E, True))


def test_products_written_into_out_or_in_place_are_counted():
    class Written(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 4))
            self.batch = nn.Parameter(torch.randn(3, 4, 6))

        def forward(self, x):  # (5, 8)
            out = torch.mm(x, self.w, out=x.new_empty(5, 4))
            acc = x.new_zeros(5, 4).addmm_(x, self.w)
            batched = torch.bmm(out.expand(3, 5, 4), self.batch, out=x.new_empty(3, 5, 6))
            summed = torch.addbmm(x.new_zeros(5, 6), out.expand(3, 5, 4), self.batch)  # sums the 3 products
            return acc, batched, summed, torch.mv(x, x[0], out=x.new_empty(5))

    _, totals = counted(Written(), (5, 8))
    assert totals == add(matmul_totals(5, 8, 4, False), matmul_totals(5, 8, 4, True),
                         matmul_totals(3 * 5, 4, 6, False), matmul_totals(5, 3 * 4, 6, True),
                         matmul_totals(5, 8, 1, False))


class CpuState(nn.Module):
    """A recurrence written for the CPU: its state made with no device, as torch.zeros(n, 16)."""

    def __init__(self):
        super().__init__()
        self.input, self.state = nn.Linear(8, 16), nn.Parameter(torch.randn(16, 16))

    def forward(self, x):  # (N, 8)
        h = torch.zeros(x.size(0), 16)
        for _ in range(3):
            h = torch.tanh(self.input(x) + h @ self.state)
        return h


def test_tensors_the_model_makes_without_a_device_run_beside_the_meta_stand_ins():
    # they were made on the CPU and met the meta stand-ins: a shape was refused ("needs real values")
    model = CpuState()
    result, totals = counted(model, (3, 8))
    assert result.run == "meta"
    assert totals == add(*[matmul_totals(3, 8, 16, True), matmul_totals(3, 16, 16, False)] * 3)
    assert torch.empty(1).device.type == "cpu"  # the default device is the CPU again
    formula = symconv.profile(model, ("N", 8), "exact", all_conventions=True, backward=True).formula()
    for n in (1, 5):
        assert formula(N=n) == symconv.profile(model, (n, 8), "exact", backward=True).total()


def test_an_outer_product_added_to_a_matrix_is_a_product_of_inner_size_one():
    class Hebbian(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 6))

        def forward(self, u, v):  # (4) and (6)
            trace = self.w.detach().clone().addr_(u, v)  # in place
            return torch.addr(self.w, u, v, beta=0.5) + torch.addr(self.w, u, v, beta=0) + trace

    _, totals = counted(Hebbian(), (torch.randn(4), torch.randn(6)))
    assert totals == add(matmul_totals(4, 1, 6, True), matmul_totals(4, 1, 6, True), matmul_totals(4, 1, 6, False))


def test_an_add_product_with_beta_zero_adds_nothing():
    class Scores(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 4))

        def forward(self, q, k):  # (2, 5, 8) and (2, 7, 8)
            empty = q.new_empty(2, 5, 7)  # attention scores as several transformer implementations write them
            scores = torch.baddbmm(empty, q, k.transpose(1, 2), beta=0, alpha=0.125)
            ignored = torch.addmm(q.new_empty(5, 4), q[0], self.w, beta=0)
            scaled = torch.addmm(q.new_ones(5, 4), q[0], self.w, beta=0.5)  # scaled, still added
            return scores, ignored, scaled

    _, totals = counted(Scores(), (torch.randn(2, 5, 8), torch.randn(2, 7, 8)))
    assert totals == add(matmul_totals(2 * 5, 8, 7, False), matmul_totals(5, 8, 4, False),
                         matmul_totals(5, 8, 4, True))


KINDS = {"Conv1d": (F.conv1d, 1), "Conv2d": (F.conv2d, 2), "Conv3d": (F.conv3d, 3),
         "ConvTranspose1d": (F.conv_transpose1d, 1), "ConvTranspose2d": (F.conv_transpose2d, 2)}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias_view", ["(1, C, 1, ...)", "(C, 1, ...)"])
def test_a_convolution_bias_added_after_it_is_its_bias(kind, bias_view):
    convolve, ndim = KINDS[kind]
    transposed = kind.startswith("ConvTranspose")
    layer = Layer.make(kind, 4, 6, 3, stride=2, padding=1, output_padding=1 if transposed else 0)

    class Separate(nn.Module):  # F.conv*d without bias, then its bias added (StyleGAN's bias_act, custom layers)
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(*((4, 6) if transposed else (6, 4)), *(3,) * ndim))
            self.bias = nn.Parameter(torch.randn(6))

        def forward(self, x):
            options = dict(stride=2, padding=1, **({"output_padding": 1} if transposed else {}))
            y = convolve(x, self.weight, **options)
            shape = (1, 6, *(1,) * ndim) if bias_view == "(1, C, 1, ...)" else (6, *(1,) * ndim)
            return y + self.bias.view(shape)

    shape = (2, 4, *(5,) * ndim)
    result, totals = counted(Separate(), shape)
    assert totals == layer_totals(layer, shape)  # the brute force of the layer with its own bias
    (record,) = result.counted
    assert record.counted.layer == layer and "bias added by a separate add" in record.counted.note
    assert not any(r.op == "aten.add" for r in result.records)  # the add is the record's bias, not listed


def test_an_ensemble_batched_by_vmap_counts_each_member_with_its_bias():
    members = [nn.Conv2d(3, 4, 3) for _ in range(3)]

    class Ensemble(nn.Module):  # torch.func's model ensembling: vmap runs one convolution of 12 filters
        def __init__(self):
            super().__init__()
            self.members = nn.ModuleList(members)

        def forward(self, x):
            params, buffers = torch.func.stack_module_state(list(self.members))
            base = nn.Conv2d(3, 4, 3, device="meta")
            run = lambda p, b, x: torch.func.functional_call(base, (p, b), (x,))  # noqa: E731
            return torch.vmap(run, in_dims=(0, 0, None))(params, buffers, x)

    _, totals = counted(Ensemble(), (2, 3, 8, 8))
    member = symconv.layer_from_module(members[0])
    assert totals == add(*[layer_totals(member, (2, 3, 8, 8))] * 3)


def test_a_residual_add_after_a_convolution_is_not_its_bias():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

        def forward(self, x):
            return self.conv(x) + x

    result, totals = counted(Residual(), (2, 4, 6, 6))
    assert totals == layer_totals(Layer.make("Conv2d", 4, 4, 3, padding=1, bias=False), (2, 4, 6, 6))
    assert "not counted: 1 × add" in str(result)


# --- real values, never zeros, and never the user's model --------------------------------------------------------

class Branching(nn.Module):
    """Data-dependent control flow: only real values decide which convolution runs."""

    def __init__(self):
        super().__init__()
        self.small = nn.Conv1d(1, 1, 3)
        self.large = nn.Conv1d(1, 1, 5)

    def forward(self, x):
        return self.small(x) if x.sum() > 0 else self.large(x)


def test_data_dependent_models_run_on_the_users_own_tensor():
    model = Branching()
    for sign, branch in ((1.0, model.small), (-1.0, model.large)):
        x = torch.full((1, 1, 12), sign)
        result, totals = counted(model, x)
        assert result.run == "real values"
        assert totals == layer_totals(symconv.layer_from_module(branch), (1, 1, 12))
        assert [r.module for r in result.counted] == ["small" if sign > 0 else "large"]
    with pytest.raises(symconv.SymconvError, match="needs real values .* pass an example tensor"):
        symconv.profile(model, (1, 1, 12))


@pytest.mark.parametrize("norm_first", [False, True])
def test_the_fused_transformer_layer_of_a_real_run_counts_its_products(norm_first):
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(16, 4, 40, batch_first=True, norm_first=norm_first)

        def forward(self, x):
            return self.layer(x) if x.sum() > 0 else x

    model = Gated().eval()
    fused, totals = counted(model, torch.ones(3, 5, 16))  # real values, no grad: torch's fused fast path
    assert fused.run == "real values" and "aten._transformer_encoder_layer_fwd" in [r.op for r in fused.counted]
    B, L, E, H, hidden = 3, 5, 16, 4, 40
    assert totals == add(*[matmul_totals(B * L, E, E, True)] * 3, matmul_totals(B * H * L, E // H, L, False),
                         matmul_totals(B * H * L, L, E // H, False), matmul_totals(B * L, E, E, True),
                         matmul_totals(B * L, E, hidden, True), matmul_totals(B * L, hidden, E, True))
    assert totals == counted(model.layer, (3, 5, 16))[1]  # the meta run takes the unfused path: the same products


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("batch_first", [True, False])
def test_recurrent_layers_of_a_real_run_count_their_products(kind, batch_first):
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = kind(8, 16, num_layers=2, bidirectional=True, batch_first=batch_first)

        def forward(self, x):
            return self.rnn(x)[0] if x.sum() > 0 else x

    model = Gated()
    shape = (2, 5, 8) if batch_first else (5, 2, 8)
    real, totals = counted(model, torch.ones(shape))  # on CPU values an LSTM runs as oneDNN's fused layers
    assert real.run == "real values" and not [op for op, _, _, arithmetic in real.not_counted()
                                              if arithmetic and "rnn" in op]
    gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[kind] * 16
    steps = 2 * 5  # both directions, every time step, batch 2: the rows of each product, input then hidden
    assert totals == add(*[matmul_totals(2, 8, gates, True), matmul_totals(2, 16, gates, True)] * steps,
                         *[matmul_totals(2, 32, gates, True), matmul_totals(2, 16, gates, True)] * steps)
    assert totals == counted(model.rnn, shape)[1]  # the meta run takes the unfused path: the same products



def _trilinear_run(args: tuple) -> tuple[int, int, tuple, set[str]]:
    """(products, products + additions, output shape, the operators run) of one _trilinear call as ATen runs it on CPU values, from
    the operators it runs inside (torch's profiler): a bmm of (b, m, k)·(b, k, n) makes b·m·n·k products and
    b·m·n·(k − 1) additions, a mul one product per output element, a sum its input's elements less its output's,
    add_ one addition per element, less one per element of the output (its first is into the zeros the output
    starts from)."""
    with torch.profiler.profile(record_shapes=True) as prof:
        out = torch.ops.aten._trilinear(*args)
    products, additions = 0, -out.numel()
    arithmetic = {"aten::bmm", "aten::mul", "aten::add_", "aten::sum", "aten::mm", "aten::add"}
    events = [e for e in prof.events() if e.name in arithmetic]
    assert events and {e.name for e in events} <= {"aten::bmm", "aten::mul", "aten::add_", "aten::sum"}
    for e in events:
        shapes = [tuple(s) for s in e.input_shapes[:2]]
        if e.name == "aten::bmm":
            (b, m, k), n = shapes[0], shapes[1][2]
            products, additions = products + b * m * n * k, additions + b * m * n * (k - 1)
        elif e.name == "aten::mul":
            products += math.prod(torch.broadcast_shapes(*shapes))
        elif e.name == "aten::sum":
            summed = math.prod(shapes[0][d] for d in e.concrete_inputs[1])
            additions += math.prod(shapes[0]) - math.prod(shapes[0]) // summed
        else:
            additions += math.prod(shapes[0])
    return products, products + additions, tuple(out.shape), {e.name for e in events}


def test_a_trilinear_product_sums_first_what_one_operand_alone_has():
    # dimensions (a, b, c, d) = (2, 3, 4, 5): (a, b)·(c, d)·(d), summed over b and d, unrolled over c; b is summed in
    # the first operand alone before its product with the second
    args = (torch.randn(2, 3), torch.randn(4, 5), torch.randn(5), [2, 3], [0, 1], [0, 1, 2], [1, 3], 2)
    (counted,) = trilinear(*(tuple(a.shape) if isinstance(a, torch.Tensor) else a for a in args),
                           context=Context(CONVENTIONS))
    products, operations, shape, ran = _trilinear_run(args)
    assert (counted.totals["macs"], counted.totals["exact"], counted.output_shape) == (products, operations, shape)
    assert "aten::sum" in ran


@pytest.mark.parametrize("features, batch, bias", [((5, 6, 7), (3,), True), ((1, 4, 2), (2, 3), False),
                                                   ((3, 1, 1), (1,), True)])
def test_bilinear_counts_its_trilinear_products_as_aten_runs_them(features, batch, bias):
    # the forward and each gradient (of both inputs and the weight) run _trilinear with their own dimensions
    from torch.utils._python_dispatch import TorchDispatchMode
    model = nn.Bilinear(*features, bias=bias)
    x1, x2 = torch.randn(*batch, features[0], requires_grad=True), torch.randn(*batch, features[1], requires_grad=True)
    calls = []

    class Calls(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._trilinear.default:
                calls.append(tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args))
            return func(*args, **(kwargs or {}))

    with Calls():
        model(x1, x2).sum().backward()
    assert len(calls) == 4
    profiled = symconv.profile(model, (x1, x2), "exact", all_conventions=True, backward=True)
    records = [r.counted for r in profiled.counted]
    # the bias, added apart, is the forward product's: one addition per output
    assert [r.what for r in records] == ["trilinear product" + " + bias" * bias] + ["trilinear product"] * 3
    for args, counted, added in zip(calls, records, [math.prod(batch) * features[2] * bias, 0, 0, 0]):
        products, operations, shape, _ = _trilinear_run(args)
        assert (counted.totals["macs"], counted.totals["exact"], counted.output_shape) == \
            (products, operations + added, shape)
        assert counted.totals["docs"] == operations + added
    assert not [op for op, *_ in profiled.not_counted() if op == "aten.add"]
    # in symbolic batch sizes too (torch's own symbolic kernel fails on them), against the concrete training step
    names = ("B", "T")[:len(batch)]
    symbolic = symconv.profile(model, [(*names, features[0]), (*names, features[1])], "exact", all_conventions=True,
                               backward=True)
    concrete = symconv.profile(model, [(*batch, features[0]), (*batch, features[1])], "exact", all_conventions=True,
                               backward=True)
    assert {c: symbolic.formula(c)(**dict(zip(names, batch))) for c in CONVENTIONS} == \
        {c: concrete.total(c) for c in CONVENTIONS}


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # torch switching oneDNN off
def test_onednn_lstm_training_step_counts_as_its_unfused_steps():
    # oneDNN's LSTM backward computes every gradient, the input's and the initial state's too; with oneDNN off,
    # torch's unfused path runs the same products step by step (the initial state and the input require grad)
    class Started(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(6, 5, 2, bidirectional=True)
            self.h0, self.c0 = nn.Parameter(torch.randn(4, 3, 5)), nn.Parameter(torch.randn(4, 3, 5))

        def forward(self, x):
            out = self.rnn(x, (self.h0, self.c0))[0]
            return out if x.sum() > 0 else -out  # data-dependent: the run is on real values

    x = torch.ones(4, 3, 6, requires_grad=True)
    fused = symconv.profile(Started(), x, "exact", all_conventions=True, backward=True)
    with torch.backends.mkldnn.flags(enabled=False):
        unfused = symconv.profile(Started(), x, "exact", all_conventions=True, backward=True)
    ops = [{r.op for r in p.counted if r.phase == "backward"} for p in (fused, unfused)]
    assert fused.run == unfused.run == "real values"
    assert ops == [{"aten.mkldnn_rnn_layer_backward"}, {"aten.mm"}]
    assert {c: fused.total(c, "backward") for c in CONVENTIONS} == {c: unfused.total(c, "backward") for c in CONVENTIONS}
    assert not [op for op, *_ in fused.not_counted() if "rnn" in op]


def test_packed_sequences_count_each_step_at_its_batch():
    # A packed batch runs step t on the b_t sequences still going: every product's rows sum to the tokens, and
    # a step's hidden-state gradient is needed at every step but each direction's first (its state is zeros)
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    features, hidden, lengths = 4, 6, (7, 3, 5)

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(features, hidden, 2, bidirectional=True, batch_first=True)
            self.out = nn.Linear(2 * hidden, 2)

        def forward(self, x, n):
            y = self.rnn(pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False))[0]
            return self.out(pad_packed_sequence(y, batch_first=True)[0])

    x, n = torch.randn(len(lengths), max(lengths), features), torch.tensor(lengths)
    result, totals = counted(Packed(), (x, n), backward=True)
    assert result.run == "real values"  # packing reads the lengths
    tokens, gates = sum(lengths), 4 * hidden
    batches = [sum(L > t for L in lengths) for t in range(max(lengths))]  # 3, 3, 3, 2, 2, 1, 1
    forward = add(*[matmul_totals(tokens, width, gates, True) for width in (features, hidden, 2 * hidden, hidden)
                    for _ in range(2)], matmul_totals(len(lengths) * max(lengths), 2 * hidden, 2, True))
    assert {c: result.total(c, "forward") for c in CONVENTIONS} == forward
    first = {"forward": batches[0], "reverse": batches[-1]}  # the batch of each direction's first step
    hidden_states = sum((tokens - b) * hidden * gates for b in first.values())  # per layer
    weights = 2 * tokens * gates * (features + hidden + 2 * hidden + hidden)  # W_ih and W_hh, both layers, both ways
    inputs = 2 * tokens * 2 * hidden * gates  # the second layer's input (the first's output); x needs none
    linear = 2 * len(lengths) * max(lengths) * 2 * hidden * 2  # its weight's and its input's gradients
    assert result.total("macs", "backward") == weights + inputs + 2 * hidden_states + linear
    assert result.total("macs") == totals["macs"] == forward["macs"] + weights + inputs + 2 * hidden_states + linear


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_nested_tensors_count_each_sequence_at_its_own_length():
    lengths, E, H, hidden = (3, 4, 5), 16, 4, 40

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, hidden, batch_first=True), 1)

        def forward(self, x):
            padding = torch.arange(x.shape[1]) >= torch.tensor(lengths)[:, None]
            return self.encoder(x, src_key_padding_mask=padding) if x.sum() > 0 else x

    def one_sequence(L: int) -> dict[str, int]:
        return add(*[matmul_totals(L, E, E, True)] * 3, matmul_totals(H * L, E // H, L, False),
                   matmul_totals(H * L, L, E // H, False), matmul_totals(L, E, E, True),
                   matmul_totals(L, E, hidden, True), matmul_totals(L, hidden, E, True))

    # real values, no grad: torch's fused layer on the sequences without their padding, as a nested tensor
    result, totals = counted(Masked().eval(), torch.ones(len(lengths), 5, E))
    assert totals == add(*(one_sequence(L) for L in lengths))
    assert "nested" in result.counted[0].counted.note
    mlp = nn.Sequential(nn.Linear(E, 8), nn.ReLU(), nn.Linear(8, 2))
    for layout in (torch.strided, torch.jagged):
        x = torch.nested.nested_tensor([torch.ones(L, E) for L in lengths], layout=layout)
        result, totals = counted(mlp, x)
        assert result.run == "real values" and result.input_shapes == (tuple((L, E) for L in lengths),)
        assert totals == add(*(add(matmul_totals(L, E, 8, True), matmul_totals(L, 8, 2, True)) for L in lengths))


def snapshot(model: nn.Module) -> dict:
    return {
        "tensors": {name: (t, t.device, t.detach().clone() if not isinstance(t, nn.parameter.UninitializedParameter)
                           else None) for name, t in [*model.named_parameters(), *model.named_buffers()]},
        "classes": {name: type(m) for name, m in model.named_modules()},
        "training": {name: m.training for name, m in model.named_modules()},
        "forward": {name: m.__dict__.get("forward") for name, m in model.named_modules()},
        "hooks": {name: [dict(getattr(m, h)) for h in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")]
                  for name, m in model.named_modules()},
        "grads": {name: p.grad for name, p in model.named_parameters()},
    }


def assert_untouched(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["classes"] == before["classes"] and after["training"] == before["training"]
    assert after["forward"] == before["forward"] and after["hooks"] == before["hooks"]
    assert after["grads"] == before["grads"]
    for name, (t, device, values) in before["tensors"].items():
        now, now_device, _ = after["tensors"][name]
        assert now is t and now_device == device, name
        if values is not None:
            assert torch.equal(now.detach(), values), name


def global_state() -> tuple:
    from torch.nn.modules import module
    return (len(module._global_forward_hooks), len(module._global_forward_pre_hooks),
            len(module._global_backward_hooks), torch.get_rng_state().clone(), torch.is_grad_enabled(),
            torch.nn.functional.conv2d, torch.nn.Conv2d.forward, torch.Tensor.__add__)


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        self.bn(self.conv(x))
        raise ValueError("the user's forward fails")


FAILING = [
    ("lazy then wrong channels", lambda: nn.Sequential(nn.LazyConv2d(4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5),
                                                      nn.Conv2d(5, 2, 1)).train(),
     "has 4 channels but in_channels=5|Invalid channel dimensions"),  # symconv's meta check, torch's fake one
    ("batch norm with the wrong channel count", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(5)).train(),
     "running_mean"),
    ("a forward that raises", lambda: Boom().train(), "the user's forward fails"),
]


@pytest.mark.parametrize("name, build, message", FAILING, ids=[f[0] for f in FAILING])
@pytest.mark.parametrize("inputs", ["shape", "tensor", "symbolic"])
@pytest.mark.parametrize("backward", [False, True])
def test_a_model_failing_midway_is_left_untouched(name, build, message, inputs, backward):
    model = build()
    model.register_forward_hook(lambda m, i, o: None)
    x = torch.randn(2, 3, 8, 8, requires_grad=backward)
    before, state = snapshot(model), global_state()
    with pytest.raises(symconv.SymconvError, match=message):
        symconv.profile(model, {"shape": (2, 3, 8, 8), "tensor": x, "symbolic": (2, 3, "H", "W")}[inputs],
                        backward=backward)
    assert_untouched(model, before)
    now = global_state()
    assert now[:3] == state[:3] and torch.equal(now[3], state[3]) and now[4:] == state[4:]
    assert x.grad is None


def test_a_successful_profile_leaves_everything_as_it_was():
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.ReLU(),
                          nn.utils.parametrizations.spectral_norm(nn.Conv2d(4, 4, 3))).train()
    x = torch.randn(2, 3, 9, 9, requires_grad=True)
    before, state = snapshot(model), global_state()
    result = symconv.profile(model, x, backward=True)
    assert result.total("docs", phase="backward") > 0
    assert_untouched(model, before)
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)  # still lazy
    assert model[1].num_batches_tracked.item() == 0  # no statistics updated
    now = global_state()
    assert now[:3] == state[:3] and torch.equal(now[3], state[3]) and now[4:] == state[4:]
    assert x.grad is None


class Locked(nn.Module):
    """A module holding an object no copy can be made of (a lock) beside its layers, and a settings object whose part
    holds one too, that part also held directly (so the copy of the settings fails halfway through that part)."""

    def __init__(self):
        super().__init__()
        self.conv, self.lock = nn.Conv2d(3, 4, 3), threading.Lock()
        self.settings = Holder(Holder({"scale": 2.0, "lock": threading.Lock()}))
        self.part = self.settings.value

    def forward(self, x):
        with self.lock:
            return self.conv(x) * self.part.value["scale"]


def test_a_model_holding_an_object_that_cannot_be_copied_is_counted_and_left_untouched():
    # the part that cannot be copied is shared with the copy: it was given deepcopy's half-made copy of the part,
    # without its attributes, which failed the forward
    model = Locked()
    lock, part, before = model.lock, model.part, snapshot(model)
    expected = layer_totals(symconv.layer_from_module(model.conv), (2, 3, 8, 8))
    assert counted(model, (2, 3, 8, 8))[1] == counted(model, torch.randn(2, 3, 8, 8))[1] == expected
    assert model.lock is lock and not lock.locked() and model.part is part is model.settings.value
    assert part.value["scale"] == 2.0 and not part.value["lock"].locked()
    assert_untouched(model, before)


class Attached(nn.Module):
    """What models keep beside their registered layers (``registered``: as registered layers and buffers instead):
    tensors in a list, a dict and a plain object (a detection head's grids, normalisation constants), a layer in a
    plain list, a function closing over the model that reads its parameter, a forward hook closing over the model
    that keeps each output in the model's own list, and one that keeps its inputs in the caller's ``inputs``; with
    ``branch``, a branch on the values (run on them)."""

    def __init__(self, registered: bool = False, branch: bool = False, inputs: dict | None = None):
        super().__init__()
        self.conv, self.scale, self.branch = nn.Conv2d(3, 4, 3), nn.Parameter(torch.full((1,), 2.0)), branch
        if registered:
            self.register_buffer("grid", torch.ones(4, 1, 1))
            self.register_buffer("offset", torch.ones(4, 1, 1))
            self.register_buffer("mean", torch.zeros(3, 1, 1))
            self.head = nn.Conv2d(4, 2, 1)
            return
        self.grids, self.offsets = [torch.ones(4, 1, 1), torch.zeros(4, 1, 1)], {"x": torch.ones(4, 1, 1)}
        self.normalization = types.SimpleNamespace(mean=torch.zeros(3, 1, 1))
        self.heads = [nn.Conv2d(4, 2, 1)]
        self.scaled = lambda y: y * self.scale
        self.features = []
        self.conv.register_forward_hook(lambda module, inputs, output: self.features.append(output))
        self.heads[0].register_forward_pre_hook(lambda module, args: inputs.update(head=args[0]))

    def forward(self, x):
        x = -x if self.branch and x.sum() > 0 else x
        if hasattr(self, "head"):
            return self.head(self.conv(x - self.mean) * self.scale * self.grid + self.offset)
        return self.heads[0](self.scaled(self.conv(x - self.normalization.mean)) * self.grids[0] + self.offsets["x"])


def test_what_a_model_keeps_beside_its_layers_is_copied_for_the_run():
    # tensors in a list or a dict, and the plain list's layer, were copied with their values: on meta inputs they met
    # the meta stand-ins ("needs real values"); the function and the hook closing over the model ran the user's own
    # model: a training step on values wrote its parameter's .grad, and every run added to its list of outputs
    convolutions = add(layer_totals(Layer.make("Conv2d", 3, 4, 3), (2, 3, 8, 8)),
                       layer_totals(Layer.make("Conv2d", 4, 2, 1), (2, 4, 6, 6)))
    for backward, branch in itertools.product((False, True), (False, True)):
        inputs, run = (torch.randn(2, 3, 8, 8), "real values") if branch else ((2, 3, 8, 8), "meta")
        expected = counted(Attached(registered=True, branch=branch), inputs, backward=backward)[1]
        model = Attached(branch=branch, inputs=(kept := {}))
        before, features, grids = snapshot(model), model.features, list(model.grids)
        result, totals = counted(model, inputs, backward=backward)
        assert result.run == run and totals == expected
        forward = [r for r in result.counted if r.op == "aten.convolution" and r.phase == "forward"]
        assert {c: sum(r.counted.totals[c] for r in forward) for c in CONVENTIONS} == convolutions
        assert_untouched(model, before)
        assert model.features is features == [] and model.scale.grad is None and kept == {}
        assert all(now is then for now, then in zip(model.grids, grids)) and not model.heads[0].weight.is_meta
        assert model.heads[0].weight.grad is None and model.scaled(torch.ones(1)).item() == 2.0


class Referring(nn.Module):
    """A layer referring weakly to its parent (so as not to make a cycle), and, from a list, to a layer outside the
    model; each call counted on both. With ``registered``, the outside layer is a registered one instead."""

    def __init__(self, parent: nn.Module, outside: nn.Module, registered: bool = False):
        super().__init__()
        self.conv, self.parent = nn.Conv2d(3, 4, 3), weakref.ref(parent)
        if registered:
            self.outside = outside
        else:
            self.others = [weakref.ref(outside)]

    def forward(self, x):
        parent, outside = self.parent(), self.outside if hasattr(self, "outside") else self.others[0]()
        parent.calls += 1
        outside.calls = getattr(outside, "calls", 0) + 1
        return outside(self.conv(x) * parent.scale)


class Parent(nn.Module):
    def __init__(self, outside: nn.Module, registered: bool = False):
        super().__init__()
        self.scale, self.calls = nn.Parameter(torch.full((1,), 2.0)), 0
        self.child = Referring(self, outside, registered)

    def forward(self, x):
        return self.child(x)


def test_weak_references_in_the_model_refer_to_the_copy():
    # they referred to the user's objects: the user's parent and outside layer ran on the meta stand-ins ("needs real
    # values"), and their call counts changed
    for backward, inputs in itertools.product((False, True), ((2, 3, 8, 8), torch.randn(2, 3, 8, 8))):
        outside = nn.Conv2d(4, 2, 1)
        model = Parent(outside)
        before = snapshot(model)
        result, totals = counted(model, inputs, backward=backward)
        assert result.run == "meta" and totals == counted(Parent(nn.Conv2d(4, 2, 1), True), inputs, backward=backward)[1]
        assert {c: sum(r.counted.totals[c] for r in result.counted if r.phase == "forward") for c in CONVENTIONS} == \
            add(layer_totals(Layer.make("Conv2d", 3, 4, 3), (2, 3, 8, 8)),
                layer_totals(Layer.make("Conv2d", 4, 2, 1), (2, 4, 6, 6)))
        assert_untouched(model, before)
        assert model.calls == 0 and not hasattr(outside, "calls") and model.child.others[0]() is outside
        assert outside.weight.grad is None and not outside.weight.is_meta


def wrapped_forward(module: nn.Module) -> nn.Module:
    """A module whose forward is replaced, as accelerate's hooks replace it: a partial of a closure over the module's
    own bound forward, counting its calls on the module."""
    old_forward = module.forward

    def new_forward(owner, *args, **kwargs):
        owner.calls = getattr(owner, "calls", 0) + 1
        return old_forward(*args, **kwargs) * 2

    module.forward = functools.update_wrapper(functools.partial(new_forward, module), old_forward)
    return module


def test_a_forward_replaced_by_a_closure_runs_in_the_copy():
    # the closure's bound forward was the user's module's: a training step ran the user's own convolution, on its
    # weights, and wrote their .grad
    conv = Layer.make("Conv2d", 3, 4, 3)
    grads = {c: simulate_gradients(conv, (2, 3, 8, 8), c) for c in CONVENTIONS}
    expected = add(layer_totals(conv, (2, 3, 8, 8)), {c: grads[c]["grad_weight"] + grads[c]["grad_bias"]
                                                      for c in CONVENTIONS})
    for inputs in ((2, 3, 8, 8), torch.randn(2, 3, 8, 8)):
        model = nn.Sequential(wrapped_forward(nn.Conv2d(3, 4, 3)), nn.ReLU())
        before = snapshot(model)
        result, totals = counted(model, inputs, backward=True)
        assert result.run == "meta" and totals == expected
        assert [r.stack for r in result.counted if r.phase == "forward"] == [("", "0")]
        assert_untouched(model, before)
        assert model[0].weight.grad is None and not hasattr(model[0], "calls")


class Probed(nn.Module):
    """A layer whose own forward hook runs a product on its output (a probe), and a layer made during forward."""

    def __init__(self):
        super().__init__()
        self.conv, self.probe = nn.Conv2d(3, 4, 3), nn.Parameter(torch.ones(4, 2))
        self.conv.register_forward_hook(self.probed)

    def probed(self, module, inputs, output):
        self.last = output.flatten(2).transpose(1, 2) @ self.probe  # returns None: the output stays the conv's

    def forward(self, x):
        return nn.Linear(4, 2)(self.conv(x).mean((2, 3)))


def test_a_layers_own_hooks_run_within_it_and_a_layer_made_during_forward_within_its_caller():
    # the hook's product (36 positions of each of 2 images, 4 channels, 2 probes) is the layer's; the layer made
    # during forward is no part of the model: its product is its caller's (the model's)
    model = Probed()
    for inputs in ((2, 3, 8, 8), torch.randn(2, 3, 8, 8)):
        result = symconv.profile(model, inputs, "exact", all_conventions=True)
        products = {r.stack: {c: r.counted.totals[c] for c in CONVENTIONS} for r in result.counted
                    if r.counted.layer is None}
        assert products == {("", "conv"): matmul_totals(72, 4, 2, False), ("",): matmul_totals(2, 4, 2, True)}
        assert not hasattr(model, "last")


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    features: torch.Tensor


class Fields(dict):
    """An output record as a subclass of dict, which pytree keeps whole as it does a dataclass."""


class Recorded(nn.Module):
    """A model whose forward returns its tensors in a dataclass, a subclass of dict, or a tuple."""

    def __init__(self, record: str = "dataclass"):
        super().__init__()
        self.conv, self.fc, self.record = nn.Conv2d(3, 4, 3), nn.Linear(4, 2), record

    def forward(self, x):
        features = self.conv(x)
        logits = self.fc(features.mean((2, 3)))
        if self.record == "dataclass":
            return Output(logits, features)
        return Fields(logits=logits, features=features) if self.record == "dict" else (logits, features)


@pytest.mark.parametrize("record", ["dataclass", "dict"])
def test_a_training_step_reaches_the_tensors_of_an_output_record(record):
    # pytree keeps these whole: their tensors were not found, and backward=True said no output requires grad
    conv = Layer.make("Conv2d", 3, 4, 3)
    grads = {c: simulate_gradients(conv, (2, 3, 8, 8), c) for c in CONVENTIONS}
    result, totals = counted(Recorded(record), (2, 3, 8, 8), backward=True)
    steps = [r for r in result.counted if r.phase == "backward" and r.stack[-1:] == ("conv",)]
    assert {c: sum(r.counted.totals[c] for r in steps) for c in CONVENTIONS} == \
        {c: grads[c]["grad_weight"] + grads[c]["grad_bias"] for c in CONVENTIONS}
    assert totals == counted(Recorded("tuple"), (2, 3, 8, 8), backward=True)[1]
    formula = symconv.profile(Recorded(record), (2, 3, "H", 8), "exact", backward=True).formula()
    assert formula(H=8) == totals["exact"]


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_a_training_step_is_counted_under_the_callers_no_grad_or_inference_mode(context):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3)).train()
    result, expected = counted(model, (2, 3, 8, 8), backward=True)
    assert result.total("exact", phase="backward") > 0
    with context():
        for inputs in ((2, 3, 8, 8), torch.randn(2, 3, 8, 8)):
            assert counted(model, inputs, backward=True)[1] == expected
        assert torch.is_inference_mode_enabled() == (context is torch.inference_mode)  # the caller's mode stays


class CompiledFunction(nn.Module):
    """A convolution run by a compiled function, without a bias."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.block = torch.compile(lambda x, w: F.relu(F.conv2d(x, w, padding=1)))

    def forward(self, x):
        return self.block(x, self.weight)


def test_compiled_code_is_counted_as_the_code_it_compiles_and_the_compiler_does_not_run():
    from torch._dynamo.utils import counters

    def build() -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).train()

    whole, inner, in_place = torch.compile(build()), build(), build()
    inner[0] = torch.compile(inner[0])
    in_place.compile()  # a compiled call bound to the module itself
    functional = CompiledFunction()
    expected = layer_totals(symconv.layer_from_module(build()[0]), (2, 3, 8, 8))
    unbiased = layer_totals(Layer.make("Conv2d", 3, 4, 3, padding=1, bias=False), (2, 3, 8, 8))
    counters.clear()
    for model, totals_expected, names, kind in ((whole, expected, ["0"], "Sequential"),
                                                (inner, expected, ["0"], "Sequential"),
                                                (in_place, expected, ["0"], "Sequential"),
                                                (functional, unbiased, [""], "CompiledFunction")):
        for inputs in ((2, 3, 8, 8), torch.randn(2, 3, 8, 8)):
            before = snapshot(model)
            result, totals = counted(model, inputs)
            assert totals == totals_expected and result.run == "meta"
            assert [r.module for r in result.counted] == names and result.model_type == kind
            assert_untouched(model, before)  # batch norm statistics included
    assert sum(counters["stats"].values()) == 0  # dynamo captured nothing


def test_fx_graph_modules_and_exported_programs_are_counted_as_the_code_they_hold():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(8, 4, 3, stride=2),
                          nn.Flatten(), nn.Linear(4 * 17 * 17, 5))
    x = torch.randn(2, 3, 8, 8)
    expected = add(layer_totals(Layer.make("Conv2d", 3, 8, 3, padding=1), (2, 3, 8, 8)),
                   layer_totals(Layer.make("ConvTranspose2d", 8, 4, 3, stride=2), (2, 8, 8, 8)),
                   matmul_totals(2, 4 * 17 * 17, 5, True))
    traced, program = torch.fx.symbolic_trace(model), torch.export.export(model, (x,))
    before = snapshot(traced)
    for subject in (traced, program, program.module()):
        assert counted(subject, (2, 3, 8, 8))[1] == counted(subject, x)[1] == expected
    assert counted(traced, (2, 3, 8, 8), backward=True)[1] == counted(model, (2, 3, 8, 8), backward=True)[1]
    assert_untouched(traced, before)
    assert torch.equal(traced(x), model(x))  # its own class and forward still run


def test_a_script_module_is_refused():
    scripted = torch.jit.script(nn.Conv2d(1, 1, 3))
    with pytest.raises(symconv.SymconvError, match="TorchScript"):
        symconv.profile(scripted, (1, 1, 5, 5))


class ScriptedInside(nn.Module):
    """A scripted convolution inside an eager model; with ``branch``, a branch on the values (run on them)."""

    def __init__(self, scripted: bool = True, branch: bool = False):
        super().__init__()
        conv = nn.Conv2d(3, 4, 3)
        self.conv, self.fc, self.branch = torch.jit.script(conv) if scripted else conv, nn.Linear(4, 2), branch

    def forward(self, x):
        y = self.conv(x)
        if self.branch and y.sum() > 0:
            y = -y
        return self.fc(y.mean((2, 3)))


def test_a_scripted_submodule_is_counted_in_a_training_step_without_touching_its_gradients():
    # a script module copies its parameters as clones of the user's: a training step on meta inputs made their
    # gradients on meta for CPU tensors (refused, "needs real values"), and on real values it wrote the user's
    # own .grad through the clones
    conv = Layer.make("Conv2d", 3, 4, 3)
    grads = {c: simulate_gradients(conv, (2, 3, 8, 8), c) for c in CONVENTIONS}
    # the input requires no grad: the convolution's forward, its weight's and its bias's gradients
    expected = add(layer_totals(conv, (2, 3, 8, 8)), {c: grads[c]["grad_weight"] + grads[c]["grad_bias"]
                                                      for c in CONVENTIONS})
    eager = counted(ScriptedInside(scripted=False), (2, 3, 8, 8), backward=True)[1]
    for model, inputs in ((ScriptedInside(), (2, 3, 8, 8)), (ScriptedInside(branch=True), torch.randn(2, 3, 8, 8))):
        before = snapshot(model)
        result, totals = counted(model, inputs, backward=True)
        assert result.run == ("real values" if model.branch else "meta")
        convolutions = [r for r in result.counted if r.stack[-1:] == ("conv",)]
        assert {c: sum(r.counted.totals[c] for r in convolutions) for c in CONVENTIONS} == expected
        assert totals == eager  # as the same model unscripted
        assert_untouched(model, before)
        assert all(p.grad is None for p in model.parameters())


class CopiesItself(nn.Module):
    """A learning batch norm into a convolution, in a class that says how it copies itself: as a new instance
    loaded with its state (``"anew"``), its batch norm's statistics views of the user's (``"views"``), its state
    deep-copied (``"state"``; ``"locked"``, where its state holds a lock, so its copy fails), or as itself
    (``"itself"``, a class holding a handle); with ``branch``, a branch on the values (run on them)."""

    def __init__(self, how: str = "anew", branch: bool = False):
        super().__init__()
        self.bn, self.conv, self.how, self.branch = nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3), how, branch
        if how == "locked":
            self.lock = threading.Lock()

    def forward(self, x):
        x = self.bn(x)
        if self.branch and x.sum() > 0:
            x = -x
        return self.conv(x)

    def __deepcopy__(self, memo):
        if self.how == "itself":
            return self
        if self.how in ("state", "locked"):  # its state deep-copied through the memo, as observed graph modules do
            twin = CopiesItself.__new__(CopiesItself)
            twin.__dict__.update(copy.deepcopy(self.__dict__, memo))
            return twin
        twin = CopiesItself(self.how, self.branch)
        if self.how == "views":  # new tensors over the user's data
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(twin.bn, name, getattr(self.bn, name).data)
            return twin
        twin.load_state_dict(self.state_dict())
        return twin


class TiedAround(nn.Module):
    """A convolution outside ``inner`` whose weight is tied to the one inside it."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.head = inner, nn.Conv2d(3, 4, 3)
        self.head.weight = inner.conv.weight

    def forward(self, x):
        return self.inner(x) + self.head(x)


@pytest.mark.parametrize("how", ["anew", "views", "itself", "locked"])
def test_a_module_that_copies_itself_is_counted_without_touching_the_model(how):
    # its copy held the user's tensors (itself) or real ones (anew): a training step on meta inputs failed ("needs
    # real values"), and a run on real values updated the user's batch-norm statistics and wrote its .grad; a class
    # whose own copy fails (locked) could not be profiled at all ("cannot copy the model")
    conv = Layer.make("Conv2d", 3, 4, 3)
    grads = {c: simulate_gradients(conv, (2, 3, 8, 8), c) for c in CONVENTIONS}
    expected = add(layer_totals(conv, (2, 3, 8, 8)), {c: grads[c]["grad_input"] + grads[c]["grad_weight"] +
                                                      grads[c]["grad_bias"] for c in CONVENTIONS})
    plain = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3))
    for branch, inputs in ((True, torch.randn(2, 3, 8, 8)), (False, (2, 3, 8, 8))):
        model = CopiesItself(how, branch)
        before = snapshot(model)
        result, totals = counted(model, inputs, backward=True)
        assert result.run == ("real values" if branch else "meta")
        convolutions = [r for r in result.counted if r.stack[-1:] == ("conv",)]
        assert {c: sum(r.counted.totals[c] for r in convolutions) for c in CONVENTIONS} == expected
        assert totals == counted(plain, (2, 3, 8, 8), backward=True)[1]
        assert_untouched(model, before)
        assert all(p.grad is None for p in model.parameters()) and int(model.bn.num_batches_tracked) == 0


def test_a_weight_tied_into_a_module_that_copies_itself_stays_tied():
    # the class's copy made the tied weight's copy through the memo: the convolution outside met that real
    # tensor on meta inputs, or, untied, the weight's two gradients were no longer summed (one add fewer)
    inner = CopiesItself("state")
    inner.conv = nn.Conv2d(3, 4, 3)  # as plain's, so that both models' convolutions are alike
    plain = TiedAround(nn.Sequential(OrderedDict(bn=nn.BatchNorm2d(3), conv=nn.Conv2d(3, 4, 3))))
    model = TiedAround(inner)
    before = snapshot(model)
    result, totals = counted(model, (2, 3, 8, 8), backward=True)
    reference, expected = counted(plain, (2, 3, 8, 8), backward=True)
    assert result.run == "meta" and totals == expected
    assert [(op, n) for op, n, _, _ in result.not_counted()] == [(op, n) for op, n, _, _ in reference.not_counted()]
    assert any(op == "aten.add" and n >= 2 for op, n, _, _ in result.not_counted())
    assert_untouched(model, before)


class Holder:
    """A plain object holding a value in an attribute."""

    def __init__(self, value):
        self.value = value


class SlotHolder:
    """A plain object holding a value in a private slot (no ``__dict__``; the slot's name is mangled)."""

    __slots__ = ("__value",)

    def __init__(self, value):
        self.__value = value

    @property
    def value(self):
        return self.__value


class ComputedScale(nn.Module):
    """A tensor attribute computed from a parameter (with autograd history), held as it is, in a list or in a plain
    object's attribute or slot, and a branch on the values; ``weight_norm``: the convolution's weight is one too (the
    deprecated ``weight_norm``, as vocoders use it)."""

    def __init__(self, held: str = "attribute", branch: bool = True):
        super().__init__()
        self.conv = nn.utils.weight_norm(nn.Conv2d(3, 4, 3)) if held == "weight_norm" else nn.Conv2d(3, 4, 3)
        self.scale, self.branch = self.conv.bias.sum() * 0 + 2, branch
        if held == "list":
            self.scale = [self.scale]
        elif held in ("object", "slots"):
            self.scale = (Holder if held == "object" else SlotHolder)({"scale": self.scale, "note": "doubled"})

    def factor(self):
        scale = self.scale
        if isinstance(scale, (Holder, SlotHolder)):
            return scale.value["scale"]
        return scale[0] if isinstance(scale, list) else scale

    def forward(self, x):
        y = self.conv(x) * self.factor()
        return -y if self.branch and y.sum() > 0 else y


@pytest.mark.parametrize("held", ["attribute", "list", "object", "slots", "weight_norm"])
def test_a_tensor_attribute_made_by_autograd_is_copied_for_a_run(held):
    # torch deep-copies only tensors without autograd history: the copy of the model failed, for a run on the user's
    # tensor, and on meta too where the tensor is in a list
    model = ComputedScale(held)
    before, scale = snapshot(model), model.scale
    conv = Layer.make("Conv2d", 3, 4, 3)
    grads = {c: simulate_gradients(conv, (2, 3, 8, 8), c) for c in CONVENTIONS}
    step = add(layer_totals(conv, (2, 3, 8, 8)), {c: grads[c]["grad_weight"] + grads[c]["grad_bias"]
                                                  for c in CONVENTIONS})
    for backward, expected in ((False, layer_totals(conv, (2, 3, 8, 8))), (True, step)):
        result, totals = counted(model, torch.randn(2, 3, 8, 8), backward=backward)
        assert result.run == "real values" and totals == expected
    assert_untouched(model, before)
    assert counted(ComputedScale(held, branch=False), (2, 3, 8, 8), backward=True)[1] == step  # on meta
    assert model.scale is scale and model.factor().grad_fn is not None


def test_a_bug_in_symconv_is_not_blamed_on_the_model(monkeypatch):
    from symconv.tracing import ops

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(ops, "count_layers", broken)  # what the convolution rule calls
    with pytest.raises(KeyError, match="a bug"):
        symconv.profile(nn.Conv2d(1, 1, 3), (1, 1, 5, 5))


# --- backward -----------------------------------------------------------------------------------------------------

def _ones_gradients(pt: grid.Point) -> tuple[int, int, int, int]:
    """(Σ grad_input, nonzeros, Σ grad_weight, nonzeros) of one channel on ones: the triples, Z_in and Z_tap."""
    fn = {(1, False): F.conv1d, (2, False): F.conv2d, (3, False): F.conv3d, (1, True): F.conv_transpose1d,
          (2, True): F.conv_transpose2d, (3, True): F.conv_transpose3d}[(pt.ndim, pt.transposed)]
    x = torch.ones((1, 1, *pt.L), dtype=torch.float64, requires_grad=True)
    w = torch.ones((1, 1, *pt.k), dtype=torch.float64, requires_grad=True)
    extra = {"output_padding": pt.op} if pt.transposed else {}
    y = fn(x, w, stride=pt.s, padding=pt.p, dilation=pt.d, **extra)
    y.backward(torch.ones_like(y))
    return (int(x.grad.sum()), int(torch.count_nonzero(x.grad)), int(w.grad.sum()), int(torch.count_nonzero(w.grad)))


@pytest.mark.parametrize("transposed", [True, False])
def test_gradient_counts_against_torch_ones_gradients(transposed):
    points = grid.grid_1d(transposed) + grid.samples_nd(transposed, 2, 150, seed=5) + \
        grid.samples_nd(transposed, 3, 50, seed=5)
    for pt in points:
        layer = Layer(("ConvTranspose" if transposed else "Conv") + f"{pt.ndim}d", 1, 1, pt.k, pt.s, pt.p, pt.d,
                      pt.op, 1, True)
        shape = (1, 1, *pt.L)
        counts = symconv.count_gradients(layer, shape, "exact")
        T, Z_in, T_w, Z_tap = _ones_gradients(pt)
        assert T == T_w
        out = math.prod(layer.output_size(pt.L))
        # one channel, one sample: every reached gradient element sums its products
        assert (counts["grad_input"], counts["grad_weight"], counts["grad_bias"]) == \
            (2 * T - Z_in, 2 * T - Z_tap, out - 1), pt.describe()
    assert len(points) > 2500


@pytest.mark.parametrize("seed", range(6))
def test_gradient_counts_against_a_triple_by_triple_count(seed):
    rng = random.Random(seed)
    ndim = rng.randint(1, 3)
    transposed = rng.random() < 0.5
    for _ in range(100):
        g = rng.choice([1, 2, 3])
        k = tuple(rng.randint(1, 4) for _ in range(ndim))
        s = tuple(rng.randint(1, 3) for _ in range(ndim))
        d = tuple(rng.randint(1, 2) for _ in range(ndim))
        p = tuple(rng.randint(0, di * (ki - 1) + 1) for ki, di in zip(k, d))
        op = tuple(rng.randint(0, max(si, di) - 1) for si, di in zip(s, d)) if transposed else (0,) * ndim
        try:
            layer = Layer(("ConvTranspose" if transposed else "Conv") + f"{ndim}d", g * rng.randint(1, 2),
                          g * rng.randint(1, 2), k, s, p, d, op, g, rng.random() < 0.5)
            shape = (rng.randint(1, 2), layer.in_channels, *(rng.randint(1, 5) for _ in range(ndim)))
            layer.check_input(shape)
            break
        except symconv.SymconvError:
            continue
    else:
        pytest.fail("no valid layer drawn")
    for convention in CONVENTIONS:
        assert symconv.count_gradients(layer, shape, convention) == simulate_gradients(layer, shape, convention)


def test_a_training_step_counts_every_gradient_it_runs():
    model = examples.dcgan_generator(nz=8, ngf=2, nc=3)
    model[0].weight.requires_grad_(False)  # a frozen layer: no grad_weight
    x = torch.randn(2, 8, 1, 1, requires_grad=True)
    result, totals = counted(model, x, backward=True)
    expected = {c: 0 for c in CONVENTIONS}
    shape = (2, 8, 1, 1)
    with torch.no_grad():
        y = x.detach()
        for module in model:
            if isinstance(module, nn.ConvTranspose2d):
                layer = symconv.layer_from_module(module)
                grads = {c: simulate_gradients(layer, tuple(y.shape), c) for c in CONVENTIONS}
                forward = layer_totals(layer, tuple(y.shape))
                for c in CONVENTIONS:
                    expected[c] += forward[c] + grads[c]["grad_input"]  # every input requires grad here
                    expected[c] += grads[c]["grad_weight"] if module.weight.requires_grad else 0
            y = module(y)
    assert totals == expected
    phases = {r.phase for r in result.counted}
    assert phases == {"forward", "backward"}
    backward = [r for r in result.counted if r.phase == "backward"]
    assert {r.counted.what for r in backward} == {"grad_input", "grad_weight"}  # DCGAN has no bias
    assert all(r.module for r in backward)  # attributed to the layers
    assert shape == tuple(x.shape)


class Checkpointed(nn.Module):
    """Two convolutions under activation checkpointing, run again in the backward pass: the first alone (torch
    stops recomputing once it has what it needs), or both, and their gradients in a backward pass of their own
    (reentrant)."""

    def __init__(self, reentrant: bool = False):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 3, bias=False)
        self.reentrant = reentrant

    def forward(self, x):
        return torch.utils.checkpoint.checkpoint(lambda y: self.b(F.relu(self.a(y))), x,
                                                 use_reentrant=self.reentrant)


BACKWARD_MODELS = {
    "the last module makes the output": lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)),
    "residual blocks with a downsampling shortcut": lambda: nn.Sequential(examples.Bottleneck(3, 2, 2),
                                                                           examples.Bottleneck(8, 2, 1)),
    "activation checkpointing": Checkpointed,
    "reentrant activation checkpointing": lambda: Checkpointed(reentrant=True),
}


@pytest.mark.parametrize("name", BACKWARD_MODELS)
def test_the_backward_pass_is_attributed_to_the_modules_it_differentiates(name):
    model = BACKWARD_MODELS[name]().train()
    modules = dict(model.named_modules())
    result = symconv.profile(model, torch.randn(2, 3, 9, 9, requires_grad=True), "exact", backward=True)
    convolutions = [r for r in result.counted if r.counted.layer is not None]
    for r in result.records:  # the model, then each module within its parent
        assert r.stack[0] == "" and all(inner.startswith(outer + ".") or not outer
                                        for outer, inner in zip(r.stack[1:], r.stack[2:])), r.stack
    for r in convolutions:  # counted where the layer it counts is, its bias included
        assert symconv.layer_from_module(modules[r.module]) == r.counted.layer, (r.counted.what, r.stack)
    layers = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    assert sorted(r.module for r in convolutions if r.counted.what == "grad_weight") == sorted(layers)
    recomputed = [r.module for r in convolutions if r.phase == "backward" and r.counted.what == "Conv2d"]
    assert recomputed == {"activation checkpointing": ["a"], "reentrant activation checkpointing": ["a", "b"]}.get(
        name, [])
    # every convolution's count sits in its own module's total and in no sibling's
    totals = {info.name: sums["exact"] for info, sums in result.module_totals()}
    assert sum(totals[n] for n in layers) == result.total() == sum(r.counted.totals["exact"] for r in convolutions)
    for n in layers:
        assert totals[n] == sum(r.counted.totals["exact"] for r in convolutions if r.module == n)


def test_flop_counter_mode_with_symconv_formulas():
    from torch.utils.flop_counter import FlopCounterMode
    module = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    x = torch.randn(2, 4, 9, 9)
    with FlopCounterMode(display=False) as torch_counter:
        module(x).sum().backward()
    by_op = {str(k): v for k, v in torch_counter.get_flop_counts()["Global"].items()}
    # torch's counter: grad_weight alone (no input gradient) counted as twice the forward
    assert by_op == {"aten.convolution": 10_800, "aten.convolution_backward": 21_600}
    layer = symconv.layer_from_module(module)
    for convention in CONVENTIONS:
        module.zero_grad()
        with FlopCounterMode(display=False, custom_mapping=symconv.flop_counter_mapping(convention)) as ours:
            module(x).sum().backward()
        grads = simulate_gradients(layer, (2, 4, 9, 9), convention)
        assert {str(k): v for k, v in ours.get_flop_counts()["Global"].items()} == {
            "aten.convolution": simulate(layer, (2, 4, 9, 9), convention),
            "aten.convolution_backward": grads["grad_weight"] + grads["grad_bias"]}
    assert simulate_gradients(layer, (2, 4, 9, 9), "macs")["grad_weight"] == 5_400  # equal to the forward
    from torch.utils import flop_counter
    assert flop_counter.flop_registry[torch.ops.aten.convolution].__wrapped__.__module__ == "torch.utils.flop_counter"


def test_flop_counter_mode_with_symconv_formulas_counts_torchs_fused_kernels():
    from torch.utils.flop_counter import FlopCounterMode
    models = [(nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 40, batch_first=True), 2,
                                     enable_nested_tensor=False), torch.randn(3, 5, 16)),
              (nn.LSTM(8, 16, 2, batch_first=True, bidirectional=True), torch.randn(2, 5, 8))]
    for model, x in models:
        model.eval()
        with FlopCounterMode(display=False) as plain, torch.no_grad():
            model(x)
        with FlopCounterMode(display=False, custom_mapping=symconv.flop_counter_mapping("macs")) as ours, \
                torch.no_grad():
            model(x)
        assert plain.get_total_flops() == 0  # inference runs fused kernels that torch's registry lacks
        assert {str(k) for k in ours.get_flop_counts()["Global"]} <= {"aten._transformer_encoder_layer_fwd",
                                                                    "aten.mkldnn_rnn_layer"}
        # the meta profile runs the unfused operators: the same products
        assert ours.get_total_flops() == symconv.profile(model, tuple(x.shape), "macs").total() > 0


@pytest.mark.parametrize("conv, pads", [(nn.Conv2d(3, 4, 4, padding="same"), (1, 2, 1, 2)),
                                        (Conv2dSame(3, 4, (3, 4), stride=2), (1, 1, 0, 1))],
                         ids=["padding='same', even kernel", "pad-then-convolve"])
def test_flop_counter_mode_merges_zero_padding_as_the_profiler_does(conv, pads):
    from torch.utils.flop_counter import FlopCounterMode
    shape = (1, 3, 8, 8)
    # torch's zero padding (left, right per axis, last axis first), merged into the layer
    layer = Layer("Conv2d", 3, 4, conv.kernel_size, conv.stride, (pads[2], pads[0]), (1, 1), (0, 0), 1, True,
                  "zeros", (pads[3], pads[1]))
    # the exact gradient counts from ones-gradients of one channel through the pad: T, Z_in, Z_tap
    x, w = torch.ones(1, 1, 8, 8, requires_grad=True), torch.ones(1, 1, *conv.kernel_size, requires_grad=True)
    y = F.conv2d(F.pad(x, pads), w, stride=conv.stride)
    y.backward(torch.ones_like(y))
    T, z_in, z_tap, outputs = int(x.grad.sum()), int(torch.count_nonzero(x.grad)), int(torch.count_nonzero(w.grad)), \
        y.numel()
    psi = 3 * 4
    gradients = psi * (2 * T - z_in) + 3 * z_in * (4 - 1) + psi * (2 * T - z_tap) + 4 * (outputs - 1)
    inputs = torch.randn(*shape, requires_grad=True)
    for convention in CONVENTIONS:
        with FlopCounterMode(display=False, custom_mapping=symconv.flop_counter_mapping(convention)) as counter:
            conv(inputs).sum().backward()
        counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
        assert counts["aten.convolution"] == simulate(layer, shape, convention)
        backward = symconv.profile(conv, inputs, convention, backward=True).total(convention, "backward")
        assert counts["aten.convolution_backward"] == backward
        if convention == "exact":
            assert backward == gradients


# --- reports -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def decoder_profile():
    return symconv.profile(examples.unet_decoder(channels=8, classes=2), (1, 8, 3, 3), "exact", all_conventions=True)


def test_readable_numbers():
    assert readable(10_290_000_000, "exact") == "10.29 GFLOPs"
    assert readable(5_140_000_000, "macs") == "5.14 GMACs"
    assert readable(999, "docs") == "999 FLOPs"


def test_report_views(decoder_profile):
    p = decoder_profile
    text = str(p)
    assert text == p.table() and f"{p.total('exact'):,}" in text and "not counted: " in text
    modules = dict((i.name, t) for i, t in p.module_totals())
    assert modules[""] == {c: p.total(c) for c in p.conventions}
    assert sum(modules[n]["exact"] for n in ("up1", "conv1", "up2", "conv2", "depthwise", "head")) == p.total()
    assert sum(t["exact"] for _, _, _, t in p.operator_totals()) == p.total()
    assert ("aten.relu", 2, ["act"], True) in p.not_counted()
    folded = p.table(depth=0)
    assert "up1" not in folded and f"{p.total('exact'):,}" in folded
    for depth in (-1, 0.5):  # not an empty table
        with pytest.raises(symconv.SymconvError, match=f"depth={depth} must be a whole number >= 0"):
            p.table(depth=depth)
    assert p.modules["head"].parameters == 2 * 2 + 2


def test_a_total_names_its_convention_in_any_case_and_refuses_an_unknown_phase():
    # total("EXACT") said exact "was not counted" though profile() takes the name in any case; a misspelt phase
    # summed nothing and returned 0
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    conv = layer_totals(Layer.make("Conv2d", 3, 4, 3), (2, 3, 8, 8))
    result = symconv.profile(model, (2, 3, 8, 8), "EXACT", backward=True)
    forward, step = result.total("Exact", phase="forward"), result.total("exact")
    assert forward == conv["exact"] == result.total(phase="forward") and step > forward
    assert result.total(phase="backward") == step - forward
    with pytest.raises(symconv.SymconvError, match=r"^phase='back' must be 'forward', 'backward' or None \(both\)$"):
        result.total(phase="back")
    with pytest.raises(symconv.SymconvError, match="convention='MACS' was not counted; this profile has exact"):
        result.total("MACS")
    with pytest.raises(symconv.SymconvError, match="convention='flops' must be one of docs, exact, macs"):
        result.total("flops")
    formula = symconv.profile(model, (2, 3, "H", 8), "exact", all_conventions=True).formula("MACS")
    assert formula(H=8) == conv["macs"] and formula.unit == "MACs"


def test_a_profile_reads_in_one_line_as_its_repr(decoder_profile):
    # the dataclass's repr wrote out every record: 80 kB for a ResNet-50, printed whole by a notebook cell
    p = decoder_profile
    text = repr(p)
    assert "\n" not in text and len(text) < 300 and text.startswith(f"<Profile of {p.model_type} on input (1, 8, 3, 3)")
    assert all(f"{c} {readable(p.total(c), c)}" in text for c in p.conventions)
    assert f"{len(p.records)} operator calls, {len(p.counted)} counted" in text
    symbolic = symconv.profile(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(1), nn.LazyLinear(2)), (2, 3, "H", 8),
                               backward=True)
    assert "(forward and backward, run symbolic): docs a formula in H;" in repr(symbolic)


def test_exports(decoder_profile):
    p = decoder_profile
    data = json.loads(p.to_json())
    assert data["totals"] == {c: p.total(c) for c in p.conventions} and data["units"]["macs"] == "MACs"
    assert len(data["records"]) == len(p.records)
    # the JSON's modules fold to a depth as the tables do (--depth was ignored with --format json)
    assert [m["name"] for m in data["modules"]] == [i.name for i, _ in p.module_totals()] and len(data["modules"]) > 1
    folded = json.loads(p.to_json(depth=0))
    assert [m["name"] for m in folded["modules"]] == [""] and folded["modules"][0]["totals"] == data["totals"]
    assert folded["records"] == data["records"]
    with pytest.raises(symconv.SymconvError, match="depth=-1 must be a whole number"):
        p.to_json(depth=-1)
    frame = p.to_dataframe()
    assert int(frame["total"].sum()) == p.total("exact") and str(frame["total"].dtype) == "Int64"
    assert int(frame["total_macs"].sum()) == p.total("macs")
    assert frame["total"].isna().sum() == len(p.records) - len(p.counted)
    rows = p.to_csv().splitlines()
    assert rows[-1].endswith(f"{p.total('exact')},{p.total('docs')},{p.total('macs')}")
    assert p.to_latex().startswith(r"\begin{tabular}") and r"$\psi$" in p.to_latex()
    assert p.to_markdown().startswith("| module |")


def _product_rows(p) -> list[tuple[int, str, tuple, tuple, int]]:
    """The table's product rows as (calls, operator, input, output, macs)."""
    found = []
    for row in p.rows()[1:-1]:
        if row[0].strip() == "·":
            calls, _, what = row[3].rpartition(" × ")
            found.append((int(calls or 1), what, ast.literal_eval(row[4]), ast.literal_eval(row[5]), int(row[-1].replace(",", ""))))
    return found


def test_alike_calls_share_a_row():
    # A 2-layer LSTM's training step: each step runs the same four gate products, and their gradients
    t, batch, features, hidden = 5, 3, 8, 16
    p = symconv.profile(nn.LSTM(features, hidden, 2, batch_first=True), (batch, t, features), "macs", backward=True)
    rows = _product_rows(p)
    assert sum(calls for calls, *_ in rows) == len(p.counted) > len(rows)
    assert len({row[1:4] for row in rows}) == len(rows)  # no two rows alike
    for calls, what, source, result, macs in rows:  # a row's total is its calls' m·k·n
        assert macs == calls * math.prod(source) * result[-1]
    forward = sorted((calls, source) for calls, what, source, _, _ in rows if "backward" not in what)
    # layer 0 reads the input (8 features) at each step; its hidden state and layer 1's both inputs are 16 wide
    assert forward == [(t, (batch, features)), (3 * t, (batch, hidden))]
    assert sum(macs for *_, macs in rows) == p.total("macs")
    assert len(p.to_csv().splitlines()) == len(p.rows())  # the exports show the same rows


def test_profile_cli_formats_depth_and_files(tmp_path, capsys):
    model_file = tmp_path / "net.py"
    model_file.write_text("import torch\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))\n")
    assert main(["profile", f"{model_file}:build", "--input", "1,3,8,8", "--format", "json", "--backward"]) == 0
    data = json.loads(capsys.readouterr().out)
    layer = Layer.make("Conv2d", 3, 4, 3)
    grads = simulate_gradients(layer, (1, 3, 8, 8), "docs")
    assert data["totals"]["docs"] == simulate(layer, (1, 3, 8, 8), "docs") + grads["grad_weight"] + grads["grad_bias"]
    assert main(["profile", f"{model_file}:build", "--input", "1,3,8,8", "--depth", "0"]) == 0
    assert "Conv2d" not in capsys.readouterr().out.split("\n")[2]


@pytest.mark.parametrize("source, message", [
    ("def build():\n    raise RuntimeError('no weights here')\n", "building the model with build() failed: "
                                                                  "RuntimeError: no weights here"),
    ("import torch\ndef build(width):\n    return torch.nn.Linear(width, 2)\n", "building the model with build() "
                                                                              "failed: TypeError"),
    ("import not_a_module\n", "failed: ModuleNotFoundError: No module named 'not_a_module'"),
    ("import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        raise KeyError('odd')\n"
     "def build():\n    return M()\n", "the model's forward raised on input (1, 3): KeyError: 'odd'"),
    ("import torch\ndef build():\n    return torch.jit.script(torch.nn.Linear(3, 2))\n", "TorchScript"),
])
def test_profile_cli_reports_the_users_errors_in_one_line(tmp_path, source, message):
    import subprocess
    import sys
    model_file = tmp_path / "net.py"
    model_file.write_text(source)
    proc = subprocess.run([sys.executable, "-m", "symconv", "profile", f"{model_file}:build", "--input", "1,3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


# --- the fast meta outputs against torch's own meta kernels ---------------------------------------------------------

def _meta(*shape, dtype=torch.float32):
    return torch.empty(shape, dtype=dtype, device="meta")


def _compare(op, *args, **kwargs):
    ours = shapes.FAST[op](*args, **kwargs) if op in shapes.FAST else shapes.pointwise(op, args, kwargs)
    theirs = op(*args, **kwargs)
    flat = lambda v: v if isinstance(v, (tuple, list)) else (v,)  # noqa: E731
    for a, b in zip(flat(ours), flat(theirs)):
        if b is None or (isinstance(b, torch.Tensor) and b.numel() == 0 and a is not None and a.numel() == 0):
            continue
        assert (tuple(a.shape), a.dtype) == (tuple(b.shape), b.dtype), (op, args)
    return 1


def test_fast_view_of_symbolic_sizes_equals_torchs_and_assumes_nothing():
    import sympy as sp

    from symconv.tracing.symbolic import SymbolicRun

    def written(sizes):  # sizes as expressions, read without a condition on them
        return [sp.expand(v.node.expr) if isinstance(v, torch.SymInt) else v for v in sizes]

    run = SymbolicRun([(2, 8, "H", "W")])
    (x,) = run.inputs([torch.empty(0)])
    with run.fake:
        h, w = x.shape[2], x.shape[3]
        for size in ([2, 8, h * w], [2, -1, w], [16, h, w], [2, 8, -1], [-1], [h, 2, 8, w, 1]):
            guards = len(run.env.guards)
            ours = shapes.view(x, size)
            assert len(run.env.guards) == guards, size  # no condition on the sizes
            theirs = torch.ops.aten.view.default(x, size)
            assert (written(ours.shape), written(ours.stride())) == (written(theirs.shape), written(theirs.stride()))
        # not contiguous, or not the input's elements: torch's own kernel answers
        assert shapes.view(x.transpose(2, 3), [2, 8, h * w]) is NotImplemented
        assert shapes.view(x, [4, 8, h * w]) is NotImplemented
        assert shapes.view(x, [4, -1, w]) is NotImplemented
    assert shapes.view(_meta(2, 8, 3, 5), [2, 8, 15]) is NotImplemented  # concrete sizes: torch's kernel


def test_fast_convolution_and_pooling_shapes_equal_torchs_meta_kernels():
    aten = torch.ops.aten
    checked = 0
    for L, k, s, p, d in itertools.product((5, 8), (1, 2, 3), (1, 2, 3), (0, 1), (1, 2)):
        x = _meta(2, 4, L, L + 1)
        try:
            checked += _compare(aten.convolution.default, x, _meta(6, 2, k, k), None, [s, s], [p, p], [d, d],
                                False, [0, 0], 2)
        except (RuntimeError, symconv.SymconvError) as err:  # torch and symconv refuse the same layers
            with pytest.raises((RuntimeError, symconv.SymconvError)):
                (aten.convolution.default if isinstance(err, symconv.SymconvError) else shapes.convolution)(
                    x, _meta(6, 2, k, k), None, [s, s], [p, p], [d, d], False, [0, 0], 2)
        for ceil in (False, True):
            if p <= (d * (k - 1) + 1) // 2:
                checked += _compare(aten.max_pool2d_with_indices.default, x, [k, k], [s, s], [p, p], [d, d], ceil)
            if p <= k // 2:
                checked += _compare(aten.avg_pool2d.default, x, [k, k], [s, s], [p, p], ceil)
    x = _meta(2, 4, 7, 9)
    checked += _compare(aten._adaptive_avg_pool2d.default, x, [3, 1])
    checked += _compare(aten.upsample_nearest2d.vec, x, None, [2.0, 1.5])
    checked += _compare(aten.upsample_bilinear2d.default, x, [14, 18], False)
    assert checked > 150


def test_fast_normalisation_reduction_and_product_shapes_equal_torchs():
    aten = torch.ops.aten
    x = _meta(2, 4, 5, 6)
    c = _meta(4)
    checks = [
        (aten.native_batch_norm.default, x, c, c, c, c, True, 0.1, 1e-5),
        (aten.native_batch_norm.default, x, c, c, c, c, False, 0.1, 1e-5),
        (aten._native_batch_norm_legit_no_training.default, x, c, c, c, c, 0.1, 1e-5),
        (aten.native_layer_norm.default, x, [5, 6], _meta(5, 6), _meta(5, 6), 1e-5),
        (aten.native_group_norm.default, x, c, c, 2, 4, 30, 2, 1e-5),
        (aten.mean.dim, x, [2, 3], True), (aten.mean.dim, x, [-1]), (aten.sum.dim_IntList, x, [1]),
        (aten.sum.default, _meta(3, 4, dtype=torch.int32)), (aten.amax.default, x, [0]),
        (aten.mm.default, _meta(3, 4), _meta(4, 5)), (aten.addmm.default, _meta(5), _meta(3, 4), _meta(4, 5)),
        (aten.bmm.default, _meta(2, 3, 4), _meta(2, 4, 5)), (aten.mv.default, _meta(3, 4), _meta(4)),
        (aten._softmax.default, x, -1, False), (aten.native_dropout.default, x, 0.5, True),
        (aten.constant_pad_nd.default, x, [1, 2, 0, 3], 0.0),
        (aten.add.Tensor, x, _meta(6)), (aten.mul.Tensor, x, _meta(1, 4, 1, 1, dtype=torch.float64)),
        (aten.add.Tensor, _meta(3, dtype=torch.float16), torch.tensor(2.0)),
        (aten.div.Tensor, _meta(3, dtype=torch.int64), _meta(3, dtype=torch.int64)),
        (aten.eq.Tensor, x, x), (aten.where.self, _meta(5, 6, dtype=torch.bool), x, _meta(6)),
        (aten.relu.default, x), (aten.gelu.default, x), (aten.sigmoid.default, x), (aten.hardswish.default, x),
        (aten.hardswish_backward.default, x, x), (aten.avg_pool3d.default, _meta(1, 2, 4, 5, 6), [2, 2, 2]),
        (aten._log_softmax_backward_data.default, x, x, 1, torch.float32), (aten.mean.default, x),
        (aten.native_layer_norm_backward.default, x, x, [5, 6], _meta(2, 4, 1, 1), _meta(2, 4, 1, 1),
         _meta(5, 6), _meta(5, 6), [True, True, True]),
    ]
    assert sum(_compare(op, *args) for op, *args in checks) == len(checks)
    with pytest.raises(symconv.SymconvError):
        shapes.native_batch_norm(x, _meta(5), c, c, c, True, 0.1, 1e-5)
    with pytest.raises(symconv.SymconvError):
        shapes.mm(_meta(3, 4), _meta(5, 6))
    with pytest.raises(symconv.SymconvError):
        shapes.broadcast((2, 3), (4,))


def test_remembered_pointwise_dtypes_follow_type_promotion():
    """One dtype cache across calls that promote differently: a scalar's type (1, 1.0, True), a 0-d tensor
    against a sized one, and dtypes; each answer equals torch's meta kernel."""
    aten = torch.ops.aten
    remembered: dict = {}
    ints, halves = _meta(3, dtype=torch.int64), _meta(3, dtype=torch.float16)
    calls = [(aten.add.Tensor, ints, 1), (aten.add.Tensor, ints, 1.0), (aten.add.Tensor, ints, True),
             (aten.add.Tensor, ints, torch.tensor(2.5)), (aten.add.Tensor, ints, _meta(3, dtype=torch.float64)),
             (aten.add.Tensor, halves, torch.tensor(2.0, dtype=torch.float64)),
             (aten.add.Tensor, halves, _meta(1, dtype=torch.float64)), (aten.mul.Tensor, ints, 1),
             (aten.div.Tensor, ints, 2), (aten.add.Tensor, ints, 1)]
    for _ in range(2):  # the second round answers from the cache
        for op, *args in calls:
            ours = shapes.pointwise(op, tuple(args), {}, None, remembered)
            theirs = op(*args)
            assert (tuple(ours.shape), ours.dtype) == (tuple(theirs.shape), theirs.dtype), (op, args)
    assert len(remembered) == len(calls) - 1  # the repeated call was remembered once


def test_fast_empty_on_meta_only():
    aten = torch.ops.aten
    ours = shapes.empty([2, 3], dtype=torch.float16, device=torch.device("meta"))
    theirs = aten.empty.memory_format([2, 3], dtype=torch.float16, device="meta")
    assert (ours.shape, ours.dtype, ours.device) == (theirs.shape, theirs.dtype, theirs.device)
    assert shapes.empty([2, 3], device="meta").dtype == torch.get_default_dtype()
    for kwargs in ({}, {"device": "cpu"}, {"device": "meta", "memory_format": torch.channels_last},
                   {"device": "meta", "pin_memory": True}):
        assert shapes.empty([1, 2, 3, 4], **kwargs) is NotImplemented


def test_counts_remembered_across_profiles_are_frozen_and_equal():
    model = examples.resnet50()
    first, second = (symconv.profile(model, (1, 3, 64, 64), "exact") for _ in range(2))
    assert [(r.op, r.stack, r.counted) for r in first.records] == [(r.op, r.stack, r.counted) for r in second.records]
    conv = next(r for r in first.records if r.counted is not None)
    with pytest.raises(AttributeError):
        conv.counted.totals = {}
    with pytest.raises(TypeError):
        conv.counted.totals["exact"] = 0
    for again in (pickle.loads(pickle.dumps(first)), copy.deepcopy(first)):  # a profile still saves and copies
        assert again.records == first.records and again.total() == first.total()
    convolutions = sum(r.counted.totals["exact"] for r in first.records if r.op == "aten.convolution")
    assert convolutions == sum(symconv.count_ops(m, s, "exact") for m, s in _conv_inputs(model, (1, 3, 64, 64)))


def _conv_inputs(model: nn.Module, shape: tuple) -> list[tuple[nn.Module, tuple]]:
    """Every convolution module a real forward of a copy calls, with its input shape."""
    twin, seen = copy.deepcopy(model), []
    for m in twin.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_pre_hook(lambda m, args: seen.append((m, tuple(args[0].shape))))
    with torch.no_grad():
        twin.eval()(torch.randn(shape))
    assert len(seen) == 53
    return seen


def test_remembered_dtypes_stay_bounded():
    aten = torch.ops.aten
    remembered: dict = {}
    x = _meta(3, dtype=torch.float16)
    add = lambda value: shapes.pointwise(aten.add.Tensor, (x, value), {}, None, remembered)  # noqa: E731
    assert {add(float("nan")).dtype for _ in range(5)} == {torch.float16} and len(remembered) == 1
    assert {add(0.5 + i).dtype for i in range(3 * shapes._DTYPES_LIMIT)} == {torch.float16}
    assert 0 < len(remembered) <= shapes._DTYPES_LIMIT
