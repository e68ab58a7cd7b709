"""The ``symconv`` command line.

Every sub-command turns bad input (a :class:`~symconv.SymconvError`) into one line
on stderr and exit status 2. Any other exception is a bug in symconv and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import ast
import sys
from typing import Any, Sequence

from ..core.errors import SymconvError
from ..core.names import CONVENTION_NAMES, unit_of
from ..core.text import formula_text, sizes_text
from .parsing import parse_layer, parse_shape

EXIT_BAD_INPUT = 2
_PLOT_NEEDS_NAMES = "--plot draws a cost against input sizes: give sizes as names, e.g. --input 1,3,H,W"


def _count(args: argparse.Namespace) -> int:
    from ..numeric.layer_counts import count_layer

    spec = parse_layer(args.layer)
    shape = parse_shape(args.input)
    sizes = _plot_sizes(args)
    conventions = list(CONVENTION_NAMES) if args.convention == "all" else [args.convention]
    counts = [count_layer(spec, shape, c) for c in conventions]
    first = counts[0]
    domain = getattr(first, "domain", None)
    lines = None
    if args.plot:  # checked before anything is printed
        if domain is None:
            raise SymconvError(_PLOT_NEEDS_NAMES)
        from ..core.sizes import Formula
        lines = _plot_lines({c.convention: Formula(c.total, c.domain, unit=unit_of(c.convention)) for c in counts},
                            sizes)
    batch_shape = (first.batch, spec.out_channels, *first.output_size)
    print(f"{spec.constructor()} on input {sizes_text(shape)} -> output {sizes_text(batch_shape)}")
    if domain is not None:
        _count_formulas(args, spec, counts)
    elif args.latex:
        _count_latex(spec, counts)
    else:
        _table({c.convention: c.as_dict() for c in counts},
               ("psi", "multiplications", "additions", "lambda", "gamma", "total"))
        if first.unreached:
            print(f"note: {first.unreached} output element(s) per filter receive no product; "
                  "the docs convention counts -1 addition at each (its sum(y - 1) method)")
    if args.backward:
        _count_gradients(args, spec, shape, conventions, domain)
    if lines is not None:
        _draw(lines, args.plot, spec.constructor())
    return 0


def _table(values: dict[str, dict[str, int]], rows: Sequence[str]) -> None:
    """Quantities (rows) by convention (columns), with thousands separators; a column widens to its widest
    number, so that a count of an extreme input stays aligned."""
    label = max(16, *(len(key) + 1 for key in rows))
    widths = [max(20, *(len(f"{v[key]:,}") + 2 for key in rows)) for v in values.values()]
    print(" " * label + "".join(f"{c:>{w}}" for c, w in zip(values, widths)))
    for key in rows:
        print(f"{key:<{label}}" + "".join(f"{v[key]:>{w},}" for v, w in zip(values.values(), widths)))


def _count_gradients(args, spec, shape, conventions: list[str], domain) -> None:
    """The gradients a training step asks of the layer, per convention: numbers, or formulas where the sizes are
    names (they hold within the forward count's domain), or LaTeX."""
    from ..core.backward import GRADIENT_LATEX, gradients
    from ..core.latex import equation
    from ..core.model import cost_model
    from ..core.sizes import Formula
    from ..numeric.layer_counts import count_gradients
    counts = {c: count_gradients(spec, shape, c) for c in conventions}
    print("% backward pass" if args.latex else "backward pass (gradients of the input, the weight and the bias):")
    if domain is None and not args.latex:
        _table(counts, list(GRADIENT_LATEX))
        return
    model = cost_model(spec.kind)
    for convention, values in counts.items():
        print(f"% convention: {convention}" if args.latex else f"convention {convention}:")
        general = gradients(model, convention) if domain is None else {}  # the pages' symbols, for numbers only
        for which, lhs in GRADIENT_LATEX.items():
            if domain is not None:
                value = Formula(values[which], domain, unit=unit_of(convention)).readable()
                print(equation(lhs, value) if args.latex else f"  {which:<16} {formula_text(value)}")
            else:  # the pages' symbols, then the value
                expr = general[which]
                print(equation(lhs, values[which]) if expr.is_number else f"{equation(lhs, expr)} = {values[which]}")


def _count_latex(spec, counts) -> None:
    """Each quantity as the pages write it, then its value; never ``x = x`` nor ``0 = 0``."""
    from ..core.latex import equation
    from ..core.model import cost_model
    model = cost_model(spec.kind)
    for c in counts:
        print(f"% convention: {c.convention}")
        for name, lhs, value in (("psi", "psi", c.psi), ("lambda", "lambda", c.lam), ("gamma", "gamma", c.gamma),
                                 ("additions", r"\text{additions\_per\_filter}", c.additions),
                                 ("total", rf"\text{{{spec.kind}}}_{{ops}}", c.total)):
            expr = model.resolve(model.quantity(name, convention=c.convention, bias=spec.bias), through="additions")
            print(f"{equation(lhs, value)}" if expr.is_number else f"{equation(lhs, expr)} = {value}")


def _count_formulas(args, spec, counts) -> None:
    """A layer's counts on symbolic sizes: formulas per convention, or LaTeX."""
    from ..core.latex import equation
    from ..core.sizes import Formula
    labels = (("psi", "psi"), ("multiplications", r"\text{multiplications}"), ("additions", r"\text{additions}"),
              ("lambda", "lambda"), ("gamma", "gamma"), ("total", rf"\text{{{spec.kind}}}_{{ops}}"))
    formulas = {c.convention: {key: Formula(value, c.domain, unit=unit_of(c.convention))
                               for key, value in c.as_dict().items()} for c in counts}
    domain = next(iter(formulas.values()))["total"].conditions()
    for convention, quantities in formulas.items():
        print(f"% convention: {convention}" if args.latex else f"convention {convention}:")
        for key, lhs in labels:
            if args.latex:
                print(equation(lhs, quantities[key].readable()))
            else:
                print(f"  {key:<16} {formula_text(quantities[key].readable())}")
    print(("% " if args.latex else "") + "for sizes where " + (", ".join(domain) or "every size is positive"))


_SIZES = "8:512"  # the input sizes --plot spans by default


def _plot_sizes(args: argparse.Namespace) -> range | None:
    """The input sizes --plot spans, checked before anything is counted or printed; None without --plot."""
    if args.plot is None:
        if args.sizes is not None:
            raise SymconvError("--sizes sets the input sizes --plot spans: give --plot FILE too")
        return None
    text = args.sizes or _SIZES
    try:
        start, stop, *step = (int(v) for v in text.split(":"))
        if len(step) > 1:
            raise ValueError(text)
    except ValueError:
        raise SymconvError(f"--sizes {text!r} must be START:STOP or START:STOP:STEP (integers)") from None
    step = step[0] if step else max(1, (stop - start) // 64)
    if not 1 <= start <= stop or step < 1:
        raise SymconvError(f"--sizes {text!r} must have 1 <= START <= STOP and a STEP of at least 1")
    return range(start, stop + 1, step)


def _plot_lines(formulas: dict, values: range) -> dict[str, list[tuple[int, int]]]:
    """Each convention's line of cost against input size (every size name set to the same value), worked out before
    anything is printed or written: a size range outside the domain, or a missing matplotlib, is refused first."""
    from .figures import pyplot
    pyplot()
    lines = {}
    for convention, formula in formulas.items():
        points = []
        for v in values:
            try:
                points.append((v, formula(**{s.name: v for s in formula.names})))
            except SymconvError:  # outside the domain: no point
                continue
        if not points:
            raise SymconvError(f"no size from {values.start} to {values.stop - 1} is inside the domain: "
                               f"{', '.join(formula.conditions())}")
        lines[f"{convention} ({formula.unit})"] = points
    return lines


def _draw(lines: dict[str, list[tuple[int, int]]], path: str, title: str) -> None:
    """The lines as a PNG; where it went is said on stderr, so that stdout holds the output format alone."""
    from .figures import pyplot, save
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for label, points in lines.items():
        ax.plot(*zip(*points), label=label)
    ax.set_xlabel("input size (every size name)")
    ax.set_ylabel("count (see each line's unit)")
    ax.set_title(title, fontsize=8)
    ax.legend()
    save(fig, path)
    print(f"wrote {path}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    from ..oracle import validate
    report = validate.run(workers=args.workers)
    print(report.text())
    return 0 if report.ok else 1


def _check_docs(args: argparse.Namespace) -> int:
    from .docs_check import check_pages
    reports = check_pages(args.pages, args.layer)
    print("\n\n".join(r.text() for r in reports))
    if any(r.wrong for r in reports):
        return 1
    return EXIT_BAD_INPUT if any(r.error for r in reports) else 0


def _site(args: argparse.Namespace) -> int:
    import time

    from .site import build_site
    start = time.perf_counter()
    out = build_site(args.out, args.katex)
    pages = sum(1 for _ in out.rglob("*.html"))
    print(f"built {pages} pages into {out} in {time.perf_counter() - start:.1f} s; open {out / 'index.html'}")
    return 0


def _derive(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .derive import generate
    out = Path(args.out or ("derivations" if args.style == "derivation" else "pages"))
    if out.exists() and not out.is_dir():  # said before the generation's seconds, not after
        raise SymconvError(f"--out {str(out)!r} is a file: give a folder")
    files = generate(style=args.style)
    if args.check:
        stale = [name for name, text in files.items()
                 if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"{out / name}: differs from what symconv derive generates")
        return 1 if stale else 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
            print(f"wrote {out / name}")
    except OSError as err:
        raise SymconvError(f"cannot write {str(err.filename or out)!r}: {err.strerror}") from None
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain, plot
    spec = parse_layer(args.layer)
    shape = parse_shape(args.input)
    position = _position(args.at) if args.at else None
    text = explain(spec, shape, position)
    if args.plot:  # before the text is printed: a map too large to plot is refused with nothing printed
        plot(spec, shape, args.plot)
    print(text)
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _position(text: str) -> tuple[int, ...]:
    """``--at``: an output position, comma-separated indices (not a shape: 0 and negative numbers are indices)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SymconvError(f"--at {text!r} must be comma-separated integers, one per spatial axis, e.g. 0,1") from None


def _profile(args: argparse.Namespace) -> int:
    from ..tracing.profiler import profile
    from .loading import load_model
    inputs, dtypes = _inputs(args.input, _options(args.option))
    sizes = _plot_sizes(args)
    model = load_model(args.model)
    every = args.convention == "all"
    result = profile(model, inputs, "docs" if every else args.convention, all_conventions=every,
                     backward=args.backward, hints=_hints(args.hint), dtype=dtypes)
    if args.plot and not result.symbolic:
        raise SymconvError(_PLOT_NEEDS_NAMES)
    text = {"table": result.table, "csv": result.to_csv, "markdown": result.to_markdown, "latex": result.to_latex,
            "json": result.to_json}[args.format](depth=args.depth)
    if args.plot:  # after the text, which checks --depth: nothing is written before every check has passed
        _draw(_plot_lines({c: result.formula(c) for c in result.conventions}, sizes), args.plot, result.model_type)
    print(text.rstrip("\n"))
    return 0


def _inputs(texts: list[str], options: dict[str, Any]) -> tuple[Any, Any]:
    """``--input`` values as profile() takes them: a shape, a list of shapes, or, where every one is written
    ``NAME=SHAPE``, a dict by name, followed by the ``--option`` values; and their dtypes alike."""
    parsed = [_input(text) for text in texts]
    names = [name for name, _, _ in parsed]
    if options and not all(names):
        raise SymconvError("--option passes an argument by name: give the inputs by name too (--input x=1,3,8,8)")
    if all(names):
        given = {n: shape for n, shape, _ in parsed}
        both = sorted(given.keys() & options.keys())
        if both:
            raise SymconvError(f"{both[0]!r} is given both by --input and by --option")
        return {**given, **options}, {n: dtype for n, _, dtype in parsed if dtype is not None}
    if any(names):
        raise SymconvError("--input: name every input (NAME=SHAPE, passed by name) or none (passed in order)")
    shapes = [shape for _, shape, _ in parsed]
    return shapes[0] if len(shapes) == 1 else shapes, [dtype for _, _, dtype in parsed]


def _input(text: str) -> tuple[str, tuple, Any]:
    """``ids=2,16:int64`` as ('ids', (2, 16), torch.int64); without a name, ''; without a dtype, None (the
    model's)."""
    import torch
    name, equals, rest = text.partition("=") if "=" in text else ("", "", text)
    if equals and not name.strip().isidentifier():
        raise SymconvError(f"--input {text!r}: {name.strip()!r} is not an argument name")
    shape, colon, kind = rest.rpartition(":") if ":" in rest else (rest, "", "")
    dtype = getattr(torch, kind.strip(), None) if colon else None
    if colon and not isinstance(dtype, torch.dtype):
        raise SymconvError(f"--input {text!r}: {kind.strip()!r} is not a torch dtype (e.g. int64, float16, bfloat16)")
    return name.strip(), parse_shape(shape), dtype


def _options(items: list[str] | None) -> dict[str, Any]:
    """``--option`` items as {name: value}: ``scale=0.5`` as 0.5, ``cache={}`` as a dict, a value that is no
    Python literal (``mode=large``) as its text."""
    options: dict[str, Any] = {}
    for item in items or ():
        name, equals, text = item.partition("=")
        if not equals or not name.strip().isidentifier():
            raise SymconvError(f"--option {item!r} must be NAME=VALUE, e.g. mode=large or scale=0.5")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = text.strip()
        options[name.strip()] = value
    return options


def _hints(items: list[str] | None) -> dict[str, int] | None:
    """``H=224`` items as {'H': 224}."""
    if not items:
        return None
    hints = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name.strip() or not value.strip().isascii() or not value.strip().isdigit():
            raise SymconvError(f"--hint {item!r} must be NAME=INTEGER, e.g. H=224")
        hints[name.strip()] = int(value)
    return hints


def _layer_arguments(p: argparse.ArgumentParser, names: bool = True) -> None:
    """The layer as a constructor call and its input shape, shared by count and explain (sizes as ``names`` too)."""
    p.add_argument("layer", help='the layer as its constructor call, e.g. "ConvTranspose2d(1, 1, 4, stride=2)"')
    p.add_argument("--input", required=True, metavar="SHAPE",
                   help="input shape, comma-separated, e.g. 1,1,4,4" + (
                       "; sizes may be names or expressions (1,512,H,W or 1,3,8*h,8*w): the counts are then "
                       "formulas in them" if names else ""))


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    """--plot and the sizes it spans, shared by count and profile."""
    p.add_argument("--plot", metavar="FILE", help="with sizes as names: save a PNG of the total against the input "
                                                  "size (needs matplotlib)")
    p.add_argument("--sizes", metavar="START:STOP[:STEP]",
                   help=f"the input sizes --plot spans (default {_SIZES})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symconv",
        description="Exact, symbolic operation counts for PyTorch convolution layers.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"symconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("count", help="count one layer's operations",
                       description="Count one layer's operations: ψ, λ, γ, additions and the total.")
    _layer_arguments(p)
    p.add_argument("--convention", default="docs", choices=[*CONVENTION_NAMES, "all"],
                   help="counting convention (default: docs; all prints the three side by side)")
    p.add_argument("--latex", action="store_true", help="print the formulas in LaTeX with their values")
    p.add_argument("--backward", action="store_true",
                   help="also count the gradients a training step asks of the layer: grad_input, grad_weight, "
                        "grad_bias")
    _plot_arguments(p)
    p.set_defaults(run=_count)

    p = sub.add_parser("profile", help="count every operator a model runs",
                       description="Count every operator a torch model runs on an input (convolutions, their "
                                   "gradients, matrix products, attention), per module at every depth, on the meta "
                                   "device: nothing is computed and the model is not modified.")
    p.add_argument("model", metavar="SOURCE:ATTR",
                   help="an importable model, or a class or function building one with no arguments: "
                        "package.module:attr or path/to/file.py:attr, e.g. "
                        "symconv.frontends.examples:dcgan_generator")
    p.add_argument("--input", required=True, action="append", metavar="[NAME=]SHAPE[:DTYPE]",
                   help="input shape, comma-separated, e.g. 1,100,1,1; sizes may be names or expressions "
                        "(1,3,H,W or 1,3,32*h,32*w): the counts are then formulas in them. A dtype may follow "
                        "(2,16:int64 for token ids; default: the model's). Repeat for each argument of forward, "
                        "in order, or each by name (ids=2,16:int64 --input mask=2,16)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="an argument of forward that holds no tensor, passed by name (the inputs then by name too): "
                        "a Python literal (scale=0.5, cache={}, mask=None) or else text (mode=large); repeatable")
    p.add_argument("--hint", action="append", metavar="NAME=SIZE",
                   help="with sizes as names: the size at which the model's branches are taken "
                        "(default: distinct sizes from 256 up); repeatable")
    _plot_arguments(p)
    p.add_argument("--convention", default="docs", choices=[*CONVENTION_NAMES, "all"],
                   help="counting convention (default: docs; all adds a total column per convention)")
    p.add_argument("--backward", action="store_true",
                   help="also count a training step's backward pass (gradients of parameters and inputs)")
    p.add_argument("--depth", type=int, default=None, metavar="N",
                   help="fold the module hierarchy below depth N (the model is depth 0)")
    p.add_argument("--format", default="table", choices=["table", "csv", "markdown", "latex", "json"],
                   help="output format (default: table)")
    p.set_defaults(run=_profile)

    p = sub.add_parser("derive", help="generate the per-layer derivations (Markdown + LaTeX)",
                       description="Write one Markdown page per layer kind. --style derivation (default): the "
                                   "formulas of every convention, the count map's closed forms by case, common "
                                   "families in the input size and the validation figures of the default grid. "
                                   "--style moduleprofiler: pages in the moduleprofiler documentation's structure "
                                   "(Complexity, ψ, λ, γ by bias, total, a summary box with bias tabs, a glossary) "
                                   "for Material for MkDocs with pymdownx.arithmatex.")
    p.add_argument("--style", choices=("derivation", "moduleprofiler"), default="derivation",
                   help="derivation (default) or moduleprofiler")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: derivations, or pages for --style moduleprofiler)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if the files in DIR differ from what would be generated")
    p.set_defaults(run=_derive)

    p = sub.add_parser("site", help="build the documentation site (offline, KaTeX served from the site)",
                       description="Generate the pages (moduleprofiler style and derivations), the conventions and "
                                   "the peer comparison, and build them with MkDocs and Material into DIR. Needs "
                                   "the docs extra (pip install 'symconv[docs]') and KaTeX: --katex, "
                                   "$SYMCONV_KATEX, or npm to fetch it once.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to build into (replaced if it holds a site)")
    p.add_argument("--katex", metavar="PATH", help="KaTeX's dist folder, or the tarball `npm pack katex` writes")
    p.set_defaults(run=_site)

    p = sub.add_parser("check-docs", help="check a documentation page's equations against the engine",
                       description="Read every display equation of a page ($$…$$, \\[…\\], equation "
                                   "environments) and every inline one that states a quantity, with the labels "
                                   "around it (bias=True/False, a convention), and give each a verdict: proven, "
                                   "docs only, wrong (with a layer where it fails), unproven (with the space "
                                   "searched), not understood (with the reason) or too large to check. Exit "
                                   "status 1 when any equation is wrong, 2 when a page could not be checked.")
    p.add_argument("pages", nargs="+", metavar="PAGE", help="Markdown or text file")
    p.add_argument("--layer", metavar="KIND", help="the layer the pages document, e.g. Conv1d (for a page that "
                                                   "does not name its torch.nn layer)")
    p.set_defaults(run=_check_docs)

    p = sub.add_parser("explain", help="show how a layer computes each output",
                       description="Print the per-axis and n-d count maps of a layer, its additions under each "
                                   "convention and, with --at, which input elements meet which kernel taps at "
                                   "one output position.")
    _layer_arguments(p, names=False)
    p.add_argument("--at", metavar="POSITION", help="an output position, comma-separated spatial indices, e.g. 0,1")
    p.add_argument("--plot", metavar="FILE", help="also save a PNG heatmap of the count map (needs matplotlib)")
    p.set_defaults(run=_explain)

    p = sub.add_parser("validate", help="check every closed form against torch on the default grid",
                       description="Measure the default grid with torch ones-convolutions and check every "
                                   "closed-form candidate and hybrid expression against it.")
    p.add_argument("--workers", type=int, default=None, help="processes to use (default: one per core, up to 8)")
    p.set_defaults(run=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(sys, "set_int_max_str_digits"):  # counts print in full, however many digits they have
        sys.set_int_max_str_digits(0)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SymconvError as err:
        print(f"symconv {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
