"""symconv's additions against the docs pages' empirical method, measured side by side.

For ConvTranspose2d(k=4, s=2, p=1) at several input sizes it times
  * the pages' method: a ones input, a ones kernel, one convolution, sum(y - 1) in float32;
  * ``symconv.additions_per_filter``, the public function (validation included), on 1,000
    distinct layers around that size, so no call repeats another's arguments;
  * the same function's Python path alone (what runs where the compiled path is absent
    or declines: NumPy integers, sizes past int64);
  * the lambdified function of the layer's parameters (what a loop over many
    already-validated layers costs per layer);
and prints the ratios and whether the numbers agree. Then the throughput of the
lambdified total over 10**6 random valid layers, vectorised, beside the same total
written directly in numpy int64 with the same validity checks (best of three runs;
the goal: docs within 3×, exact within 6×).

    python benchmarks/additions_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np
import torch

import symconv
from symconv.numeric import layer_counts, vector_counters
from symconv.numeric.compile import output_sizes


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


def per_call(fn, layers: list[tuple], repeat: int = 5) -> float:
    """Seconds per call of fn over a list of distinct argument tuples (best of ``repeat``)."""
    def run() -> None:
        for args in layers:
            fn(*args)
    return best(run, number=1, repeat=repeat) / len(layers)


def layer_rows(sizes: list[int]) -> None:
    # Additions as one function of the layer's parameters: hybrid S per axis, then ΠS - ΠL_out.
    fn = symconv.cost_model("ConvTranspose2d").lambdify("additions", convention="docs")
    compiled_path = layer_counts._native_additions is not None
    print(f"public function: {'compiled path' if compiled_path else 'Python path only (no compiled module)'}")
    print(f"{'input':>10} {'output':>10} {'empirical':>11} {'symconv':>9} {'python':>9} {'lambdified':>10} "
          f"{'ratio':>9} {'ratio(py)':>9} {'ratio(l)':>9}  agree")
    for n in sizes:
        runs = [empirical(n) for _ in range(3 if n <= 1024 else 1)]
        t_emp = min(r[0] for r in runs)
        value_emp = runs[0][1]
        exact = symconv.additions_per_filter((n, n), 4, 2, 1)
        assert exact == layer_counts.python_additions_per_filter((n, n), 4, 2, 1)
        layers = [((n + i, n + i), 4, 2, 1) for i in range(1000)]
        t_api = per_call(symconv.additions_per_filter, layers)
        t_py = per_call(layer_counts.python_additions_per_filter, layers[:200])
        params = dict(N=1, C_in=1, C_out=1, groups=1, H_in=n, W_in=n, kernel_size_0=4, kernel_size_1=4,
                      stride_0=2, stride_1=2, padding_0=1, padding_1=1, dilation_0=1, dilation_1=1,
                      output_padding_0=0, output_padding_1=0)
        args = [params[name] for name in fn.names]
        assert fn.scalar(*args) == exact
        t_fn = best(lambda: fn.scalar(*args), 20000)
        agree = "yes" if value_emp == exact else f"no: float32 {value_emp:.0f} vs exact {exact}"
        print(f"{n:>9}² {2 * n:>9}² {t_emp * 1e3:>9.2f}ms {t_api * 1e9:>7.0f}ns {t_py * 1e6:>7.2f}µs "
              f"{t_fn * 1e6:>8.2f}µs {t_emp / t_api:>8.0f}× {t_emp / t_py:>8.0f}× {t_emp / t_fn:>8.0f}×  {agree}")


def random_layers(kind: str, count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Columns of ``count`` random valid layers of a kind (keywords of its lambdified functions)."""
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
    for a, size in enumerate(output_sizes(symconv.cost_model(kind), cols)):
        cols[f"padding_{a}"] = np.where(size < 1, 0, cols[f"padding_{a}"])
    return cols


def by_hand(kind: str, convention: str, c: dict[str, np.ndarray]) -> np.ndarray:
    """The total (bias=True) written directly in numpy int64, with torch's validity checks: the yardstick.

    Exact counts use the numpy floor-sum counters for the cropped pairs A and the coverage Z.
    """
    transposed = kind.startswith("ConvTranspose")
    N, C_in, C_out, g = c["N"], c["C_in"], c["C_out"], c["groups"]
    ok = (N >= 1) & (C_in >= 1) & (C_out >= 1) & (g >= 1) & (C_in % g == 0) & (C_out % g == 0)
    out = K = S = Z = 1
    for a, L in (("0", c["H_in"]), ("1", c["W_in"])):
        k, s, p, d = c[f"kernel_size_{a}"], c[f"stride_{a}"], c[f"padding_{a}"], c[f"dilation_{a}"]
        ok &= (L >= 1) & (k >= 1) & (s >= 1) & (p >= 0) & (d >= 1)
        if transposed:
            op = c[f"output_padding_{a}"]
            ok &= (op >= 0) & ((op < s) | (op < d))
            Lo = (L - 1) * s - 2 * p + d * (k - 1) + op + 1
        else:
            Lo = (L + 2 * p - d * (k - 1) - 1) // s + 1
        ok &= Lo >= 1
        if convention == "exact" or (transposed and convention == "docs"):
            n = L if transposed else Lo
            right = p - op if transposed else (Lo - 1) * s + d * (k - 1) + 1 - L - p
            S = S * (n * k - vector_counters.lattice_count_int64(p, n, k, s, d)
                     - vector_counters.lattice_count_int64(right, n, k, s, d))
        if convention == "exact":
            coverage = vector_counters.transposed_coverage_int64 if transposed else vector_counters.plain_coverage_int64
            Z = Z * coverage(L, k, s, p, d, Lo)
        out, K = out * Lo, K * k
    if not ok.all():
        raise ValueError("invalid layer")
    psi = C_in * C_out // g
    if convention == "docs":
        additions = S - out if transposed else out * (K - 1)
        return N * (psi * (out * K + additions) + C_out * out * (C_in // g))
    return N * (psi * (2 * S - Z) + C_out * (Z * (C_in // g - 1) + out))


def throughput(count: int) -> None:
    rng = np.random.default_rng(0)
    print(f"{'':<16} {'':<6} {'lambdified':>14} {'by hand':>14} {'ratio':>6}  agree   ({count:,} random valid layers, "
          "best of three)")
    for kind, convention in (("Conv2d", "docs"), ("Conv2d", "exact"), ("ConvTranspose2d", "docs"),
                             ("ConvTranspose2d", "exact"), ("ConvTranspose2d", "macs")):
        fn = symconv.cost_model(kind).lambdify("total", convention=convention)
        cols = random_layers(kind, count, rng)
        mine, result = best_of_three(lambda: fn(**cols))
        line = f"  {kind:<16} {convention:<6} {count / mine:>12,.0f}/s"
        if convention != "macs":
            theirs, expected = best_of_three(lambda: by_hand(kind, convention, cols))
            agree = "yes" if np.array_equal(result, expected) else "NO"
            line += f" {count / theirs:>12,.0f}/s {mine / theirs:>5.2f}×  {agree}"
        print(line)


def best_of_three(fn) -> tuple[float, np.ndarray]:
    """(best seconds, result): the first run also pays for first-touch memory."""
    elapsed, result = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        result = fn()
        elapsed = min(elapsed, time.perf_counter() - start)
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 10**5 configurations")
    args = parser.parse_args()
    torch.set_num_threads(2)
    sizes = [64, 512] if args.quick else [64, 512, 1024, 2048, 4096]
    print("ConvTranspose2d(1, 1, 4, stride=2, padding=1): additions per filter, docs convention")
    layer_rows(sizes)
    print("\nlambdified total (bias=True), vectorised, beside the same total written by hand in numpy int64:")
    throughput(10 ** 5 if args.quick else 10 ** 6)


if __name__ == "__main__":
    main()
