"""A model's profile and its views: per module at every depth, per operator, and what was not counted.

:class:`Profile` holds the records of one run (:mod:`.counting_mode`) and renders
them: ``print(profile)`` shows the module hierarchy with totals; ``to_csv``,
``to_markdown``, ``to_latex``, ``to_json`` and ``to_dataframe`` export them. Numbers
are exact integers, printed with thousands separators, and totals also in units
(``10.29 GFLOPs``, ``5.14 GMACs``).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence

from ..core.errors import SymconvError
from ..core.names import convention_name, unit_of
from ..core.text import formula_text, sizes_text
from .counting_mode import DATA_MOVEMENT, Record

NOT_COUNTED = "not counted"
_PREFIXES = ((10 ** 15, "P"), (10 ** 12, "T"), (10 ** 9, "G"), (10 ** 6, "M"), (10 ** 3, "K"))


unit = unit_of


def readable(value: int, convention: str) -> str:
    """``10290000000`` -> ``'10.29 GFLOPs'`` (``'GMACs'`` under macs)."""
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit(convention)}"
    return f"{value} {unit(convention)}"


def _counted(value: int, convention: str) -> str:
    """``10290000000`` -> ``'10,290,000,000 FLOPs = 10.29 GFLOPs'`` (no units repeated below a thousand)."""
    return f"{value:,} {unit(convention)}" + (f" = {readable(value, convention)}" if abs(value) >= 1000 else "")


def _int(value: Any) -> str:
    if value is None:
        return ""
    if getattr(value, "is_Integer", False):  # a symbolic profile's count that does not depend on the sizes
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else _formula_text(value)


@lru_cache(maxsize=4096)  # a symbolic table prints a model's repeated blocks' formulas again and again
def _formula_text(value: Any) -> str:
    return formula_text(value)


def shape_text(shape: Any) -> str:
    """A shape as text, ``(2, 3, H, W)``; an input made of several tensors in its own structure, ``[(2, 8),
    (2, 4)]`` or ``{image: (1, 3, 8, 8)}``; an option (a value passed as itself) as its text."""
    if isinstance(shape, str):
        return shape
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {shape_text(v)}" for k, v in shape.items()) + "}"
    if isinstance(shape, list):
        return "[" + ", ".join(map(shape_text, shape)) + "]"
    if isinstance(shape, tuple) and shape and all(isinstance(v, (tuple, list, dict)) for v in shape):
        return "(" + ", ".join(map(shape_text, shape)) + ("," if len(shape) == 1 else "") + ")"
    return sizes_text(shape)


def inputs_text(shapes: Sequence[Any], names: Sequence[str]) -> str:
    """Input shapes as a call writes them: the positional ones, then the last ``len(names)`` as ``name=shape``."""
    texts = [shape_text(s) for s in shapes]
    split = len(texts) - len(names)
    return ", ".join(texts[:split] + [f"{n}={t}" for n, t in zip(names, texts[split:])])


def _listed(shape: Any) -> Any:
    """A shape for JSON: tuples as lists, at any depth."""
    if isinstance(shape, dict):
        return {k: _listed(v) for k, v in shape.items()}
    return [_listed(v) for v in shape] if isinstance(shape, (tuple, list)) else shape


@dataclass
class ModuleInfo:
    """A module of the model: its name (fully qualified, "" for the model), class and parameters."""

    name: str
    type: str
    parameters: int

    @property
    def depth(self) -> int:
        return 0 if not self.name else self.name.count(".") + 1


@dataclass
class Profile:
    """Every operator a model ran, counted or not, and the views of them."""

    records: list[Record]
    conventions: tuple[str, ...]
    run: str                        # "meta", or "real values" (the user's example, under no_grad unless backward)
    modules: dict[str, ModuleInfo]  # in the model's order
    model_type: str
    input_shapes: tuple[Any, ...]  # per argument: its shape (its tensors' in its structure), an option's text
    backward: bool = False
    domain: tuple = ()   # symbolic sizes: the conditions under which the counts hold
    hints: str = ""      # symbolic sizes: the values torch's tracing branched at
    input_names: tuple[str, ...] = ()  # the names of the last inputs, which forward took by name

    @property
    def symbolic(self) -> bool:
        return self.run == "symbolic"

    @property
    def convention(self) -> str:
        return self.conventions[0]

    @property
    def counted(self) -> list[Record]:
        return [r for r in self.records if r.counted is not None]

    def _counted_convention(self, convention: str | None) -> str:
        """A convention this profile counted, by its name in any case (the first one for None)."""
        if convention is None:
            return self.convention
        name = convention_name(convention)
        if name not in self.conventions:
            raise SymconvError(f"convention={convention!r} was not counted; this profile has "
                               f"{', '.join(self.conventions)} (all_conventions=True counts all three)")
        return name

    def total(self, convention: str | None = None, phase: str | None = None) -> int:
        """The total under a convention (the first by default), of one phase ("forward" or "backward") or of all
        records (None)."""
        name = self._counted_convention(convention)
        if phase not in (None, "forward", "backward"):
            raise SymconvError(f"phase={phase!r} must be 'forward', 'backward' or None (both)")
        return sum((r.counted.totals[name] for r in self.counted if phase is None or r.phase == phase), 0)

    def formula(self, convention: str | None = None):
        """The total as a :class:`symconv.core.sizes.Formula` in the size names, with its domain
        (symbolic profiles): ``.latex()``, ``.lambdify()``, evaluation at sizes."""
        if not self.symbolic:
            raise SymconvError("formula() needs a profile of symbolic sizes, e.g. profile(model, (1, 3, 'H', 'W'))")
        from ..core.sizes import Formula
        name = self._counted_convention(convention)
        return Formula(self.total(name), self.domain, unit=unit(name))

    def _readable(self, value: Any) -> Any:
        if isinstance(value, int) or not self.symbolic:
            return value
        from ..core.sizes import canonical
        return canonical(value, self.domain)

    def _readable_shape(self, shape: Any) -> Any:
        """A shape's sizes each :meth:`_readable` (a tensor's shape; an input of several tensors stays as it is)."""
        if not self.symbolic or not isinstance(shape, tuple) or all(type(v) is int for v in shape):
            return shape
        return tuple(self._readable(v) for v in shape)

    def _shape_cell(self, shape: Any) -> str:
        """A shape in a frame's cell: as Python writes the tuple, its sizes as the tables write them when symbolic."""
        return shape_text(self._readable_shape(shape)) if self.symbolic else str(shape)

    # --- views -----------------------------------------------------------------------------------------------

    def module_totals(self, depth: int | None = None) -> list[tuple[ModuleInfo, dict[str, int]]]:
        """Every module (to ``depth``, the model being depth 0) with the totals of everything it ran."""
        if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
            raise SymconvError(f"depth={depth!r} must be a whole number >= 0 (the model is depth 0)")
        sums: dict[str, Counter] = {name: Counter() for name in self.modules}
        for r in self.counted:
            for name in set(r.stack) | {""}:
                if name in sums:
                    sums[name].update(r.counted.totals)
        return [(info, {c: sums[info.name][c] for c in self.conventions}) for info in self.modules.values()
                if depth is None or info.depth <= depth]

    def operator_totals(self) -> list[tuple[str, str, int, dict[str, int]]]:
        """(operator, phase, calls, totals) of every counted operator."""
        calls: dict[tuple[str, str], int] = Counter()
        sums: dict[tuple[str, str], Counter] = {}
        for r in self.counted:
            key = (r.op, r.phase)
            calls[key] += 1
            sums.setdefault(key, Counter()).update(r.counted.totals)
        return [(op, phase, calls[(op, phase)], {c: sums[(op, phase)][c] for c in self.conventions})
                for op, phase in sums]

    def not_counted(self) -> list[tuple[str, int, list[str], bool]]:
        """(operator, calls, modules, arithmetic?) of every operator that ran and is not counted."""
        calls: Counter = Counter()
        where: dict[str, list[str]] = {}
        for r in self.records:
            if r.counted is None:
                calls[r.op] += 1
                names = where.setdefault(r.op, [])
                if r.module not in names:
                    names.append(r.module)
        return [(op, n, where[op], op not in DATA_MOVEMENT) for op, n in calls.most_common()]

    def summary(self) -> str:
        """The totals and the operators not counted, in lines of text."""
        if self.symbolic:
            totals = {c: self.formula(c).readable() for c in self.conventions}
            lines = [f"total ({c}): " + (_counted(int(v), c) if v.is_Integer else f"{formula_text(v)} {unit(c)}")
                     for c, v in totals.items()]  # a total that does not depend on the sizes is a number
            lines.append("for sizes where " + (", ".join(self.formula().conditions()) or "every size is positive")
                         + f" (tracing branched at {self.hints or 'no hint'})")
        else:
            lines = [f"total ({c}): {_counted(self.total(c), c)}"
                     + (f"  [forward {readable(self.total(c, 'forward'), c)}, backward "
                        f"{readable(self.total(c, 'backward'), c)}]" if self.backward else "")
                     for c in self.conventions]
        skipped = self.not_counted()
        arithmetic = [f"{n} × {op.removeprefix('aten.')}" for op, n, _, math in skipped if math]
        moved = [f"{n} × {op.removeprefix('aten.')}" for op, n, _, math in skipped if not math]
        if arithmetic:
            lines.append("not counted: " + ", ".join(arithmetic))
        if moved:
            lines.append("no arithmetic (data movement, not counted): " + ", ".join(moved))
        how = {"meta": "on the meta device (shapes only, nothing computed)",
               "symbolic": "on fake tensors with symbolic sizes (nothing computed)"}.get(
            self.run, "on the example tensor itself (the model needs real values)")
        lines.append(f"model {self.model_type} on input {inputs_text(self.input_shapes, self.input_names)}, run {how}"
                     + ("; forward and backward" if self.backward else "; forward"))
        return "\n".join(lines)

    # --- the hierarchy as rows --------------------------------------------------------------------------------

    def rows(self, depth: int | None = None, cell: Callable[[Any], str] = _int,
             shape: Callable[[Any], str] = shape_text) -> list[list[str]]:
        """Header, then each module to ``depth`` (indented) followed by the products it ran itself.

        Deeper modules are folded into their ancestors' totals, without their products' rows. A module's
        calls alike in every column but the totals (an RNN's steps, a loop's iterations) share one row,
        ``20 × matmul``, with their summed totals; ψ, λ and γ stay those of one call. ``cell`` writes a count
        (a number or a formula) and ``shape`` a shape: as text, or as LaTeX (:meth:`to_latex`).
        """
        head = ["module", "type", "parameters", "operator", "input", "output", "psi", "lambda", "gamma",
                *(f"{c} ({unit(c)})" for c in self.conventions)]
        own: dict[str, list[Record]] = {}
        for r in self.counted:
            own.setdefault(r.module if r.module in self.modules else "", []).append(r)
        body = [head]
        for info, totals in self.module_totals(depth):
            indent = "  " * info.depth
            body.append([indent + (info.name.rsplit(".", 1)[-1] if info.name else "(model)"), info.type,
                         _int(info.parameters), "", "", "", "", "", "",
                         *(cell(self._readable(totals[c])) for c in self.conventions)])
            for (what, *cells), (calls, sums) in self._alike(own.get(info.name, []), cell, shape).items():
                body.append([indent + "  ·", "", "", what if calls == 1 else f"{calls} × {what}", *cells,
                             *(cell(self._readable(sums[k])) for k in self.conventions)])
        body.append(["total", "", "", "", "", "", "", "", "",
                     *(cell(self._readable(self.total(c))) for c in self.conventions)])
        return body

    def _alike(self, records: list[Record], cell: Callable[[Any], str], shape: Callable[[Any], str]
               ) -> dict[tuple[str, ...], tuple[int, dict[str, Any]]]:
        """A module's own calls grouped by their row without totals (first calls first): (calls, summed totals)."""
        groups: dict[tuple[str, ...], tuple[int, dict[str, Any]]] = {}
        for r in records:
            c = r.counted
            first = c.forward.get(self.convention)
            cells = (c.what + (" (backward)" if r.phase == "backward" else ""),
                     shape(self._readable_shape(c.input_shape)), shape(self._readable_shape(c.output_shape)),
                     *(cell(self._readable(getattr(first, f))) if first else "" for f in ("psi", "lam", "gamma")))
            calls, sums = groups.get(cells, (0, {}))
            groups[cells] = (calls + 1, {k: sums.get(k, 0) + c.totals[k] for k in self.conventions})
        return groups

    def table(self, depth: int | None = None) -> str:
        """An aligned text table of :meth:`rows`, then :meth:`summary`."""
        rows = self.rows(depth)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        right = set(range(6, len(rows[0]))) | {2}
        lines = []
        for k, r in enumerate(rows):
            cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
            lines.append("  ".join(cells).rstrip())
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines + [self.summary()])

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        # one line, where the dataclass's own repr wrote out every record (80 kB for a ResNet-50, in a notebook cell)
        def total(c: str) -> str:
            value = self.total(c)
            if not self.symbolic or not value.free_symbols:
                return readable(int(value), c)
            return "a formula in " + ", ".join(sorted(s.name for s in value.free_symbols))

        return (f"<Profile of {self.model_type} on input {inputs_text(self.input_shapes, self.input_names)} "
                f"({'forward and backward' if self.backward else 'forward'}, run {self.run}): "
                + ", ".join(f"{c} {total(c)}" for c in self.conventions)
                + f"; {len(self.records)} operator calls, {len(self.counted)} counted; print() shows the table>")

    # --- exports --------------------------------------------------------------------------------------------------

    def to_csv(self, depth: int | None = None) -> str:
        out = io.StringIO()
        numbers = {2} | set(range(6, 9 + len(self.conventions)))  # parameters, ψ, λ, γ and the totals
        csv.writer(out, lineterminator="\n").writerows([[c.replace(",", "") if i in numbers and k else c
                                                        for i, c in enumerate(r)]
                                                       for k, r in enumerate(self.rows(depth))])
        return out.getvalue()

    def to_markdown(self, depth: int | None = None) -> str:
        rows = self.rows(depth)
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
        return "\n".join(lines) + "\n\n" + self.summary().replace("\n", "  \n") + "\n"

    def to_latex(self, depth: int | None = None) -> str:
        """A LaTeX tabular of :meth:`rows`; formulas in sizes as math, in the pages' notation."""
        rows = self.rows(depth, _tex_count, _tex_shape)
        greek = {"psi": r"$\psi$", "lambda": r"$\lambda$", "gamma": r"$\gamma$"}
        spec = "llrlll" + "r" * (len(rows[0]) - 6)
        lines = [rf"\begin{{tabular}}{{{spec}}}", r"\hline",
                 " & ".join(greek.get(h, _tex_text(h)) for h in rows[0]) + r" \\", r"\hline"]
        lines += [" & ".join(_tex_text(c) for c in r) + r" \\" for r in rows[1:]]
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def to_json(self, depth: int | None = None) -> str:
        """Everything: totals, modules (to ``depth``, the model being depth 0), operators, every record and what was
        not counted."""
        def record(r: Record) -> dict[str, Any]:
            c = r.counted
            item: dict[str, Any] = {"op": r.op, "module": r.module, "stack": list(r.stack), "phase": r.phase,
                                    "counted": c is not None}
            if c is not None:
                item.update(what=c.what, input=list(c.input_shape), output=list(c.output_shape), totals=dict(c.totals),
                            note=c.note)
                first = c.forward.get(self.convention)
                if first is not None:
                    item.update(psi=first.psi, **{"lambda": first.lam}, gamma=first.gamma)
            return item

        def formula(value: Any) -> Any:
            """A count or size in symbolic sizes, as its text (simplified within the domain)."""
            readable = self._readable(value)
            return int(readable) if getattr(readable, "is_Integer", False) else formula_text(readable)

        symbolic = {"domain": self.formula().conditions(), "hints": self.hints} if self.symbolic else {}
        return json.dumps({
            "model": self.model_type, "inputs": [_listed(s) for s in self.input_shapes],
            "input_names": [None] * (len(self.input_shapes) - len(self.input_names)) + list(self.input_names),
            "run": self.run,
            "conventions": list(self.conventions), "units": {c: unit(c) for c in self.conventions},
            "totals": {c: self.total(c) for c in self.conventions}, **symbolic,
            "modules": [{"name": i.name, "type": i.type, "parameters": i.parameters, "totals": t}
                        for i, t in self.module_totals(depth)],
            "operators": [{"op": op, "phase": ph, "calls": n, "totals": t} for op, ph, n, t in self.operator_totals()],
            "not_counted": [{"op": op, "calls": n, "modules": m, "arithmetic": a} for op, n, m, a in self.not_counted()],
            "records": [record(r) for r in self.records],
        }, indent=2, default=formula)

    def to_dataframe(self):
        """One row per operator call (pip install 'symconv[pandas]'): nullable integer counts, so
        ``df["total"].sum()`` is the profile's total under the first convention; with symbolic sizes, SymPy
        expressions (simplified within the domain; ``df["total"].sum()`` is then the total as an expression)."""
        try:
            import pandas as pd
        except ImportError:
            raise SymconvError("to_dataframe needs pandas: pip install 'symconv[pandas]'") from None
        rows = []
        for r in self.records:
            c = r.counted
            first = c.forward.get(self.convention) if c is not None else None
            row = {"module": r.module, "module_type": self.modules[r.module].type if r.module in self.modules else "",
                   "op": r.op, "what": c.what if c else NOT_COUNTED, "phase": r.phase,
                   "input": self._shape_cell(c.input_shape) if c else "",
                   "output": self._shape_cell(c.output_shape) if c else "",
                   "psi": first.psi if first else None, "lambda": first.lam if first else None,
                   "gamma": first.gamma if first else None,
                   "total": c.totals[self.convention] if c else None}
            row.update({f"total_{k}": c.totals[k] if c else None for k in self.conventions[1:]})
            rows.append(row)
        frame = pd.DataFrame(rows)
        counts = ["psi", "lambda", "gamma", "total", *(f"total_{k}" for k in self.conventions[1:])]
        if self.symbolic:  # expressions stay objects (None where not counted, which sums skip)
            return frame.assign(**{col: frame[col].map(lambda v: None if v is None else self._readable(v))
                                   for col in counts})
        return frame.astype({col: "Int64" for col in counts})


class _Tex(str):
    """A cell already written in LaTeX: not escaped as text."""


def _tex_count(value: Any) -> str:
    if value is None or isinstance(value, int) or getattr(value, "is_Integer", False):
        return _int(value)
    from ..core.latex import to_latex  # a formula: SymPy is loaded already
    return _Tex(f"${to_latex(value)}$")


def _tex_shape(shape: Any) -> str:
    if not isinstance(shape, tuple) or all(type(v) is int for v in shape):
        return shape_text(shape)
    from ..core.latex import to_latex
    return _Tex("$(" + ", ".join(to_latex(v) for v in shape) + ")$")  # as shape_text writes it


def _tex_text(text: str) -> str:
    if isinstance(text, _Tex):
        return text
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%") \
        .replace("·", r"$\cdot$").replace("ᵀ", r"$^T$")
