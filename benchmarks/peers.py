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


def symconv_total(model, x, convention):
    return symconv.profile(model, tuple(x.shape), convention).total()


def single(text: str) -> torch.nn.Module:
    return torch.nn.Sequential(module_from_layer(parse_layer(text)))


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
    print("\nwall time to count the whole model (first call, imports already done):")
    for label, times in timings.items():
        print(f"  {label:<18}" + "  ".join(f"{n} {t * 1e3:.0f} ms" for n, t in times.items()))


if __name__ == "__main__":
    main()
