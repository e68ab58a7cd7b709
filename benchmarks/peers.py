"""symconv beside the FLOP counters people use, on the same layers and models.

Peers (each optional; pip install moduleprofiler fvcore ptflops thop): moduleprofiler,
torch.utils.flop_counter, fvcore, ptflops, thop. For every case it prints each
peer's figure beside symconv's docs, exact and macs totals, then the wall time
each takes to count the whole DCGAN generator and U-Net decoder.

    python benchmarks/peers.py
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from typing import Callable

import torch
import torch.nn.functional as F

import symconv
from symconv.frontends import examples
from symconv.frontends.parsing import parse_layer
from symconv.oracle.ones import module_from_layer

warnings.filterwarnings("ignore")


def _quiet(fn: Callable[[], float]) -> Callable[[], float]:
    def run() -> float:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return fn()
    return run


def moduleprofiler(model, x):
    from moduleprofiler import ModuleProfiler
    ops = ModuleProfiler().estimate_ops(model, x)
    return sum(v["ops"] for v in ops.values() if v["ops"] is not None)


def flop_counter(model, x):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def fvcore(model, x):
    from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis(model, x).total()


def ptflops(model, x):
    from ptflops import get_model_complexity_info
    macs, _ = get_model_complexity_info(model, tuple(x.shape[1:]), as_strings=False, print_per_layer_stat=False,
                                        input_constructor=lambda _: x)
    return macs


def thop(model, x):
    import thop as t
    macs, _ = t.profile(model, inputs=(x,), verbose=False)
    return macs


PEERS = {"moduleprofiler": moduleprofiler, "flop_counter": flop_counter, "fvcore": fvcore, "ptflops": ptflops,
         "thop": thop}


def symconv_total(model, x, convention, backward=False):
    return symconv.profile(model, x, convention, backward=backward).total()


def flop_counter_training_step(model, x):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops()


def single(text: str) -> torch.nn.Module:
    return torch.nn.Sequential(module_from_layer(parse_layer(text)))


class Conv2dSame(torch.nn.Conv2d):
    """timm's pad-then-convolve subclass (every tf_* EfficientNet): F.pad, then F.conv2d with padding 0."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Functional(torch.nn.Module):
    """Convolutions called as functions in forward, not as submodules."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(16, 8, 3, 3))
        self.v = torch.nn.Parameter(torch.randn(16, 8, 4, 4))

    def forward(self, x):
        return F.conv_transpose2d(F.conv2d(x, self.w, padding=1), self.v, stride=2, padding=1)


class Attention(torch.nn.Module):
    """nn.MultiheadAttention (its projections are F.linear calls) and scaled_dot_product_attention."""

    def __init__(self):
        super().__init__()
        self.mha = torch.nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x):
        y = self.mha(x, x, x, need_weights=False)[0]
        q = y.unflatten(-1, (4, 16)).transpose(1, 2)
        return F.scaled_dot_product_attention(q, q, q)


class GraphConvolution(torch.nn.Module):
    """A graph convolution layer: a Linear, then the graph's sparse adjacency (COO: 5 % of the pairs and the
    self-loops stored) times its output."""

    def __init__(self):
        super().__init__()
        pairs = torch.rand(256, 256, generator=torch.Generator().manual_seed(0)) < 0.05
        self.register_buffer("adjacency", (pairs | torch.eye(256, dtype=torch.bool)).float().to_sparse())
        self.linear = torch.nn.Linear(64, 32)

    def forward(self, x):
        return torch.sparse.mm(self.adjacency, self.linear(x))


def weight_normed():
    """A HiFi-GAN-style stack: convolutions under parametrizations.weight_norm (no longer leaf modules)."""
    wn = torch.nn.utils.parametrizations.weight_norm
    return torch.nn.Sequential(wn(torch.nn.Conv1d(80, 64, 7, padding=3)), torch.nn.LeakyReLU(0.1),
                               wn(torch.nn.ConvTranspose1d(64, 32, 16, stride=8, padding=4)), torch.nn.LeakyReLU(0.1),
                               wn(torch.nn.Conv1d(32, 32, 3, dilation=3, padding=3)))


CASES = [
    ("ConvTranspose1d page (ones, k=3)", single("ConvTranspose1d(1, 1, 3, bias=False)"), (1, 1, 2)),
    ("ConvTranspose2d page (ones, k=2)", single("ConvTranspose2d(1, 1, 2, bias=False)"), (1, 1, 2, 2)),
    ("Conv2d page style", single("Conv2d(3, 64, 3, padding=1)"), (8, 3, 32, 32)),
    ("Q&A k=4 s=2 p=1", single("ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)"), (1, 1, 4, 4)),
    ("Q&A groups=2 p=2", single("ConvTranspose1d(4, 4, 3, padding=2, groups=2, bias=False)"), (1, 4, 3)),
    ("output_padding=1", single("ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)"), (1, 8, 16, 16)),
    ("unbatched input", single("ConvTranspose2d(8, 8, 4, stride=2, padding=1)"), (8, 16, 16)),
    ("gaps: k=2 s=3", single("ConvTranspose2d(4, 4, 2, stride=3)"), (1, 4, 8, 8)),
    ("DCGAN generator", examples.dcgan_generator(), (1, 100, 1, 1)),
    ("U-Net decoder", examples.unet_decoder(), (1, 64, 16, 16)),
    ("weight_norm convolutions", weight_normed(), (1, 80, 32)),
    ("pad-then-convolve (Conv2dSame)", torch.nn.Sequential(Conv2dSame(16, 32, 3, stride=2)), (1, 16, 15, 15)),
    ("functional conv calls", Functional(), (1, 8, 16, 16)),
    ("attention (MHA + SDPA)", Attention(), (2, 10, 64)),
    ("transformer encoder, 2 layers", torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(64, 4, 256, batch_first=True), 2, enable_nested_tensor=False), (2, 17, 64)),
    ("LSTM, 2 layers, bidirectional", torch.nn.LSTM(32, 64, 2, batch_first=True, bidirectional=True), (2, 12, 32)),
    ("graph convolution, sparse adjacency", GraphConvolution(), (256, 64)),
]

#: training steps: forward and backward (peers that count only a forward cannot take part)
TRAINING = [
    ("training step, grouped Conv2d", single("Conv2d(4, 6, 3, stride=2, padding=1, groups=2)"), (2, 4, 9, 9)),
    ("training step, DCGAN generator", examples.dcgan_generator(), (1, 100, 1, 1)),
]


def main() -> None:
    names = list(PEERS) + ["symconv docs", "symconv exact", "symconv macs"]
    print(f"{'case':<34}" + "".join(f"{n:>16}" for n in names))
    timings: dict[str, dict[str, float]] = {}
    for label, model, shape in CASES:
        model.eval()
        x = torch.randn(shape)
        row = []
        for name in names:
            if name.startswith("symconv"):
                fn = lambda m=model, x=x, c=name.split()[1]: symconv_total(m, x, c)  # noqa: E731
            else:
                fn = lambda m=model, x=x, f=PEERS[name]: f(m, x)  # noqa: E731
            try:
                start = time.perf_counter()
                value = _quiet(fn)()
                elapsed = time.perf_counter() - start
                row.append(f"{int(value):>16,}")
                if label in ("DCGAN generator", "U-Net decoder"):
                    timings.setdefault(label, {})[name] = elapsed
            except ImportError:
                row.append(f"{'not installed':>16}")
            except Exception as err:  # a peer that fails on the case is part of the comparison
                row.append(f"{'error':>16}")
                print(f"  ({name} on {label}: {type(err).__name__}: {str(err).splitlines()[0][:80]})")
        print(f"{label:<34}" + "".join(row))
    for label, model, shape in TRAINING:
        model.train()
        x = torch.randn(shape)
        row = []
        for name in names:
            if name == "flop_counter":
                row.append(f"{flop_counter_training_step(model, x):>16,}")
            elif name.startswith("symconv"):
                row.append(f"{symconv_total(model, x, name.split()[1], backward=True):>16,}")
            else:
                row.append(f"{'forward only':>16}")
        print(f"{label:<34}" + "".join(row))
    print("\nwall time to count the whole model (first call, imports already done):")
    for label, times in timings.items():
        print(f"  {label:<18}" + "  ".join(f"{n} {t * 1e3:.0f} ms" for n, t in times.items()))


if __name__ == "__main__":
    main()
