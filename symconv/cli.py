"""The ``symconv`` command line.

Every sub-command turns bad input into one line on stderr and exit status 2;
no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from .constructor import parse_layer, parse_shape
from .conventions import CONVENTIONS

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad input to a command: printed as one line, exit status 2."""


def _count(args: argparse.Namespace) -> int:
    from .counts import count_layer
    from .latex import equation
    from .model import layer

    spec = parse_layer(args.layer)
    shape = parse_shape(args.input)
    conventions = list(CONVENTIONS) if args.convention == "all" else [args.convention]
    counts = [count_layer(spec, shape, c) for c in conventions]
    first = counts[0]
    batch_shape = (first.batch, spec.out_channels, *first.output_size)
    print(f"{spec.constructor()} on input {tuple(shape)} -> output {batch_shape}")
    if args.latex:
        model = layer(spec.kind)
        for c in counts:
            print(f"% convention: {c.convention}")
            for name, value in (("psi", c.psi), ("lambda", c.lam), ("gamma", c.gamma)):
                expr = model.quantity(name, convention=c.convention, bias=spec.bias)
                print(f"{equation(name, expr)} = {value}")
            additions = equation(r"\text{additions\_per\_filter}", model.quantity("additions", convention=c.convention))
            total = equation(rf"\text{{{spec.kind}}}_{{ops}}",
                             model.quantity("total", convention=c.convention, bias=spec.bias))
            print(f"{additions} = {c.additions}")
            print(f"{total} = {c.total}")
        return 0
    rows = [("psi", "psi"), ("multiplications", "multiplications"), ("additions", "additions"),
            ("lambda", "lambda"), ("gamma", "gamma"), ("total", "total")]
    print(f"{'':<16}" + "".join(f"{c.convention:>20}" for c in counts))
    for label, key in rows:
        print(f"{label:<16}" + "".join(f"{c.as_dict()[key]:>20}" for c in counts))
    if first.unreached:
        print(f"note: {first.unreached} output element(s) per filter receive no product; "
              "the docs convention counts -1 addition at each (its sum(y - 1) method)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from . import validate
    report = validate.run(workers=args.workers)
    print(report.text())
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symconv",
        description="Exact, symbolic operation counts for PyTorch convolution layers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("count", help="count one layer's operations",
                       description="Count one layer's operations: ψ, λ, γ, additions and the total.")
    p.add_argument("layer", help='the layer as its constructor call, e.g. "ConvTranspose2d(1, 1, 4, stride=2)"')
    p.add_argument("--input", required=True, metavar="SHAPE", help="input shape, comma-separated, e.g. 1,1,4,4")
    p.add_argument("--convention", default="docs", choices=[*CONVENTIONS, "all"],
                   help="counting convention (default: docs; all prints the three side by side)")
    p.add_argument("--latex", action="store_true", help="print the formulas in LaTeX with their values")
    p.set_defaults(run=_count)

    p = sub.add_parser("validate", help="check every closed form against torch on the default grid",
                       description="Measure the default grid with torch ones-convolutions and check every "
                                   "closed-form candidate and hybrid expression against it.")
    p.add_argument("--workers", type=int, default=None, help="processes to use (default: all cores)")
    p.set_defaults(run=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as err:
        print(f"symconv {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
