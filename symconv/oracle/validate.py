"""Check every closed-form candidate, and the hybrid expressions, against the torch oracle.

For each candidate: the points checked, the points inside its declared
condition, disagreements inside (a candidate with any is rejected) and outside,
and the first counterexamples. For the hybrids: disagreements on the whole grid
(must be none) and the share of the grid that closed forms resolve without
the exact counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import sympy as sp

from ..core import overlap
from ..core.model import CostModel, cost_model
from ..core.names import kind_of
from ..numeric.compile import evaluate_on_columns
from .grid import Point, default_grid
from .ones import Measured, measure_all

MAX_EXAMPLES = 3


@dataclass
class CandidateResult:
    name: str
    kind: str
    quantity: str
    note: str
    in_hybrid: bool
    checked: int = 0
    inside: int = 0
    wrong_inside: int = 0
    wrong_outside: int = 0
    examples_inside: list[str] = field(default_factory=list)
    examples_outside: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.wrong_inside == 0

    def merge(self, other: "CandidateResult") -> None:
        for name in ("checked", "inside", "wrong_inside", "wrong_outside"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.examples_inside = (self.examples_inside + other.examples_inside)[:MAX_EXAMPLES]
        self.examples_outside = (self.examples_outside + other.examples_outside)[:MAX_EXAMPLES]


@dataclass
class HybridResult:
    kind: str
    points: int
    wrong: dict[str, int]
    closed_S: int
    closed_Z: int
    closed_all: int


@dataclass
class Report:
    points: int
    candidates: list[CandidateResult]
    hybrids: list[HybridResult]

    @property
    def ok(self) -> bool:
        return all(c.accepted or not c.in_hybrid for c in self.candidates) and \
            not any(sum(h.wrong.values()) for h in self.hybrids)

    def coverage(self) -> tuple[int, int]:
        """(points resolved entirely by closed forms, points) over every layer kind."""
        return sum(h.closed_all for h in self.hybrids), sum(h.points for h in self.hybrids)

    def text(self) -> str:
        """The report as aligned text (what ``symconv validate`` prints)."""
        lines = [f"grid: {self.points} layers measured by torch ones-convolutions (float64, exact)", "",
                 "candidates:"]
        for c in self.candidates:
            verdict = "accepted" if c.accepted else "REJECTED"
            lines.append(f"  [{verdict}] {c.kind:<15} {c.quantity:<14} {c.name}")
            lines.append(f"      checked {c.checked}, inside condition {c.inside}, "
                         f"wrong inside {c.wrong_inside}, wrong outside {c.wrong_outside}")
            for ex in c.examples_inside:
                lines.append(f"      counterexample inside: {ex}")
            for ex in c.examples_outside[:1]:
                lines.append(f"      outside, e.g.: {ex}")
        lines += ["", "hybrid expressions (closed forms, exact counter elsewhere):"]
        for h in self.hybrids:
            wrong = ", ".join(f"{q} {n}" for q, n in h.wrong.items())
            lines.append(f"  {h.kind:<15} {h.points:>5} layers; disagreements: {wrong}; closed form: "
                         f"S {h.closed_S / h.points:.1%}, Z {h.closed_Z / h.points:.1%}, "
                         f"all {h.closed_all / h.points:.1%}")
        closed, total = self.coverage()
        lines.append(f"  closed-form coverage of the grid: {closed}/{total} = {closed / total:.1%}")
        lines.append("")
        lines.append("OK: every accepted candidate and every hybrid agrees with torch" if self.ok
                     else "FAILED: a hybrid candidate or a hybrid disagrees with torch")
        return "\n".join(lines)


def _columns(model: CostModel, points: Sequence[Point]) -> dict[str, np.ndarray]:
    """Keyword arrays for a model's numeric functions (channels and batch set to 1)."""
    cols: dict[str, np.ndarray] = {n: np.ones(len(points), dtype=np.int64) for n in ("N", "C_in", "C_out", "groups")}
    for a, ax in enumerate(model.axes):
        for field_name, sym in (("L", ax.L), ("k", ax.k), ("s", ax.s), ("p", ax.p), ("d", ax.d), ("op", ax.op)):
            if sym in model.parameters():
                cols[sym.name] = np.array([getattr(pt, field_name)[a] for pt in points], dtype=np.int64)
    return cols


def _truth(model: CostModel, measured: Sequence[Measured], quantity: str) -> np.ndarray:
    if quantity == "docs_additions":
        return np.array([m.docs_additions for m in measured], dtype=np.int64)
    return np.array([getattr(m, quantity) for m in measured], dtype=np.int64)


def check_group(model: CostModel, points: Sequence[Point], measured: Sequence[Measured]
                ) -> tuple[list[CandidateResult], HybridResult]:
    """Check every candidate and the hybrids on points of one layer kind."""
    cols = _columns(model, points)
    results = []
    for cand in overlap.CANDIDATES:
        if cand.transposed != model.transposed:
            continue
        if cand.quantity in ("S", "Z") and model.ndim != 1:
            continue  # per-axis candidates are checked where the grid is exhaustive
        expr, cond = cand.build(model.axes)
        value = evaluate_on_columns(model, expr, cols)
        inside = evaluate_on_columns(model, sp.Piecewise((1, cond), (0, True)), cols).astype(bool)
        truth = _truth(model, measured, cand.quantity)
        wrong = value != truth
        res = CandidateResult(cand.name, model.kind, cand.quantity, cand.note, cand.in_hybrid, len(points),
                              int(inside.sum()), int((wrong & inside).sum()), int((wrong & ~inside).sum()))
        for mask, sink in ((wrong & inside, res.examples_inside), (wrong & ~inside, res.examples_outside)):
            for i in np.flatnonzero(mask)[:MAX_EXAMPLES]:
                sink.append(f"{points[i].describe()}: candidate {value[i]}, torch {truth[i]}")
        results.append(res)
    return results, check_hybrid(model, points, measured, cols)


def check_hybrid(model: CostModel, points: Sequence[Point], measured: Sequence[Measured],
                 cols: dict[str, np.ndarray]) -> HybridResult:
    """The hybrids of ΠS, ΠZ and the docs additions against torch, and where they stay closed."""
    prod_s, prod_z = model.sum_elements, model.reached_elements
    docs_additions = model.additions("docs") if model.transposed else prod_s - model.out_elements
    wrong = {name: int((evaluate_on_columns(model, expr, cols) != _truth(model, measured, truth)).sum())
             for name, expr, truth in (("S", prod_s, "S"), ("Z", prod_z, "Z"),
                                       ("docs", docs_additions, "docs_additions"))}
    s_closed = sp.And(*(overlap.s_closed_condition(a, model.transposed) for a in model.axes))
    z_closed = sp.And(*(z_closed_condition(a, model.transposed) for a in model.axes))
    flag = lambda cond: evaluate_on_columns(model, sp.Piecewise((1, cond), (0, True)), cols).astype(bool)  # noqa: E731
    s_ok, z_ok = flag(s_closed), flag(z_closed)
    return HybridResult(model.kind, len(points), wrong, int(s_ok.sum()), int(z_ok.sum()), int((s_ok & z_ok).sum()))


def z_closed_condition(ax, transposed: bool) -> sp.Basic:
    """Where the hybrid Z of an axis resolves without a counter (a branch using S needs S closed too)."""
    counters = (overlap.LatticeCount, overlap.TransposedCoverage, overlap.PlainCoverage)
    s_closed = overlap.s_closed_condition(ax, transposed)
    pieces = overlap.hybrid_z(ax, transposed).args[:-1]
    return sp.Or(*(sp.And(c, s_closed) if e.has(*counters) else c for e, c in pieces))


def run(points: Sequence[Point] | None = None, workers: int | None = None,
        progress: bool | None = None) -> Report:
    """Measure the grid with torch (in ``workers`` processes; None: one per core, up to 8) and check every candidate
    and hybrid on it."""
    points = list(default_grid() if points is None else points)
    measured = measure_all(points, workers=workers, progress=progress)
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, (pt, m) in enumerate(zip(points, measured)):
        if m is not None:
            groups.setdefault((pt.ndim, pt.transposed), []).append(i)
    merged: dict[tuple[str, str], CandidateResult] = {}
    hybrids = []
    for (ndim, transposed), idx in sorted(groups.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
        model = cost_model(kind_of(ndim, transposed))
        cands, hybrid = check_group(model, [points[i] for i in idx], [measured[i] for i in idx])
        hybrids.append(hybrid)
        for c in cands:
            key = (c.name, "ConvTranspose" if transposed else "Conv")
            if key in merged:
                merged[key].merge(c)
            else:
                c.kind = key[1]
                merged[key] = c
    return Report(len(points), list(merged.values()), hybrids)
