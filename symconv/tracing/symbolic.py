"""Symbolic input sizes through a whole model, with torch's own symbolic shapes.

The model's copy runs on fake tensors whose sizes are SymInts of a ``ShapeEnv``
(torch's symbolic-shape machinery): every operator computes its output sizes as
SymPy expressions in the input's size names, flooring exactly where torch floors.
Each name gets a hint (a concrete value torch uses where the model branches on a
size); the branches taken are recorded by the ShapeEnv as guards, and the guards,
translated into the user's names, are part of the result's domain: the counts are
exact wherever the model takes the same branches.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import sympy as sp
import torch
from torch.overrides import TorchFunctionMode

from ..core.errors import SymconvError
from ..core.sizes import parse_size, positive_size

#: hints, in order, for names the user gives no hint for: distinct, large, divisible by 64
DEFAULT_HINTS = (256, 320, 384, 448, 512, 576, 640, 704)


class Translation:
    """torch's size symbols and functions -> the user's names and SymPy's floor, ceiling and Mod."""

    def __init__(self) -> None:
        from torch.utils._sympy import functions as tf
        self.symbols: dict[sp.Symbol, sp.Symbol] = {}
        self.rewrites = [
            (tf.FloorDiv, lambda a, b: sp.floor(a / b)),
            (tf.CeilDiv, lambda a, b: sp.ceiling(a / b)),
            (tf.PythonMod, sp.Mod),
            (tf.Mod, sp.Mod),
            (tf.CleanDiv, lambda a, b: a / b),
            (tf.ModularIndexing, lambda a, b, c: sp.Mod(sp.floor(a / b), c)),
            (tf.Max, sp.Max),
            (tf.Min, sp.Min),
            # math.ceil(size / stride) and the like in a model's own code: Python's float division and rounding
            (tf.IntTrueDiv, lambda a, b: a / b),
            (tf.FloatTrueDiv, lambda a, b: a / b),
            (tf.ToFloat, lambda a: a),
            (tf.CeilToInt, sp.ceiling),
            (tf.FloorToInt, sp.floor),
            (tf.TruncToInt, lambda a: sp.sign(a) * sp.floor(sp.Abs(a))),
            (tf.PowByNatural, sp.Pow),
            (tf.Identity, lambda a: a),
        ]

    def __call__(self, expr: sp.Basic) -> sp.Basic:
        out = expr.xreplace(self.symbols)
        for cls, rewrite in self.rewrites:
            if out.has(cls):
                out = out.replace(lambda e, cls=cls: isinstance(e, cls), lambda e, rewrite=rewrite: rewrite(*e.args))
        return out

    def size(self, value: Any) -> Any:
        """A tensor size: an int, or a SymInt as an expression in the user's names."""
        if isinstance(value, torch.SymInt):
            expr = self(value.node.expr)
            return int(expr) if expr.is_Integer else expr
        return value


_aten = torch.ops.aten
#: (mode, spatial dimensions) -> the aten kernel F.interpolate runs
_UPSAMPLING = {("nearest", 1): _aten.upsample_nearest1d, ("nearest", 2): _aten.upsample_nearest2d,
               ("nearest", 3): _aten.upsample_nearest3d, ("linear", 1): _aten.upsample_linear1d,
               ("bilinear", 2): _aten.upsample_bilinear2d, ("bicubic", 2): _aten.upsample_bicubic2d,
               ("trilinear", 3): _aten.upsample_trilinear3d}


#: torch's recurrent layers -> the aten overload (on a padded batch) they call
_RECURRENT = {torch.lstm: _aten.lstm.input, torch.gru: _aten.gru.input, torch.rnn_tanh: _aten.rnn_tanh.input,
              torch.rnn_relu: _aten.rnn_relu.input}


def _bound(names: tuple[str, ...], args: tuple, kwargs: dict) -> dict[str, Any]:
    """A functional call's arguments by name, positional ones named in order."""
    return {**dict(zip(names, args)), **kwargs}


class KeepSizesSymbolic(TorchFunctionMode):
    """Functional calls computed as torch computes them, without the size reads that would fix every symbolic
    size at its hint:

    - ``padding="same"``: an explicit zero pad of the odd remainder (on the right), then a symmetric
      convolution (torch's own path reads the input's sizes);
    - ``F.interpolate`` (``nn.Upsample``) by scale factors of small power-of-two denominators (2, 1.5, 0.5),
      without antialiasing: the output size as the floor of input size times factor in integers (torch's own
      path multiplies the sizes as floats, which fixes them at their hints), the same kernel; and to sizes
      given (another tensor's), the same kernel on them (torch's own path refuses symbolic ones);
    - 1-d max pooling: the 2-d pooling of a height of 1 that torch runs for it, without its checks that read
      the size as a number;
    - a recurrent layer (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``): its outputs made with their sizes and the
      layer counted whole by ``recorder``, and its backward pass too where it has one (torch's own path loops
      over the steps, which fixes the sequence length at its hint).
    """

    def __init__(self, recorder: Any = None) -> None:
        super().__init__()
        self.recorder = recorder  # the counting mode, which counts a recurrent layer whole

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.conv1d, torch.conv2d, torch.conv3d):
            return self._convolution(func, args, kwargs)
        if func is torch.nn.functional.interpolate:
            return self._interpolation(func, args, kwargs)
        if func is torch.nn.functional.max_pool1d or func is torch.nn.functional.max_pool1d_with_indices:
            return self._max_pool1d(func, args, kwargs)
        if func in _RECURRENT and self.recorder is not None and not kwargs and len(args) == 9 and \
                isinstance(args[3], bool) and args[0].dim() == 3:  # the overload on a padded batch
            tensors = (args[0], *args[1], *args[2]) if isinstance(args[1], (tuple, list)) else \
                (args[0], args[1], *args[2])
            if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
                return _WholeRecurrent.apply(self, func, args, *tensors)
            return self._recurrent(func, args)
        return func(*args, **kwargs)

    def _recurrent(self, func, args: tuple) -> tuple[torch.Tensor, ...]:
        """A recurrent layer's outputs, made with their sizes, and its count."""
        from .ops import _recurrent_groups
        x, _, params, _, num_layers, _, _, bidirectional, batch_first = args
        directions = 2 if bidirectional else 1
        _, _, _, w_hh, w_hr = next(_recurrent_groups(params, num_layers, bidirectional, ""))
        hidden = w_hh.shape[1] if w_hr is None else w_hr.shape[1]
        out = hidden if w_hr is None else w_hr.shape[0]
        steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
        with self.recorder.aside():
            outputs = (x.new_empty((batch, steps, directions * out) if batch_first else
                                   (steps, batch, directions * out)),
                       x.new_empty((num_layers * directions, batch, out)))
            if func is torch.lstm:
                outputs += (x.new_empty((num_layers * directions, batch, hidden)),)
        self.recorder.record_whole(_RECURRENT[func], args, {}, outputs)
        return outputs

    def _recurrent_backward(self, func, args: tuple, input_grad: bool, hidden_grad: bool) -> None:
        from .ops import WHOLE_BACKWARD
        packet = _RECURRENT[func]
        self.recorder.record_whole(packet, (*args, input_grad, hidden_grad), {}, None,
                                   WHOLE_BACKWARD[packet.overloadpacket])

    @staticmethod
    def _convolution(func, args: tuple, kwargs: dict) -> Any:
        bound = _bound(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), args, kwargs)
        if bound.get("padding") != "same":
            return func(*args, **kwargs)
        x, w = bound["input"], bound["weight"]
        ndim = w.dim() - 2
        dilation = bound.get("dilation", 1)
        dilation = [dilation] * ndim if isinstance(dilation, int) else list(dilation)
        totals = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
        pads = [v for total in reversed(totals) for v in (0, total % 2)]
        if any(pads):
            x = torch.nn.functional.pad(x, pads)
        return func(x, w, bound.get("bias"), bound.get("stride", 1), [t // 2 for t in totals], dilation,
                    bound.get("groups", 1))

    @staticmethod
    def _max_pool1d(func, args: tuple, kwargs: dict) -> Any:
        """The 2-d pooling of a height of 1 that torch's own 1-d pooling runs, without its checks that read the
        sizes as numbers."""
        bound = _bound(("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                       args, kwargs)

        def one(value: Any, default: Any) -> Any:
            if isinstance(value, (tuple, list)):
                value = value[0] if value else default
            return default if value is None else value

        x, kernel = bound["input"], one(bound["kernel_size"], None)
        if x.dim() not in (2, 3) or kernel is None:
            return func(*args, **kwargs)
        out, indices = _aten.max_pool2d_with_indices.default(
            x.unsqueeze(-2), [1, kernel], [1, one(bound.get("stride"), kernel)], [0, one(bound.get("padding"), 0)],
            [1, one(bound.get("dilation"), 1)], bool(bound.get("ceil_mode", False)))
        out, indices = out.squeeze(-2), indices.squeeze(-2)
        indexed = func is torch.nn.functional.max_pool1d_with_indices or bound.get("return_indices")
        return (out, indices) if indexed else out

    @staticmethod
    def _interpolation(func, args: tuple, kwargs: dict) -> Any:
        bound = _bound(("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor",
                        "antialias"), args, kwargs)
        x, scale, mode = bound["input"], bound.get("scale_factor"), bound.get("mode", "nearest")
        spatial = x.dim() - 2
        kernel = _UPSAMPLING.get((mode, spatial))
        size = bound.get("size")
        if size is not None:  # the sizes given (another tensor's, as feature pyramids take them): the kernel's own
            sizes = list(size) if isinstance(size, (tuple, list)) else [size] * spatial
            if kernel is None or scale is not None or bound.get("antialias") or len(sizes) != spatial:
                return func(*args, **kwargs)
            return kernel.default(x, sizes) if mode == "nearest" else \
                kernel.default(x, sizes, bool(bound.get("align_corners")))
        factors = list(scale) if isinstance(scale, (tuple, list)) else [scale] * spatial
        # A factor whose float is a fraction of small power-of-two denominator (2, 1.5, 0.5, 0.75): torch's
        # floor(size * factor) in floats is then exactly the integer floor below, at any practical size.
        exact = [Fraction(float(f)) for f in factors] if scale is not None and len(factors) == spatial else []
        if not exact or not all(0 < f and f.denominator <= 64 for f in exact) or \
                kernel is None or bound.get("antialias") or bound.get("recompute_scale_factor"):
            return func(*args, **kwargs)  # torch's own path (its symbolic kernels need concrete sizes elsewhere)
        sizes = [n * f.numerator // f.denominator for n, f in zip(x.shape[2:], exact)]
        if not all(size >= 1 for size in sizes):  # torch refuses an empty output; the test is a guard on the sizes
            return func(*args, **kwargs)
        if mode == "nearest":
            return kernel.default(x, sizes)
        return kernel.default(x, sizes, bool(bound.get("align_corners")))


class SymbolicRun:
    """A ShapeEnv and a FakeTensorMode, and the example inputs with the user's symbolic sizes."""

    def __init__(self, shapes: Sequence[Sequence[Any]], hints: dict[str, int] | None = None) -> None:
        from torch._dynamo.source import ConstantSource
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv
        from torch.utils._sympy.numbers import int_oo
        from torch.utils._sympy.value_ranges import ValueRanges

        self.sizes = [tuple(parse_size(v) for v in shape) for shape in shapes]
        names = sorted({s for shape in self.sizes for v in shape if not isinstance(v, int) for s in v.free_symbols},
                       key=lambda s: s.name)
        hints = dict(hints or {})
        unknown = set(hints) - {s.name for s in names}
        if unknown:
            raise SymconvError(f"hints for {', '.join(sorted(unknown))}, which no input size uses")
        free_hints = iter(DEFAULT_HINTS)
        self.hints = {s: positive_size(f"hint {s.name}", hints[s.name]) if s.name in hints else next(free_hints, 256)
                      for s in names}
        self.env = ShapeEnv(duck_shape=False)  # distinct names are distinct sizes, whatever their hints
        # The copy's parameters and buffers are made fake up front; its other tensors (a plain tensor attribute)
        # become fake as they are used.
        self.fake = FakeTensorMode(shape_env=self.env, allow_non_fake_inputs=True)
        self.translate = Translation()
        torch_symbols = {}
        for s, hint in self.hints.items():
            t = self.env.create_symbol(hint, source=ConstantSource(s.name), dynamic_dim=DimDynamic.DYNAMIC)
            self.env.var_to_range[t] = ValueRanges(1, int_oo)  # names are positive; torch would assume >= 2
            torch_symbols[s] = t
            self.translate.symbols[t] = s
        self._torch = torch_symbols

    def hint(self, v: Any) -> int:
        """A size at the hints."""
        if isinstance(v, int):
            return v
        hint = int(v.xreplace(self.hints))
        if hint < 1:
            raise SymconvError(f"size {v} is {hint} at the hints {self.describe_hints()}: give hints at which every "
                               f"size is positive")
        return hint

    def dims(self, shape: tuple[Any, ...]) -> list[Any]:
        return [v if isinstance(v, int) else self.env.create_symintnode(v.xreplace(self._torch), hint=self.hint(v))
                for v in shape]

    def inputs(self, examples: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        with self.fake:
            return tuple(torch.empty(self.dims(shape), dtype=t.dtype, device="meta")
                         for shape, t in zip(self.sizes, examples))

    def at_hints(self, examples: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The inputs with concrete sizes, the hints, on the meta device."""
        return tuple(torch.empty([self.hint(v) for v in shape], dtype=t.dtype, device="meta")
                     for shape, t in zip(self.sizes, examples))

    def fakeify(self, twin: torch.nn.Module) -> None:
        """Parameters and buffers of the (meta) copy as fake tensors of static shape."""
        for module in twin.modules():
            for store in (module._parameters, module._buffers):
                for name, t in list(store.items()):
                    if t is None or isinstance(t, torch.nn.parameter.UninitializedParameter):
                        continue
                    fake = self.fake.from_tensor(t, static_shapes=True)
                    store[name] = torch.nn.Parameter(fake, t.requires_grad) if store is module._parameters else fake

    def domain(self) -> list[sp.Basic]:
        """What tracing assumed of the sizes (torch's guards), in the user's names; a guard on several conditions at
        once (a kernel's ``floor(H/4) >= 1 and floor(W/4) >= 1``) as each of them, so that each is read alone."""
        out = []
        for guard in self.env.guards:
            condition = self.translate(guard.expr)
            for part in condition.args if isinstance(condition, sp.And) else (condition,):
                if part is not sp.true and part not in out:
                    out.append(part)
        return out

    def describe_hints(self) -> str:
        return ", ".join(f"{s.name}={v}" for s, v in self.hints.items())


class _WholeRecurrent(torch.autograd.Function):
    """A recurrent layer counted whole (:class:`KeepSizesSymbolic`), with its backward pass: the gradients of
    its inputs, weights and initial state made with their sizes, and counted whole too."""

    @staticmethod
    def forward(ctx: Any, keep: KeepSizesSymbolic, func: Any, args: tuple, *tensors: torch.Tensor) -> Any:
        ctx.keep, ctx.func, ctx.args = keep, func, args
        ctx.shapes = [(t.shape, t.dtype) for t in tensors]
        return keep._recurrent(func, args)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        needed = ctx.needs_input_grad[3:]
        # the input's gradient, and the initial state's (an LSTM's is a pair)
        ctx.keep._recurrent_backward(ctx.func, ctx.args, needed[0], any(needed[1:len(needed) - len(ctx.args[2])]))
        with ctx.keep.recorder.aside():
            made = [grads[0].new_empty(shape, dtype=dtype) if need else None
                    for (shape, dtype), need in zip(ctx.shapes, needed)]
        return (None, None, None, *made)
