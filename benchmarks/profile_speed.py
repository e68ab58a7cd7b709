"""End-to-end time of `symconv profile` on the 5-layer DCGAN generator, process start included.

Beside it, in the same run, the time of a bare `python -c "import torch"`: the floor any
torch-based profiler pays.

    python benchmarks/profile_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "symconv profile (DCGAN, 5 layers)": [sys.executable, "-m", "symconv", "profile",
                                          "symconv.frontends.examples:dcgan_generator", "--input", "1,100,1,1"],
    "symconv profile --convention all": [sys.executable, "-m", "symconv", "profile",
                                         "symconv.frontends.examples:dcgan_generator", "--input", "1,100,1,1",
                                         "--convention", "all"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    args = parser.parse_args()
    results = {name: [timed(cmd) for _ in range(args.runs)] for name, cmd in COMMANDS.items()}
    floor = min(results["python -c 'import torch'"])
    for name, times in results.items():
        print(f"{name:<38} min {min(times):.2f} s  median {statistics.median(times):.2f} s  "
              f"(x{min(times) / floor:.1f} of importing torch)")
    best = min(results["symconv profile (DCGAN, 5 layers)"])
    print(f"target < 2 s end to end: {'met' if best < 2 else 'missed'} ({best:.2f} s)")


if __name__ == "__main__":
    main()
