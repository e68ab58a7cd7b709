"""Read LaTeX (ours or the docs pages') back into SymPy expressions over symconv's symbols.

SymPy's lark parser does not read ``\\text{…}`` and splits multi-letter names, so
every known symbol is first swapped for a placeholder it does read
(``Q_{ab}``), parsed, and mapped back onto our symbols. The pages' variants of
the notation (``C_{\\text{in}}``, ``\\text{kernel\\_size[0]}``, ``\\left[ … \\right]``
as floor, ``\\small{…}`` wrappers) are normalised first.
"""

from __future__ import annotations

import re
from functools import lru_cache

import sympy as sp
from sympy.parsing.latex import parse_latex

from ..core.errors import SymconvError
from ..core.symbols import AXIS_LETTERS, LATEX_NAMES, SYMBOLS

GREEK_SYMBOLS = {r"\psi": sp.Symbol("psi"), r"\lambda": sp.Symbol("lambda"), r"\gamma": sp.Symbol("gamma")}
_WRAPPERS = ("small", "scriptsize", "footnotesize", "large", "Large", "normalsize", "displaystyle")
_PARAMS = ("kernel_size", "stride", "padding", "dilation", "output_padding")


def _aliases() -> dict[str, str]:
    """Page spellings -> our LaTeX spelling."""
    alias = {}
    for word in _PARAMS:
        tex = word.replace("_", r"\_")
        for i in range(3):  # \text{kernel\_size}[0], as symconv once wrote it, is the pages' \text{kernel\_size[0]}
            alias[rf"\text{{{tex}}}[{i}]"] = rf"\text{{{tex}[{i}]}}"
    letters = sorted({c for axes in AXIS_LETTERS.values() for c in axes} | {"C"})
    for c in letters:
        for io in ("in", "out"):
            for spelled in (rf"{c}_{{\text{{{io}}}}}", rf"{c}_\text{{{io}}}", rf"{c}_{{\mathrm{{{io}}}}}",
                            rf"{c}_\mathrm{{{io}}}"):
                alias[spelled] = rf"{c}_{{{io}}}"
    return alias


ALIASES = _aliases()


def strip_wrappers(tex: str) -> str:
    """``\\small{ x }`` -> ``x`` (balanced braces)."""
    for name in _WRAPPERS:
        while True:
            m = re.search(r"\\" + name + r"\s*\{", tex)
            if not m:
                break
            depth, i = 1, m.end()
            while i < len(tex) and depth:
                depth += {"{": 1, "}": -1}.get(tex[i], 0)
                i += 1
            tex = tex[:m.start()] + tex[m.end():i - 1] + tex[i:]
    return tex


def normalise(tex: str) -> str:
    """The pages' notation rewritten into ours, layout commands removed."""
    tex = strip_wrappers(tex)
    for old, new in sorted(ALIASES.items(), key=lambda kv: -len(kv[0])):
        tex = tex.replace(old, new)
    tex = tex.replace(r"\left[", r"\left\lfloor").replace(r"\right]", r"\right\rfloor")
    tex = re.sub(r"\\\\\s*$", "", tex.strip())          # a trailing line break
    tex = re.sub(r"\\(q?quad|,|;|!|:)\s*", " ", tex)    # spacing commands
    tex = re.sub(r"\\(mathrm|operatorname)\{", r"\\text{", tex)
    return tex.strip()


def _placeholder(i: int) -> str:
    return "Q_{" + "".join(chr(ord("a") + int(c)) for c in str(i)) + "}"  # the parser reads letters only


MAX_LENGTH = 20_000  # characters of one side of an equation
MAX_DEPTH = 100      # nesting of braces and \left … \right
MAX_EXPONENT = 64    # an integer power beyond this is "too large to check"
_UNSUPPORTED = (sp.Sum, sp.Product, sp.Integral, sp.Limit, sp.Derivative, sp.factorial, sp.factorial2,
                sp.gamma, sp.binomial)


class TooLarge(SymconvError):
    """The equation is readable but too large to check within the budget."""


def _depth(tex: str) -> int:
    depth = deepest = 0
    for m in re.finditer(r"\\left\b|\\right\b|[{}]", tex):
        depth += 1 if m.group() in ("{", r"\left") else -1
        deepest = max(deepest, depth)
    return deepest


def _screen(parsed: sp.Basic) -> None:
    """Refuse what would not evaluate in bounded time: sums, factorials, huge powers."""
    for node in sp.preorder_traversal(parsed):
        if isinstance(node, _UNSUPPORTED):
            raise TooLarge(f"{type(node).__name__.lower()} is beyond what the checker evaluates")
        if isinstance(node, sp.Pow):
            exponent = node.exp
            if not (exponent.is_Integer and abs(int(exponent)) <= MAX_EXPONENT):
                raise TooLarge(f"the power {node} is too large to check" if exponent.is_number
                               else f"the power {node} has a symbolic exponent")


def _evaluated(node: sp.Basic) -> sp.Basic:
    """The tree built unevaluated (safe to parse), now evaluated bottom-up."""
    if not node.args:
        return node
    return node.func(*(_evaluated(a) for a in node.args))


@lru_cache(maxsize=4096)
def parse(tex: str) -> sp.Expr:
    """Parse one side of an equation into an expression over symconv's symbols.

    Raises SymconvError with the reason when the text cannot be read, and TooLarge
    when it is readable but would not evaluate in bounded time (a power 2^{10^{10}}, a
    factorial, a sum).
    """
    if len(tex) > MAX_LENGTH:
        raise TooLarge(f"{len(tex):,} characters (at most {MAX_LENGTH:,})")
    if _depth(tex) > MAX_DEPTH:
        raise SymconvError(f"braces nested more than {MAX_DEPTH} deep")
    tex = normalise(tex)
    table = sorted(LATEX_NAMES.items(), key=lambda kv: -len(kv[1]))
    placeholders: dict[str, sp.Basic] = {}
    for i, (name, latex) in enumerate(table):
        if latex in tex:
            token = _placeholder(i)
            tex = tex.replace(latex, token)
            placeholders[token] = SYMBOLS[name]
    for j, (latex, symbol) in enumerate(GREEK_SYMBOLS.items()):
        if latex in tex:
            token = _placeholder(len(table) + j)
            tex = re.sub(re.escape(latex) + r"(?![a-zA-Z])", lambda _: token, tex)
            placeholders[token] = symbol
    leftover = re.findall(r"\\text\{([^}]*)\}", tex)
    if leftover:
        names = sorted({name.replace("\\_", "_") for name in leftover})
        raise SymconvError(f"unknown name{'s' if len(names) > 1 else ''} {', '.join(names)}")
    try:
        with sp.evaluate(False):  # nothing is computed while parsing: 2^{10^{10}} stays a tree
            parsed = parse_latex(tex, backend="lark")
    except Exception as err:  # the lark parser raises many kinds of errors
        raise SymconvError(f"the LaTeX parser cannot read it ({type(err).__name__})") from None
    if not isinstance(parsed, sp.Expr):
        raise SymconvError(f"it reads as {type(parsed).__name__}, not an expression")
    _screen(parsed)
    mapping = {}
    for s in parsed.free_symbols:
        if str(s) not in placeholders:
            raise SymconvError(f"unknown symbol {s}")
        mapping[s] = placeholders[str(s)]
    return _evaluated(parsed.xreplace(mapping))
