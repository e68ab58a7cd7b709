"""Find the math of a documentation page, and the labels around each piece, in one pass.

A page mixes display math (``$$…$$``, ``\\[…\\]``, ``\\begin{equation}…``) and inline
math (``\\(…\\)``, ``$…$`` within a paragraph). Every delimiter is found by one
regular-expression pass; each opener's closer is looked up by bisection in the list
of that closer's positions, so scanning costs O(n log n) in the page's length
however many delimiters are left unclosed.

A piece of math is labelled ``bias=True``/``bias=False`` and with a convention by
what the page says around it: the sentence just before it (inline math in that
sentence included), the ``=== "…"`` tab it sits in, or the heading above it,
nearest first.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\\\$|\$\$|\$|\\\[|\\\]|\\\(|\\\)|\\begin\{equation\*?\}|\\end\{equation\*?\}")
_CLOSER = {"$$": "$$", "$": "$", r"\[": r"\]", r"\(": r"\)",
           r"\begin{equation}": r"\end{equation}", r"\begin{equation*}": r"\end{equation*}"}
_DISPLAY = {"$$", r"\[", r"\begin{equation}", r"\begin{equation*}"}
_BOUNDARY = re.compile(r"[.!?](?=\s)|\n[ \t]*\n|^#+ .*$", re.M)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.M)
_TAB = re.compile(r'^[ \t]*===[+!]?\s+"([^"\n]*)"[ \t]*$', re.M)
_BIAS = re.compile(r"bias\}?\s*=\s*(?:\\text\s*\{\s*)?(True|False)")
_CONVENTION = re.compile(r"\b(docs|exact|macs)\b`?\s+convention|convention\W{0,3}(docs|exact|macs)\b", re.I)
MAX_CONTEXT = 600  # characters of a sentence read for labels


@dataclass(frozen=True)
class Math:
    """One piece of math: its body, where it sits, and the labels the page gives it."""

    start: int
    end: int
    body: str
    display: bool
    error: str = ""             # "unclosed \\[" when the page never closes it
    bias: bool | None = None    # the label around it, None when the page gives none
    convention: str | None = None


def _labels(text: str) -> tuple[bool | None, str | None]:
    """The last bias and convention a text states."""
    bias = convention = None
    for m in _BIAS.finditer(text):
        bias = m.group(1) == "True"
    for m in _CONVENTION.finditer(text):
        convention = (m.group(1) or m.group(2)).lower()
    return bias, convention


def scan(text: str) -> list[Math]:
    """Every piece of math of a page, in order, labelled."""
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
    positions: dict[str, list[int]] = {}
    for i, (_, _, tok) in enumerate(tokens):
        positions.setdefault(tok, []).append(i)
    spans: list[tuple[int, int, int, int, bool, str]] = []  # (start, end, body start, body end, display, error)
    i = 0
    while i < len(tokens):
        start, after, tok = tokens[i]
        closer = _CLOSER.get(tok)
        if closer is None:  # a closer alone, or an escaped dollar
            i += 1
            continue
        same = positions.get(closer, [])
        k = bisect.bisect_right(same, i)
        if k == len(same):
            if tok != "$":  # a lone $ is a dollar sign
                spans.append((start, after, after, min(len(text), after + 80), tok in _DISPLAY, f"unclosed {tok}"))
            i += 1
            continue
        j = same[k]
        body_end = tokens[j][0]
        if tok == "$" and re.search(r"\n[ \t]*\n", text[after:body_end]):
            i += 1  # inline math never spans paragraphs: this $ is a dollar sign
            continue
        spans.append((start, tokens[j][1], after, body_end, tok in _DISPLAY, ""))
        i = j + 1
    return _labelled(text, spans)


def _labelled(text: str, spans: list[tuple[int, int, int, int, bool, str]]) -> list[Math]:
    masked = list(text)
    for start, end, *_ in spans:
        masked[start:end] = " " * (end - start)
    masked_text = "".join(masked)
    boundaries = [m.end() for m in _BOUNDARY.finditer(masked_text)]
    headings = [(m.start(), m.group(2)) for m in _HEADING.finditer(masked_text)]
    heading_starts = [p for p, _ in headings]
    tabs = [(m.start(), m.end(), m.group(1)) for m in _TAB.finditer(masked_text)]
    tab_starts = [p for p, _, _ in tabs]
    out = []
    for start, end, body_start, body_end, display, error in spans:
        before = start  # the sentence before the math may end in a blank line: it still leads to it
        while before > 0 and masked_text[before - 1].isspace() and start - before < MAX_CONTEXT:
            before -= 1
        k = bisect.bisect_right(boundaries, before) - 1
        sentence_start = max(boundaries[k] if k >= 0 else 0, start - MAX_CONTEXT)
        bias, convention = _labels(text[sentence_start:start])
        tab = _enclosing_tab(text, tabs, tab_starts, start)
        k = bisect.bisect_right(heading_starts, start) - 1
        heading = headings[k][1] if k >= 0 else None
        for fallback in (tab, heading):
            if fallback is not None:
                b, c = _labels(fallback)
                bias = b if bias is None else bias
                convention = c if convention is None else convention
        out.append(Math(start, end, text[body_start:body_end], display, error, bias, convention))
    return out


def _enclosing_tab(text: str, tabs: list[tuple[int, int, str]], starts: list[int], position: int) -> str | None:
    """The title of the tab whose indented block holds the position."""
    k = bisect.bisect_right(starts, position) - 1
    if k < 0:
        return None
    _, tab_end, title = tabs[k]
    block = text[tab_end:position]
    if len(block) > 20000 or any(line.strip() and not line[:1].isspace() for line in block.split("\n")[1:]):
        return None
    return title
