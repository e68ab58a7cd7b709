"""Per-layer operation counts of a whole torch.nn.Module.

Shapes come from one forward pass on the ``meta`` device (no memory, no
arithmetic), falling back to a real pass on zeros where the model cannot run
on meta. Every leaf module is listed in call order; those symconv does not
count are marked "not counted", never silently zero.
"""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

from ..core.errors import SymconvError
from ..core.names import CONVENTION_NAMES, convention_name
from ..numeric.layer_counts import count_layer, count_matmul
from .modules import layer_from_module, module_kind

NOT_COUNTED = "not counted"


@dataclass
class LayerRecord:
    """One call of a leaf module."""

    name: str
    type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    counted: bool = False
    psi: int | None = None
    lam: int | None = None
    gamma: int | None = None
    totals: dict[str, int] = field(default_factory=dict)


@dataclass
class Profile:
    """The records of a model and their totals under the requested conventions."""

    records: list[LayerRecord]
    conventions: tuple[str, ...]
    shape_pass: str  # "meta" or "zeros"

    @property
    def convention(self) -> str:
        return self.conventions[0]

    def total(self, convention: str | None = None) -> int:
        name = convention or self.convention
        return sum(r.totals[name] for r in self.records if r.counted)

    def rows(self) -> list[list[str]]:
        """Header and one row per record, then the model total, as strings."""
        head = ["layer", "type", "input", "output", "psi", "lambda", "gamma"] + \
            [f"total ({c})" for c in self.conventions]
        body = [head]
        for r in self.records:
            cells = [r.name, r.type, _shape(r.input_shape), _shape(r.output_shape)]
            if r.counted:
                cells += ["" if v is None else str(v) for v in (r.psi, r.lam, r.gamma)]
                cells += [str(r.totals[c]) for c in self.conventions]
            else:
                cells += ["", "", ""] + [NOT_COUNTED] * len(self.conventions)
            body.append(cells)
        body.append(["total", "", "", "", "", "", ""] + [str(self.total(c)) for c in self.conventions])
        return body

    def table(self) -> str:
        """An aligned text table (numbers right-aligned)."""
        rows = self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for k, r in enumerate(rows):
            cells = [c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
            lines.append("  ".join(cells).rstrip())
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        note = f"convention: {', '.join(self.conventions)}; shapes from a {self.shape_pass} forward pass"
        return "\n".join(lines + [note])

    def to_csv(self) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(self.rows())
        return out.getvalue()

    def to_markdown(self) -> str:
        rows = self.rows()
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        rows = self.rows()
        spec = "llll" + "r" * (len(rows[0]) - 4)
        header = [r"\psi" if h == "psi" else r"\lambda" if h == "lambda" else r"\gamma" if h == "gamma" else h
                  for h in rows[0]]
        lines = [rf"\begin{{tabular}}{{{spec}}}", r"\hline",
                 " & ".join(f"${h}$" if h.startswith("\\") else _tex_text(h) for h in header) + r" \\", r"\hline"]
        lines += [" & ".join(_tex_text(c) for c in r) + r" \\" for r in rows[1:]]
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def to_dataframe(self):
        """A pandas DataFrame (pip install 'symconv[pandas]')."""
        try:
            import pandas as pd
        except ImportError:
            raise SymconvError("to_dataframe needs pandas: pip install 'symconv[pandas]'") from None
        rows = self.rows()
        return pd.DataFrame(rows[1:-1], columns=rows[0])


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _tex_text(text: str) -> str:
    return text.replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def count_linear(module: torch.nn.Linear, input_shape: tuple[int, ...], convention: str) -> int:
    """Exact operations of a Linear module on an input of ``input_shape`` (..., in_features)."""
    if not input_shape or input_shape[-1] != module.in_features:
        raise SymconvError(f"input shape {input_shape!r} must end in in_features={module.in_features}")
    rows = 1
    for v in input_shape[:-1]:
        rows *= v
    return count_matmul(rows, module.in_features, module.out_features, module.bias is not None, convention)


def _example_inputs(inputs: Any) -> tuple[torch.Tensor, ...]:
    """A shape (ints) becomes zeros; tensors are taken as they are."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(v, int) for v in inputs):
        if any(v < 1 for v in inputs):
            raise SymconvError(f"input shape {tuple(inputs)!r} must hold positive integers")
        return (torch.zeros(tuple(inputs)),)
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(v, torch.Tensor) for v in inputs):
        return tuple(inputs)
    raise SymconvError(f"inputs={inputs!r} must be a shape (ints), a tensor or a tuple of tensors")


# Leaves whose output has their input's shape: on meta they pass the input through instead of
# running (BatchNorm's meta kernel alone imports torch._dynamo, ~0.9 s).
_SHAPE_PRESERVING = tuple(getattr(torch.nn, name) for name in (
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LayerNorm",
    "GroupNorm", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid",
    "Tanh", "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Dropout", "Dropout1d", "Dropout2d",
    "Dropout3d", "AlphaDropout", "Identity", "Softmax", "LogSoftmax") if hasattr(torch.nn, name))


def _passthrough(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return x


@contextmanager
def _on_meta(model: torch.nn.Module) -> Iterator[None]:
    """Give every parameter and buffer a meta stand-in for the duration; restore them after.

    (torch.func.functional_call does the same but imports torch._dynamo, ~0.6 s.)
    """
    saved = []
    modes = [(m, m.training) for m in model.modules()]
    model.eval()  # inference, as counted; and batch statistics on meta would load torch's decompositions (~0.8 s)
    for module in model.modules():
        if type(module) in _SHAPE_PRESERVING:
            module.forward = _passthrough
        for store in (module._parameters, module._buffers):
            for name, value in list(store.items()):
                if value is not None:
                    saved.append((store, name, value))
                    meta = torch.empty_like(value, device="meta")
                    store[name] = torch.nn.Parameter(meta, value.requires_grad) if store is module._parameters \
                        else meta
    try:
        yield
    finally:
        for store, name, value in saved:
            store[name] = value
        for module, training in modes:
            module.training = training
            if module.__dict__.get("forward") is _passthrough:
                del module.forward


Call = tuple[str, torch.nn.Module, tuple, tuple]


def _trace(model: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[list[Call], str]:
    """(name, module, input shape, output shape) of every leaf call, from a meta pass or a zeros pass."""
    calls: list[Call] = []
    names = {m: n for n, m in model.named_modules()}
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]

    def hook(module, inputs, output):
        first = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        out = output if isinstance(output, torch.Tensor) else next(
            (t for t in (output if isinstance(output, (tuple, list)) else ()) if isinstance(t, torch.Tensor)), None)
        calls.append((names.get(module, type(module).__name__) or type(model).__name__, module,
                      tuple(first.shape) if first is not None else (), tuple(out.shape) if out is not None else ()))

    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        try:
            with _on_meta(model), torch.no_grad():
                model(*(torch.empty_like(a, device="meta") for a in args))
            return calls, "meta"
        except Exception:  # any op without a meta kernel: measure shapes for real
            calls.clear()
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            try:
                with torch.no_grad():
                    model(*(torch.zeros_like(a, device=device) for a in args))
            except RuntimeError as err:
                shapes = ", ".join(str(tuple(a.shape)) for a in args)
                raise SymconvError(f"the model does not run on input shape {shapes}: "
                                 f"{str(err).splitlines()[0]}") from None
            return calls, "zeros"
    finally:
        for h in handles:
            h.remove()


def profile(model: torch.nn.Module, inputs: Sequence[int] | torch.Tensor | Sequence[torch.Tensor],
            convention: str = "docs", *, all_conventions: bool = False) -> Profile:
    """Count every leaf module of ``model`` on ``inputs`` (a shape, or example tensors).

    ψ, λ and γ are given under ``convention``; totals under it, or under all three
    conventions (the chosen one first) with ``all_conventions``.
    """
    first = convention_name(convention)
    conventions = (first, *(c for c in CONVENTION_NAMES if c != first)) if all_conventions else (first,)
    calls, how = _trace(model, _example_inputs(inputs))
    records = []
    for name, module, in_shape, out_shape in calls:
        record = LayerRecord(name, type(module).__name__, in_shape, out_shape)
        if module_kind(module) is not None:
            layer = layer_from_module(module)
            counts = {c: count_layer(layer, in_shape, c) for c in conventions}
            main = counts[first]
            record.counted, record.psi, record.lam, record.gamma = True, main.psi, main.lam, main.gamma
            record.totals = {c: v.total for c, v in counts.items()}
        elif isinstance(module, torch.nn.Linear):
            record.counted = True
            record.totals = {c: count_linear(module, in_shape, c) for c in conventions}
        records.append(record)
    return Profile(records, conventions, how)
