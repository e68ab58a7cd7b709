"""The slowest layers found: random valid layers with parameters up to 2**62, timed on each path.

Parameters are drawn log-uniformly (every bit length equally likely), so tiny and
huge kernels, strides, paddings and dilations meet in one layer. For each layer it
times ``additions_per_filter`` (the compiled path where it answers), the Python
path alone, and ``count_layer`` under every convention, and prints the slowest
layers of each; the goals are 1 ms compiled and 50 ms in Python.

    python benchmarks/extremes.py [--layers N] [--bits B] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import time

import symconv
from symconv.core.names import CONVENTION_NAMES
from symconv.numeric.layer import Layer
from symconv.numeric.layer_counts import count_layer, python_additions_per_filter


def log_uniform(rng: random.Random, low: int, bits: int) -> int:
    return max(low, rng.getrandbits(rng.randint(1, bits)))


def random_layer(rng: random.Random, bits: int) -> tuple[Layer, tuple[int, ...]] | None:
    """A random layer and input, or None when torch would reject the draw."""
    ndim, transposed = rng.randint(1, 3), rng.random() < 0.5
    kind = f"{'ConvTranspose' if transposed else 'Conv'}{ndim}d"
    k, s, d = ([log_uniform(rng, 1, bits) for _ in range(ndim)] for _ in range(3))
    p = [log_uniform(rng, 0, bits) for _ in range(ndim)]
    op = [rng.randrange(max(a, b)) if transposed else 0 for a, b in zip(s, d)]
    size = [log_uniform(rng, 1, bits) for _ in range(ndim)]
    try:
        layer = Layer.make(kind, 1, 1, tuple(k), stride=tuple(s), padding=tuple(p), dilation=tuple(d),
                           output_padding=tuple(op))
        layer.check_input((1, 1, *size))
    except symconv.SymconvError:
        return None
    return layer, tuple(size)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=3000, help="valid layers to time (default 3000)")
    parser.add_argument("--bits", type=int, default=62, help="largest bit length of a parameter (default 62)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    worst: dict[str, tuple[float, str]] = {}
    done = 0
    while done < args.layers:
        drawn = random_layer(rng, args.bits)
        if drawn is None:
            continue
        layer, size = drawn
        done += 1
        call = (size, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.output_padding)
        text = f"{layer.constructor()} on {size}"
        for convention in CONVENTION_NAMES:
            options = dict(convention=convention, transposed=layer.transposed)
            times = {
                f"additions_per_filter ({convention})": timed(lambda: symconv.additions_per_filter(*call, **options)),
                f"Python path ({convention})": timed(lambda: python_additions_per_filter(*call, **options)),
                f"count_layer ({convention})": timed(lambda: count_layer(layer, (1, 1, *size), convention)),
            }
            for name, seconds in times.items():
                if seconds > worst.get(name, (0.0, ""))[0]:
                    worst[name] = (seconds, text)
    print(f"{done} valid layers, parameters up to 2**{args.bits}; slowest call of each path:")
    for name, (seconds, text) in sorted(worst.items()):
        print(f"  {name:<34} {seconds * 1e3:8.3f} ms  {text}")


if __name__ == "__main__":
    main()
