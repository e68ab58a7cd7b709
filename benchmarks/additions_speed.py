"""symconv's additions against the docs pages' empirical method, measured side by side.

For ConvTranspose2d(k=4, s=2, p=1) at several input sizes it times
  * the pages' method: a ones input, a ones kernel, one convolution, sum(y - 1) in float32;
  * ``symconv.additions_per_filter`` (validation included, one layer per call);
  * the compiled function of the layer's parameters alone, without validation
    (what a loop over many already-validated layers costs per layer);
and prints the ratios and whether the numbers agree. Then the throughput of the
lambdified total over 10**6 random configurations, vectorised.

    python benchmarks/additions_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np
import torch

import symconv
from symconv.numeric import output_sizes


def empirical(n: int) -> tuple[float, float]:
    """The pages' method at an n x n input: (seconds, additions as float32 gives them)."""
    start = time.perf_counter()
    x = torch.ones((1, 1, n, n))
    module = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
    torch.nn.init.ones_(module.weight)
    with torch.no_grad():
        additions = torch.sum(module(x) - 1.0).item()
    return time.perf_counter() - start, additions


def best(fn, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def layer_rows(sizes: list[int]) -> None:
    # Additions as one function of the layer's parameters: hybrid S per axis, then ΠS - ΠL_out.
    fn = symconv.layer("ConvTranspose2d").lambdify("additions", convention="docs")
    print(f"{'input':>10} {'output':>10} {'empirical':>12} {'symconv':>10} {'compiled':>10} "
          f"{'ratio':>10} {'ratio(c)':>10}  agree")
    for n in sizes:
        runs = [empirical(n) for _ in range(3 if n <= 1024 else 1)]
        t_emp = min(r[0] for r in runs)
        value_emp = runs[0][1]
        exact = symconv.additions_per_filter((n, n), 4, 2, 1)
        t_api = best(lambda: symconv.additions_per_filter((n, n), 4, 2, 1), 2000)
        params = dict(N=1, C_in=1, C_out=1, groups=1, H_in=n, W_in=n, kernel_size_0=4, kernel_size_1=4,
                      stride_0=2, stride_1=2, padding_0=1, padding_1=1, dilation_0=1, dilation_1=1,
                      output_padding_0=0, output_padding_1=0)
        args = [params[name] for name in fn.names]
        assert fn.scalar(*args) == exact
        t_fn = best(lambda: fn.scalar(*args), 20000)
        agree = "yes" if value_emp == exact else f"no: float32 {value_emp:.0f} vs exact {exact}"
        print(f"{n:>9}² {2 * n:>9}² {t_emp * 1e3:>10.2f}ms {t_api * 1e6:>8.2f}µs {t_fn * 1e6:>8.2f}µs "
              f"{t_emp / t_api:>9.0f}× {t_emp / t_fn:>9.0f}×  {agree}")


def throughput(count: int) -> None:
    rng = np.random.default_rng(0)
    for kind, convention in (("ConvTranspose2d", "docs"), ("ConvTranspose2d", "exact"), ("Conv2d", "exact")):
        fn = symconv.layer(kind).lambdify("total", convention=convention)
        g = rng.choice([1, 2, 4], count)
        cols = {"N": rng.integers(1, 65, count), "C_in": g * rng.integers(1, 65, count),
                "C_out": g * rng.integers(1, 65, count), "groups": g}
        for a in ("0", "1"):
            k, s, d = rng.integers(1, 8, count), rng.integers(1, 5, count), rng.integers(1, 4, count)
            cols.update({f"kernel_size_{a}": k, f"stride_{a}": s, f"dilation_{a}": d,
                         f"padding_{a}": rng.integers(0, 3, count) % (d * (k - 1) + 1)})
            if kind.startswith("ConvTranspose"):
                cols[f"output_padding_{a}"] = rng.integers(0, 8, count) % np.maximum(s, d)
            cols["HW"[int(a)] + "_in"] = rng.integers(64 if kind == "Conv2d" else 1, 513, count)
        # no padding where it would leave an empty output: every row a valid layer
        for a, size in enumerate(output_sizes(symconv.layer(kind), cols)):
            cols[f"padding_{a}"] = np.where(size < 1, 0, cols[f"padding_{a}"])
        fn(**{k: v[:1000] for k, v in cols.items()})  # warm up
        start = time.perf_counter()
        result = fn(**cols)
        elapsed = time.perf_counter() - start
        print(f"  {kind:<16} {convention:<6} {count:,} configurations in {elapsed:.3f}s = "
              f"{count / elapsed:,.0f}/s ({result.dtype})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 10**5 configurations")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sizes = [64, 512] if args.quick else [64, 512, 1024, 2048, 4096]
    print("ConvTranspose2d(1, 1, 4, stride=2, padding=1): additions per filter, docs convention")
    layer_rows(sizes)
    print("\nlambdified total, vectorised over random configurations:")
    throughput(10 ** 5 if args.quick else 10 ** 6)


if __name__ == "__main__":
    main()
