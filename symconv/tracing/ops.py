"""What each counted aten operator costs: a registry of small rules from an operator's arguments to counts.

Every rule receives the operator's arguments with tensors replaced by their shapes
(and, for convolutions, any zero padding that was merged into the input) and
returns the products it runs, each a :class:`Counted` with its count under every
requested convention. Its docstring states what it counts; the numbers come from
the core's expressions through :mod:`symconv.numeric.layer_counts`.

Operators without a rule are not counted, and the profiler lists them.
"""

from __future__ import annotations

import itertools
from collections import Counter
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from ..core.errors import SymconvError
from ..core.names import kind_of
from ..numeric.layer import Layer, all_ints, is_int
from ..numeric.layer_counts import LayerCount, count_gradients, count_layers, count_matmul, count_sparse_matmul

aten = torch.ops.aten
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Counted:
    """One product an operator runs: a convolution, one of its gradients, or a matrix product.

    Read-only, its mappings included: the profiler hands the same entry to every run with the same
    arguments."""

    what: str                      # "Conv2d", "grad_weight", "matmul", "attention Q·Kᵀ", …
    totals: Mapping[str, int]      # convention -> operations
    input_shape: Shape = ()
    output_shape: Shape = ()
    layer: Layer | None = None     # the convolution counted, for convolutions and their gradients
    forward: Mapping[str, LayerCount] = field(default_factory=dict)  # ψ, λ, γ of a forward convolution
    note: str = ""
    product: tuple[int, int, int] | None = None  # (rows, inner, columns) of a matrix product without bias
    domain: tuple = ()  # with symbolic sizes: the conditions on them under which the counts hold

    def __post_init__(self) -> None:
        object.__setattr__(self, "totals", MappingProxyType(dict(self.totals)))
        object.__setattr__(self, "forward", MappingProxyType(dict(self.forward)))

    def __reduce__(self) -> tuple:
        # A mapping proxy does not pickle: rebuild from plain dicts (pickle, copy.deepcopy).
        return type(self), (self.what, dict(self.totals), self.input_shape, self.output_shape, self.layer,
                            dict(self.forward), self.note, self.product, self.domain)


def biasless(entry: Counted) -> bool:
    """A product whose bias a separate ``add`` may supply: a matrix product or a (forward) convolution run
    without one."""
    return entry.product is not None or (entry.layer is not None and not entry.layer.bias and
                                         entry.what == entry.layer.kind)


def fits_as_bias(entry: Counted, bias: Shape, product: Shape) -> bool:
    """Whether an ``add`` of a tensor of shape ``bias`` to the output of a :func:`biasless` product (or a view of
    it, of shape ``product``) is that product's bias: one value per output column of a matrix product (a vector,
    as F.linear adds it: a (1, 1) attention mask on a single key is no bias), one per output channel of a
    convolution, broadcast over the rest without enlarging the output."""
    if entry.product is not None:
        columns = entry.product[2]
        return len(bias) == 1 and bias[0] == columns and product[-1] == columns
    return math.prod(bias) == entry.layer.out_channels and len(bias) <= len(product) and \
        all(b == 1 or b == p for b, p in zip(reversed(bias), reversed(product)))


def with_bias(entry: Counted, conventions: tuple[str, ...]) -> Counted:
    """A :func:`biasless` product whose bias a separate ``add`` supplied (F.linear on a non-contiguous input,
    packed attention projections, a convolution whose bias is added after it, as vmap's batching of an ensemble
    does): the same product with its bias, one addition per output (exact and docs)."""
    note = "bias added by a separate add"
    if entry.product is not None:  # one more addition per output: what a bias adds to the product's own count
        rows, inner, columns = entry.product
        return Counted(entry.what + " + bias", {c: entry.totals[c] + count_matmul(rows, inner, columns, True, c) -
                                               count_matmul(rows, inner, columns, False, c) for c in conventions},
                       entry.input_shape, entry.output_shape, note=note)
    layer = replace(entry.layer, bias=True)
    counts = count_layers(layer, entry.input_shape, conventions)
    return Counted(entry.what, {c: v.total for c, v in counts.items()}, entry.input_shape, entry.output_shape, layer,
                   counts, f"{entry.note}; {note}" if entry.note else note, domain=entry.domain)


@dataclass(frozen=True)
class Context:
    """What a rule may need beyond the arguments."""

    conventions: tuple[str, ...]
    pad: tuple[tuple[int, int], ...] | None = None  # zero padding merged into a convolution's input, per axis
    input_shape: Shape | None = None                # the convolution's input before that padding


class Jagged(tuple):
    """The shape of a nested (jagged) tensor: its components' shapes, ``((5, 16), (3, 16))`` for two sequences."""


class Sparse(tuple):
    """The shape of a sparse matrix, with what the exact convention reads of it: the elements it stores (once
    coalesced) and its rows and columns storing at least one; None where they are unknown (no values at hand, as
    on the meta device or in a symbolic run; a block or hybrid layout; not a matrix)."""

    def __new__(cls, shape: Shape, stored: int | None = None, rows: int | None = None,
                columns: int | None = None) -> "Sparse":
        self = super().__new__(cls, shape)
        self.stored, self.rows, self.columns = stored, rows, columns
        return self

    def _key(self) -> tuple:
        return tuple(self), self.stored, self.rows, self.columns

    def __eq__(self, other: object) -> bool:  # two matrices of one shape storing different elements differ
        return type(other) is Sparse and self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple:
        return Sparse, self._key()


SPARSE_LAYOUTS = frozenset((torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc))


def is_sparse(t: torch.Tensor) -> bool:
    """A tensor of a sparse layout (the common strided one is ruled out first: every operand passes here)."""
    return t.layout is not torch.strided and t.layout in SPARSE_LAYOUTS


def _filled(compressed: torch.Tensor) -> int:
    """The lines a compressed index (CSR's crow_indices, CSC's ccol_indices) gives at least one element."""
    return int((compressed[1:] > compressed[:-1]).sum())


def _distinct(indices: torch.Tensor) -> int:
    return int(indices.unique().numel())


def sparse_shape(t: torch.Tensor) -> Sparse:
    """A sparse tensor's shape and, for a COO, CSR or CSC matrix holding values, the elements it stores and the
    rows and columns storing any, read from its indices (the tensor is left as it is)."""
    shape = tuple(t.shape)
    if t.is_meta or t.dim() != 2:
        return Sparse(shape)
    if t.layout is torch.sparse_coo and t.dense_dim() == 0:
        indices = (t if t.is_coalesced() else t.coalesce())._indices()
        return Sparse(shape, indices.shape[1], _distinct(indices[0]), _distinct(indices[1]))
    if t.layout is torch.sparse_csr:
        return Sparse(shape, t._nnz(), _filled(t.crow_indices()), _distinct(t.col_indices()))
    if t.layout is torch.sparse_csc:
        return Sparse(shape, t._nnz(), _distinct(t.row_indices()), _filled(t.ccol_indices()))
    return Sparse(shape)


def shape_of(t: torch.Tensor) -> tuple:
    """A tensor's shape as a tuple; a nested tensor, which has no one shape (or a ragged size), as its
    components' (Jagged); a sparse one with what it stores (Sparse)."""
    if t.is_nested:
        return Jagged(tuple(part.shape) for part in t.unbind())
    return sparse_shape(t) if is_sparse(t) else tuple(t.shape)


Rule = Callable[..., list[Counted]]
RULES: dict[Any, Rule] = {}
#: the rules that also count nested tensors (given as Jagged shapes); the others' calls on them are not counted
TAKES_JAGGED: set[Rule] = set()
#: the rules that count a product with a sparse factor, by the positions that factor may take
SPARSE_FACTORS: dict[Rule, tuple[int, ...]] = {}


def rule(*packets: Any, jagged: bool = False, sparse: tuple[int, ...] = ()) -> Callable[[Rule], Rule]:
    """Register a rule for aten operator packets (every overload of each): ``jagged`` where it counts nested
    tensors, ``sparse`` the argument positions where it counts a sparse factor."""
    def register(fn: Rule) -> Rule:
        for packet in packets:
            RULES[packet] = fn
        if jagged:
            TAKES_JAGGED.add(fn)
        if sparse:
            SPARSE_FACTORS[fn] = sparse
        return fn
    return register


def takes(rule: Rule, arguments: Sequence[Any]) -> bool:
    """Whether a rule counts these (shaped) arguments: a nested tensor only where the rule takes Jagged shapes;
    a sparse one only as the one sparse factor of a product the rule counts so, what it stores known."""
    sparse = [i for i, a in enumerate(arguments) if type(a) is Sparse]
    if sparse and (len(sparse) > 1 or sparse[0] not in SPARSE_FACTORS.get(rule, ()) or
                   arguments[sparse[0]].stored is None):
        return False
    return rule in TAKES_JAGGED or not any(type(a) is Jagged for a in arguments)


def _summed(parts: list[list[Counted]]) -> list[Counted]:
    """The products of a nested batch, each summed over its sequences (every sequence runs at its own length)."""
    return [Counted(entries[0].what, {c: sum(e.totals[c] for e in entries) for c in entries[0].totals},
                    Jagged(e.input_shape for e in entries), Jagged(e.output_shape for e in entries),
                    note=f"summed over the {len(entries)} sequences of a nested tensor")
            for entries in zip(*parts)]


# --- convolutions ---------------------------------------------------------------------------------------

def convolution_layer(w: Shape, bias: bool, stride: Sequence[int], padding: Sequence[int],
                      dilation: Sequence[int], transposed: bool, output_padding: Sequence[int], groups: int,
                      pad: tuple[tuple[int, int], ...] | None = None) -> Layer:
    """The :class:`Layer` an aten convolution runs, with any merged zero padding as (asymmetric) padding."""
    return _convolution_layer(tuple(w), bool(bias), tuple(stride), tuple(padding), tuple(dilation),
                              bool(transposed), tuple(output_padding), groups, pad)


@lru_cache(maxsize=4096)  # the meta output's shape and the count ask for the same layer
def _convolution_layer(w: Shape, bias: bool, stride: tuple, padding: tuple, dilation: tuple,
                       transposed: bool, output_padding: tuple, groups: int,
                       pad: tuple[tuple[int, int], ...] | None) -> Layer:
    ndim = len(w) - 2
    if transposed:
        c_in, c_out = w[0], w[1] * groups
    else:
        c_in, c_out = w[1] * groups, w[0]
    left = right = tuple(map(int, padding))  # map(int, …): SymPy's integers become ints, the quickest way
    if pad is not None:
        left = tuple(p + l for p, (l, _) in zip(left, pad))
        right = tuple(p + r for p, (_, r) in zip(right, pad))
    return Layer(kind_of(ndim, bool(transposed)), int(c_in), int(c_out), tuple(map(int, w[2:])),
                 tuple(map(int, stride)), left, tuple(map(int, dilation)), tuple(map(int, output_padding)),
                 int(groups), bool(bias), "zeros", right if right != left else None)


def _describe_pad(pad: tuple[tuple[int, int], ...]) -> str:
    return "zero padding " + ", ".join(f"({l}, {r})" for l, r in pad) + " merged from constant_pad_nd"


def _padding_merged(padding: Sequence[Any], transposed: bool, x: Shape, context: Context) -> tuple[tuple, Context]:
    """A plain convolution's padding computed from the sizes, as zero padding merged into its input (counted at
    each amount it takes, as a merged ``F.pad`` is); numbers as they are."""
    if all_ints(padding):
        return tuple(padding), context
    if transposed:  # a transposed convolution's padding crops its output: no zero padding of its input
        raise SymconvError(f"padding {tuple(padding)} follows the sizes on a transposed convolution: profile it at "
                           f"concrete sizes")
    merged = context.pad or ((0, 0),) * len(padding)
    pad = tuple((left + p, right + p) for (left, right), p in zip(merged, padding))
    return (0,) * len(padding), replace(context, pad=pad,
                                        input_shape=context.input_shape if context.pad is not None else tuple(x))


def _varying(output_padding: Sequence[Any], context: Context) -> bool:
    """Whether a convolution's output_padding or merged zero padding is a formula in the sizes."""
    return not all_ints(output_padding) or \
        (context.pad is not None and not all(is_int(v) for pair in context.pad for v in pair))


@rule(aten.convolution, aten._convolution)
def convolution(x: Shape, w: Shape, bias: Shape | None, stride, padding, dilation, transposed, output_padding,
                groups, *_, context: Context) -> list[Counted]:
    """A convolution as the layer kind it is: ψ, λ, γ and N·(ψ·λ + γ) under each convention.

    Zero padding applied just before (``constant_pad_nd`` with value 0) is merged
    into the layer's padding, so the exact convention skips products with it.
    """
    padding, context = _padding_merged(padding, transposed, x, context)
    if _varying(output_padding, context):
        return _by_each_value(lambda op, ctx: convolution(x, w, bias, stride, padding, dilation, transposed, op,
                                                          groups, context=ctx),
                              stride, dilation, output_padding, context)
    layer = convolution_layer(w, bias is not None, stride, padding, dilation, transposed, output_padding, groups,
                              context.pad)
    source = context.input_shape if context.pad is not None else x
    counts = count_layers(layer, source, context.conventions)
    first = counts[context.conventions[0]]
    out = (first.batch, layer.out_channels, *first.output_size) if len(x) == layer.ndim + 2 else \
        (layer.out_channels, *first.output_size)
    return [Counted(layer.kind, {c: v.total for c, v in counts.items()}, tuple(source), out, layer, counts,
                    _describe_pad(context.pad) if context.pad is not None else "",
                    domain=getattr(first, "domain", ()))]


def _by_each_value(count: Callable[[tuple, Context], list[Counted]], stride, dilation, output_padding,
                   context: Context) -> list[Counted]:
    """The counts of a convolution (or its backward) whose output_padding or merged zero padding is a formula in
    the sizes, from ``count`` at each value it takes, each where it takes it.

    output_padding given as another tensor's sizes (``output_size=``, as U-Nets do) takes
    each value below max(stride, dilation) per axis; zero padding computed from the input
    (TensorFlow's "same" padding, as timm's Conv2dSame does) each (left, right) pair the
    formula takes over the sizes scanned, and the domain holds the sizes where it takes one
    of them.
    """
    import sympy as sp

    from ..core.sizes import any_of, as_residues
    if not all(is_int(o) for o in output_padding):
        choices = [[(o, sp.true)] if is_int(o) else [(v, as_residues(sp.Eq(o, v))) for v in range(max(s, d))]
                   for o, s, d in zip(output_padding, stride, dilation)]
        combos = [(tuple(v for v, _ in combo), context, tuple(where for _, where in combo))
                  for combo in itertools.product(*choices)]
        within: tuple = ()
        note = "output_padding follows the input size: counted at each value it takes"
    else:
        choices = [_pads_taken(left, right) for left, right in context.pad]
        combos = [(tuple(output_padding), replace(context, pad=tuple(pair for pair, _ in combo)),
                   tuple(where for _, where in combo)) for combo in itertools.product(*choices)]
        within = tuple(any_of([where for _, where in axis]) for axis in choices if len(axis) > 1)
        note = "zero padding follows the input size: counted at each amount it takes"
    results = [(count(op, ctx), where) for op, ctx, where in combos]
    return [_piecewise([(entries[i], where) for entries, where in results], note, within)
            for i in range(len(results[0][0]))]


def _pads_taken(left: Any, right: Any) -> list[tuple[tuple[int, int], Any]]:
    """The (left, right) amounts of one axis' merged zero padding over the sizes scanned, each with where the
    formulas take it."""
    import sympy as sp

    from ..core.sizes import _SCAN, as_residues
    left, right = sp.sympify(left), sp.sympify(right)
    names = left.free_symbols | right.free_symbols
    if not names:
        return [((int(left), int(right)), sp.true)]
    if len(names) > 1:
        raise SymconvError(f"zero padding ({left}, {right}) depends on several sizes: give concrete sizes")
    (name,) = names
    def at(n: int) -> tuple[int, int]:
        return int(left.xreplace({name: n})), int(right.xreplace({name: n}))

    taken = dict.fromkeys(at(n) for n in range(1, _SCAN + 1))
    if any(at(n) not in taken for n in range(4 * _SCAN, 4 * _SCAN + 8)):  # amounts the scan did not reach
        raise SymconvError(f"zero padding ({left}, {right}) grows with the sizes: give concrete sizes")
    return [(pair, sp.And(as_residues(sp.Eq(left, pair[0])), as_residues(sp.Eq(right, pair[1])))) for pair in taken]


def _piecewise(pieces: list[tuple[Counted, tuple]], note: str, domain: tuple = ()) -> Counted:
    """One count from the counts of a layer whose parameter follows the sizes, each with where it holds (one
    condition per axis): a Piecewise wherever they differ, exact at every size where one of them holds. What a
    count needs of the sizes (its domain) is needed where that count holds: of each condition, on the axes it
    concerns."""
    import sympy as sp

    def merged(value: Callable[[Counted], Any]) -> Any:
        values = [value(entry) for entry, _ in pieces]
        return values[0] if all(v == values[0] for v in values) else \
            sp.Piecewise(*[(v, sp.And(*where)) for v, (_, where) in zip(values, pieces)])

    def needed(condition: Any, where: tuple) -> Any:
        return sp.Implies(sp.And(*(w for w in where if w.free_symbols & condition.free_symbols)), condition)

    first = pieces[0][0]
    out = tuple(merged(lambda e: e.output_shape[i]) for i in range(len(first.output_shape)))
    forward = {c: replace(count, output_size=out[-len(count.output_size):],
                          **{f: merged(lambda e: getattr(e.forward[c], f))
                             for f in ("psi", "multiplications", "additions", "lam", "gamma", "total")})
               for c, count in first.forward.items()}
    domain = tuple(dict.fromkeys((*domain, *(needed(condition, where) for entry, where in pieces
                                             for condition in entry.domain))))
    return Counted(first.what, {c: merged(lambda e: e.totals[c]) for c in first.totals}, first.input_shape, out,
                   None, forward, note, domain=domain)


@rule(aten.conv_tbc)
def conv_tbc(x: Shape, w: Shape, bias: Shape, pad: int = 0, *_, context: Context) -> list[Counted]:
    """A convolution over time in fairseq's layout: input (time, batch, C_in), weight (k, C_in, C_out), always a
    bias: the Conv1d it is on the (batch, C_in, time) input. (Its backward runs as matrix products, counted as
    those.)"""
    (counted,) = convolution((x[1], x[2], x[0]), (w[2], w[1], w[0]), bias, (1,), (pad,), (1,), False, (0,), 1,
                             context=context)
    batch, channels, time = counted.output_shape
    return [replace(counted, input_shape=tuple(x), output_shape=(time, batch, channels),
                    note="conv_tbc: the input as (batch, channels, time)")]


@rule(aten.convolution_backward)
def convolution_backward(grad_out: Shape, x: Shape, w: Shape, bias_sizes, stride, padding, dilation, transposed,
                         output_padding, groups, output_mask, *, context: Context) -> list[Counted]:
    """The gradients a training step asks of a convolution (``output_mask``): grad_input, grad_weight,
    grad_bias, each counted as :mod:`symconv.core.backward` defines it."""
    padding, context = _padding_merged(padding, transposed, x, context)
    if _varying(output_padding, context):
        return _by_each_value(lambda op, ctx: convolution_backward(
            grad_out, x, w, bias_sizes, stride, padding, dilation, transposed, op, groups, output_mask, context=ctx),
            stride, dilation, output_padding, context)
    # autograd passes bias_sizes [0] for a convolution without a bias
    bias = bias_sizes is not None and tuple(bias_sizes) != (0,)
    layer = convolution_layer(w, bias, stride, padding, dilation, transposed, output_padding, groups, context.pad)
    source = context.input_shape if context.pad is not None else x
    counts = {c: count_gradients(layer, source, c) for c in context.conventions}
    out = {"grad_input": tuple(source), "grad_weight": tuple(w), "grad_bias": (layer.out_channels,)}
    note = _describe_pad(context.pad) if context.pad is not None else ""
    return [Counted(which, {c: v[which] for c, v in counts.items()}, tuple(grad_out), out[which], layer, note=note)
            for which, wanted in zip(("grad_input", "grad_weight", "grad_bias"), output_mask) if wanted]


# --- matrix products ------------------------------------------------------------------------------------

def _matmul(what: str, rows: int, inner: int, columns: int, bias: bool, context: Context,
            inputs: Shape, out: Shape, sparse: tuple[tuple[int, int, int], str] | None = None) -> Counted:
    """An (rows × inner)·(inner × columns) product, plus a bias; ``sparse``, where a factor is sparse, its
    (stored, lines, outputs per line) and their description: the exact convention counts only its stored
    elements' products (core.matmul)."""
    totals = {c: count_matmul(rows, inner, columns, bias, c) for c in context.conventions}
    if sparse is None:
        return Counted(what, totals, inputs, out, product=None if bias else (rows, inner, columns))
    if "exact" in totals:
        totals["exact"] = count_sparse_matmul(*sparse[0], bias)
    return Counted(f"sparse {what}", totals, inputs, out, note=f"exact: {sparse[1]}")


def _stored(a: Shape, b: Shape, rows: int, columns: int) -> tuple[tuple[int, int, int], str] | None:
    """What the exact convention reads of a product's sparse factor: (stored, lines, outputs per line), a row
    of a left factor making ``columns`` outputs and a column of a right one ``rows``; None where both are dense."""
    if type(a) is Sparse:
        return (a.stored, a.rows, columns), f"the sparse factor stores {a.stored} elements in {a.rows} of its " \
                                            f"{a[0]} rows"
    if type(b) is Sparse:
        return (b.stored, b.columns, rows), f"the sparse factor stores {b.stored} elements in {b.columns} of its " \
                                            f"{b[1]} columns"
    return None


def _added(what: str, beta: Any) -> tuple[str, bool]:
    """The label of an add-product (addmm, baddbmm, …) and whether its first term is added: with beta=0 torch
    ignores it (attention code passes an empty tensor that way). Scalings by alpha and beta are pointwise and not
    counted, as attention's scaling is not."""
    return (f"{what} + bias", True) if beta != 0 else (what, False)


def _check_sizes(a: Any, b: Any, op: str, what: str = "inner") -> None:
    # Symbolic sizes are equal where the model runs: torch's kernel has checked them and the run's domain holds
    # the condition (16·(floor(H/4) − 3)·(floor(W/4) − 3) = 400 before a LeNet's Linear).
    if a != b and type(a) is int and type(b) is int:
        raise SymconvError(f"{op}: {what} sizes {a} and {b} differ")


@rule(aten.mm, sparse=(0, 1))
def mm(a: Shape, b: Shape, *_, context: Context) -> list[Counted]:
    """(m × k)·(k × n): m·n outputs of k products and k − 1 additions (macs: m·k·n); with a sparse factor,
    exact counts its stored elements' products."""
    _check_sizes(a[1], b[0], "mm")
    return [_matmul("matmul", a[0], a[1], b[1], False, context, a, (a[0], b[1]), _stored(a, b, a[0], b[1]))]


@rule(aten.addmm, aten.addmm_, aten._sparse_addmm, sparse=(1, 2))
def addmm(bias: Shape, a: Shape, b: Shape, *_, context: Context, beta: Any = 1, **__) -> list[Counted]:
    """bias + (m × k)·(k × n): as mm, plus one addition per output (a Linear layer; torch.sparse.mm and
    torch.sparse.addmm run as _sparse_addmm)."""
    _check_sizes(a[1], b[0], "addmm")
    what, added = _added("matmul", beta)
    return [_matmul(what, a[0], a[1], b[1], added, context, a, (a[0], b[1]), _stored(a, b, a[0], b[1]))]


@rule(aten.bmm)
def bmm(a: Shape, b: Shape, *_, context: Context) -> list[Counted]:
    """A batch of B products (m × k)·(k × n): B·m rows."""
    _check_sizes(a[2], b[1], "bmm")
    return [_matmul("batched matmul", a[0] * a[1], a[2], b[2], False, context, a, (a[0], a[1], b[2]))]


@rule(aten.baddbmm, aten.baddbmm_)
def baddbmm(bias: Shape, a: Shape, b: Shape, *_, context: Context, beta: Any = 1, **__) -> list[Counted]:
    """bias + a batch of products: as bmm, plus one addition per output."""
    _check_sizes(a[2], b[1], "baddbmm")
    what, added = _added("batched matmul", beta)
    return [_matmul(what, a[0] * a[1], a[2], b[2], added, context, a, (a[0], a[1], b[2]))]


@rule(aten.addbmm, aten.addbmm_)
def addbmm(bias: Shape, a: Shape, b: Shape, *_, context: Context, beta: Any = 1, **__) -> list[Counted]:
    """bias + the sum over a batch of B products (m × k)·(k × n): each output sums B·k products."""
    _check_sizes(a[2], b[1], "addbmm")
    _check_sizes(a[0], b[0], "addbmm", "batch")
    what, added = _added("summed batched matmul", beta)
    return [_matmul(what, a[1], a[0] * a[2], b[2], added, context, a, (a[1], b[2]))]


@rule(aten.linear, jagged=True)
def linear(x: Shape, weight: Shape, bias: Shape | None = None, *_, context: Context) -> list[Counted]:
    """F.linear where it reaches aten whole (on a nested tensor; elsewhere it arrives as mm or addmm):
    (rows × in)·(in × out) plus a bias, rows every leading size; a nested input sums its components."""
    if type(x) is Jagged:
        return _summed([linear(part, weight, bias, context=context) for part in x])
    _check_sizes(x[-1], weight[1], "linear")
    out = (*x[:-1], weight[0])
    return [_matmul("matmul + bias" if bias is not None else "matmul", math.prod(x[:-1]), x[-1], weight[0],
                    bias is not None, context, x, out)]


@rule(aten.mv, sparse=(0,))
def mv(a: Shape, v: Shape, *_, context: Context) -> list[Counted]:
    """(m × k)·(k): a product with one column."""
    _check_sizes(a[1], v[0], "mv")
    return [_matmul("matrix-vector", a[0], a[1], 1, False, context, a, (a[0],), _stored(a, v, a[0], 1))]


@rule(aten.addmv, aten.addmv_, sparse=(1,))
def addmv(bias: Shape, a: Shape, v: Shape, *_, context: Context, beta: Any = 1, **__) -> list[Counted]:
    """bias + (m × k)·(k)."""
    _check_sizes(a[1], v[0], "addmv")
    what, added = _added("matrix-vector", beta)
    return [_matmul(what, a[0], a[1], 1, added, context, a, (a[0],), _stored(a, v, a[0], 1))]


@rule(aten.addr, aten.addr_)
def addr(bias: Shape, u: Shape, v: Shape, *_, context: Context, beta: Any = 1, **__) -> list[Counted]:
    """bias + (m)·(n)ᵀ: an outer product, a matrix product of inner size 1 (m·n products, and m·n additions of
    the bias)."""
    what, added = _added("outer product", beta)
    return [_matmul(what, u[0], 1, v[0], added, context, u, (u[0], v[0]))]


@rule(aten.dot, aten.vdot)
def dot(a: Shape, b: Shape, *_, context: Context) -> list[Counted]:
    """(k)·(k): one output of k products."""
    _check_sizes(a[0], b[0], "dot")
    return [_matmul("dot product", 1, a[0], 1, False, context, a, ())]


def _expanded(shape: Shape, expand: Sequence[int], total: int) -> list[Any]:
    """An operand's shape with a size of 1 at each of the ``expand`` dimensions, as _trilinear unsqueezes it."""
    sizes = iter(shape)
    return [1 if i in expand else next(sizes) for i in range(total)]


def _summed_product(left: list[Any], right: list[Any], summed: Sequence[int]) -> tuple[list[Any], Any, Any]:
    """(shape, products, additions) of ATen's sumproduct_pair on two operands of equal rank: their product summed
    over ``summed`` (kept as sizes of 1). A summed dimension only one operand has is summed in it first; the rest
    is one batched product over the dimensions both have (an elementwise product where nothing is summed)."""
    additions = 0
    left, right = list(left), list(right)
    for side in (left, right):
        other = right if side is left else left
        alone = [i for i in summed if side[i] != 1 and other[i] == 1]
        if alone:
            before = math.prod(side)
            for i in alone:
                side[i] = 1
            additions += before - math.prod(side)
    out = [1 if i in summed else (l if l != 1 else r) for i, (l, r) in enumerate(zip(left, right))]
    inner = math.prod(left[i] for i in summed)  # what is left summed: both operands have it
    return out, math.prod(out) * inner, additions + math.prod(out) * (inner - 1) if summed else additions


@rule(aten._trilinear)
def trilinear(i1: Shape, i2: Shape, i3: Shape, expand1: Sequence[int], expand2: Sequence[int],
              expand3: Sequence[int], sumdim: Sequence[int], unroll_dim: int = 1, *_,
              context: Context) -> list[Counted]:
    """nn.Bilinear's product (and its gradients): the three operands, each unsqueezed at its ``expand``
    dimensions, multiplied and summed over ``sumdim``, as ATen runs it: for each index of ``unroll_dim``, the
    first two operands' product summed over the dimensions the third lacks, then that times the third summed over
    the rest. Each output element's first addition is into the zeros it starts from, not an operation. macs
    counts the products, exact and docs the products and additions (a bias added apart, as nn.Bilinear adds
    it, is counted as this product's: one addition per output)."""
    total = len(i1) + len(expand1)
    a, b, c = (_expanded(x, e, total) for x, e in ((i1, expand1), (i2, expand2), (i3, expand3)))
    steps = next((x[unroll_dim] for x in (a, b, c) if x[unroll_dim] != 1), 1)
    a, b, c = ([1 if i == unroll_dim else v for i, v in enumerate(x)] for x in (a, b, c))
    first = [i for i in sumdim if i != unroll_dim and i in expand3]
    second = [i for i in sumdim if i != unroll_dim and i not in expand3]
    pair, products, additions = _summed_product(a, b, first)
    out, more_products, more_additions = _summed_product(pair, c, second)
    products, additions = steps * (products + more_products), steps * (additions + more_additions)
    if unroll_dim in sumdim:  # the steps' results summed into one output
        additions += (steps - 1) * math.prod(out)
    result = tuple(v for i, v in enumerate(out if unroll_dim in sumdim else
                                           [steps if i == unroll_dim else v for i, v in enumerate(out)])
                   if i not in sumdim)
    totals = {name: products if name == "macs" else products + additions for name in context.conventions}
    # a bias (nn.Bilinear's) is added apart: one value per output column, as to a matrix product's output
    return [Counted("trilinear product", totals, tuple(i1), result,
                    product=(math.prod(result[:-1]), 1, result[-1]) if result else None)]


def _attention(q: Shape, k: Shape, v: Shape, context: Context) -> list[Counted]:
    """Q·Kᵀ and P·V of (B, H, L, E) queries, (B, Hk, S, E) keys and (B, Hk, S, Ev) values (Hk divides H)."""
    *batch, L, E = q
    S, Ev = k[-2], v[-1]
    rows = math.prod(batch) * L
    return [_matmul("attention Q·Kᵀ", rows, E, S, False, context, q, (*batch, L, S)),
            _matmul("attention P·V", rows, S, Ev, False, context, q, (*batch, L, Ev))]


@rule(aten._scaled_dot_product_flash_attention_for_cpu, aten._scaled_dot_product_flash_attention,
      aten._scaled_dot_product_efficient_attention, aten._scaled_dot_product_cudnn_attention)
def fused_attention(q: Shape, k: Shape, v: Shape, *_, context: Context, **__) -> list[Counted]:
    """A fused scaled_dot_product_attention: its two products (softmax and scaling are not counted)."""
    return _attention(q, k, v, context)


@rule(aten._scaled_dot_product_flash_attention_for_cpu_backward)
def fused_attention_backward(grad_out: Shape, q: Shape, k: Shape, v: Shape, *_, context: Context,
                             **__) -> list[Counted]:
    """Its backward: dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K, dK = dSᵀ·Q."""
    *batch, L, E = q
    S, Ev = k[-2], v[-1]
    b = math.prod(batch)
    return [_matmul("attention dO·Vᵀ", b * L, Ev, S, False, context, grad_out, (*batch, L, S)),
            _matmul("attention Pᵀ·dO", b * S, L, Ev, False, context, grad_out, (*batch, S, Ev)),
            _matmul("attention dS·K", b * L, S, E, False, context, grad_out, (*batch, L, E)),
            _matmul("attention dSᵀ·Q", b * S, L, E, False, context, grad_out, (*batch, S, E))]


@rule(aten._native_multi_head_attention, jagged=True)
def multi_head_attention(query: Shape, key: Shape, value: Shape, embed_dim: int, num_heads: int,
                         qkv_weight: Shape, qkv_bias: Shape | None, proj_weight: Shape, proj_bias: Shape | None,
                         *_, context: Context, **__) -> list[Counted]:
    """nn.MultiheadAttention's fused path: the q, k, v projections, Q·Kᵀ, P·V and the output projection."""
    if type(query) is Jagged:  # nested sequences: each at its own length
        return _summed([multi_head_attention((1, *q), (1, *k), (1, *v), embed_dim, num_heads, qkv_weight, qkv_bias,
                                             proj_weight, proj_bias, context=context)
                        for q, k, v in zip(query, key, value)])
    *batch, L, E = query
    S = key[-2]
    b = math.prod(batch)
    head = embed_dim // num_heads
    q_rows, kv_rows = b * L, b * S
    bias = qkv_bias is not None
    return [
        _matmul("in-projection q", q_rows, E, embed_dim, bias, context, query, (*batch, L, embed_dim)),
        _matmul("in-projection k", kv_rows, E, embed_dim, bias, context, key, (*batch, S, embed_dim)),
        _matmul("in-projection v", kv_rows, E, embed_dim, bias, context, value, (*batch, S, embed_dim)),
        _matmul("attention Q·Kᵀ", q_rows * num_heads, head, S, False, context, query, (*batch, num_heads, L, S)),
        _matmul("attention P·V", q_rows * num_heads, S, head, False, context, query, (*batch, num_heads, L, head)),
        _matmul("out-projection", q_rows, embed_dim, proj_weight[0], proj_bias is not None, context, query,
                (*batch, L, proj_weight[0])),
    ]


def _encoder_layer(src: Shape, embed_dim: int, num_heads: int, qkv_weight: Shape, qkv_bias: Shape,
                   proj_weight: Shape, proj_bias: Shape, ffn_weight_1: Shape, ffn_weight_2: Shape,
                   context: Context) -> list[Counted]:
    *batch, L, E = src
    rows, hidden, out = math.prod(batch) * L, ffn_weight_1[0], ffn_weight_2[0]
    return [*multi_head_attention(src, src, src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
                                  context=context),
            _matmul("feed-forward in", rows, E, hidden, True, context, src, (*batch, L, hidden)),
            _matmul("feed-forward out", rows, hidden, out, True, context, src, (*batch, L, out))]


@rule(aten._transformer_encoder_layer_fwd, jagged=True)
def transformer_encoder_layer(src: Shape, embed_dim: int, num_heads: int, qkv_weight: Shape, qkv_bias: Shape,
                              proj_weight: Shape, proj_bias: Shape, use_gelu: bool, norm_first: bool, eps: float,
                              norm_weight_1: Shape, norm_bias_1: Shape, norm_weight_2: Shape, norm_bias_2: Shape,
                              ffn_weight_1: Shape, ffn_bias_1: Shape, ffn_weight_2: Shape, ffn_bias_2: Shape,
                              *_, context: Context, **__) -> list[Counted]:
    """nn.TransformerEncoderLayer's fused inference path (eval mode, real tensors, no grad): its self-attention
    as the fused attention's, then the feed-forward's two linear layers (normalisations and activations are not
    counted). A nested batch (a padding mask on this path) runs each sequence at its own length."""
    weights = (embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, ffn_weight_1, ffn_weight_2, context)
    if type(src) is Jagged:
        return _summed([_encoder_layer((1, *part), *weights) for part in src])
    return _encoder_layer(src, *weights)


@rule(aten.mkldnn_rnn_layer)
def lstm_layer(x: Shape, w_ih: Shape, w_hh: Shape, b_ih: Shape, b_hh: Shape, hx: Shape, cx: Shape, reverse: bool,
               batch_sizes: Sequence[int], mode: int, hidden_size: int, num_layers: int, has_biases: bool,
               bidirectional: bool, batch_first: bool, *_, context: Context, **__) -> list[Counted]:
    """One direction of one LSTM layer as oneDNN runs it on real CPU tensors: at every step, the input times
    W_ihᵀ and the hidden state times W_hhᵀ, each plus its bias (the gates' pointwise work is not counted). As
    the unfused path's per-step products, with the rows of all steps together."""
    rows = sum(batch_sizes) if batch_sizes else math.prod(x[:-1])
    return _step_products("LSTM", rows, w_ih, w_hh, None, has_biases, context)


def _recurrent_groups(params: Sequence[Shape], num_layers: int, bidirectional: bool,
                      kind: str) -> Iterator[tuple[str, int, Shape, Shape, Shape | None]]:
    """Each layer and direction of a recurrent layer's flat weights: (its name, its layer, W_ih, W_hh, and W_hr
    where an LSTM projects its hidden state, else None)."""
    directions = 2 if bidirectional else 1
    stride = len(params) // (num_layers * directions)  # each layer and direction: W_ih, W_hh[, biases][, W_hr]
    for group in range(num_layers * directions):
        w_ih, w_hh, *rest = params[group * stride:(group + 1) * stride]
        name = f"{kind} layer {group // directions}{' reverse' if group % directions else ''}"
        yield name, group // directions, w_ih, w_hh, rest[-1] if len(rest) % 2 else None


def _steps(counted: Counted, steps: Any) -> Counted:
    """A product run once at each of ``steps`` steps: its shapes are one step's, its totals all steps'."""
    return replace(counted, what=f"{counted.what}, each step", totals={c: steps * v for c, v in counted.totals.items()},
                   product=None, note=f"at each of {steps} steps")


def recurrent(x: Shape, hx: Any, params: Sequence[Shape], has_biases: bool, num_layers: int, dropout: float,
              train: bool, bidirectional: bool, batch_first: bool, *_, context: Context, kind: str,
              **__) -> list[Counted]:
    """A whole nn.LSTM, nn.GRU or nn.RNN on a (T, B, I) input (B, T, I with ``batch_first``), as its unfused path
    runs it: in each layer and direction, at each of the T steps, the step's input times W_ihᵀ and the hidden
    state times W_hhᵀ, each plus its bias, and an LSTM's projection times W_hrᵀ, with the rows of all steps
    together (the gates' pointwise work is not counted). torch decomposes these operators before a dispatch
    mode sees them; the symbolic profile counts them whole, so that T stays a size (the steps' loop would fix it
    at its hint), and their backward pass with :func:`recurrent_backward`."""
    return [entry for name, _, w_ih, w_hh, w_hr in _recurrent_groups(params, num_layers, bidirectional, kind)
            for entry in _step_products(name, x[0] * x[1], w_ih, w_hh, w_hr, has_biases, context)]


def _step_products(name: str, rows: Any, w_ih: Shape, w_hh: Shape, w_hr: Shape | None, bias: bool,
                   context: Context) -> list[Counted]:
    """One layer and direction of a recurrent layer, the rows of all its steps together: input·W_ihᵀ and
    hidden·W_hhᵀ, each plus its bias where it has one, and an LSTM's projection·W_hrᵀ (without bias)."""
    products = [("input·W_ihᵀ", w_ih, bias), ("hidden·W_hhᵀ", w_hh, bias)]
    if w_hr is not None:
        products.append(("projection·W_hrᵀ", w_hr, False))
    return [replace(_matmul(f"{name} {what}", rows, w[1], w[0], added, context, (rows, w[1]), (rows, w[0])),
                    note="the steps' products together") for what, w, added in products]


def _step_gradients(name: str, batches: dict[Any, Any], w_ih: Shape, w_hh: Shape, w_hr: Shape | None,
                    input_grad: bool, hidden_first: bool, context: Context, merged: bool = False) -> list[Counted]:
    """The backward products of one layer and direction of a recurrent layer, as autograd runs them through its
    unfused steps; ``batches`` maps a step's rows to the number of steps with that many (one entry for a padded
    batch; a packed one shrinks). At each step: the gradient of W_ihᵀ and of W_hhᵀ (the gates' gradient
    against the step's input and hidden state, summed over its rows), of the hidden state through W_hh (not at
    the first step unless ``hidden_first``: its initial state is zeros that need none), of the step's input
    through W_ih where ``input_grad``, and an LSTM's projection's two (of W_hr, and of the hidden state through
    it). Each a product without bias; the biases' gradients (sums over the rows) and the gates' pointwise work
    are not counted. ``merged``: the input's products once for all steps together (the rows of every step), as
    torch's unfused path on CPU tensors computes the input's projection (and oneDNN its gradient)."""
    gates, inner, state = w_ih[0], w_ih[1], w_hh[1]
    first = max(batches, key=lambda b: (b if is_int(b) else 0))  # the first step has the most rows
    rows = sum(b * n for b, n in batches.items())
    counted = []
    if merged:
        counted.append(_matmul(f"{name} grad W_ih", gates, rows, inner, False, context, (gates, rows), (gates, inner)))
        if input_grad:
            counted.append(_matmul(f"{name} grad input", rows, gates, inner, False, context, (rows, gates),
                                   (rows, inner)))
    for batch, steps in batches.items():
        products = [("grad W_hh", gates, batch, state, steps),
                    ("grad hidden", batch, gates, state, steps if hidden_first or batch != first else steps - 1)]
        if not merged:
            products.append(("grad W_ih", gates, batch, inner, steps))
            if input_grad:
                products.append(("grad input", batch, gates, inner, steps))
        if w_hr is not None:
            out, hidden = w_hr
            products += [("grad W_hr", out, batch, hidden, steps), ("grad hidden through W_hr", batch, out, hidden, steps)]
        counted += [_steps(_matmul(f"{name} {what}", m, k, n, False, context, (m, k), (m, n)), times)
                    for what, m, k, n, times in products]
    return counted


def recurrent_backward(x: Shape, hx: Any, params: Sequence[Shape], has_biases: bool, num_layers: int,
                       dropout: float, train: bool, bidirectional: bool, batch_first: bool, input_grad: bool,
                       hidden_grad: bool, *_, context: Context, kind: str, **__) -> list[Counted]:
    """The backward pass of :func:`recurrent` as autograd runs it through the steps (:func:`_step_gradients`): the
    input's gradient where it requires grad (``input_grad``; the layers above the first always do), the initial
    state's where it does (``hidden_grad``)."""
    steps, batch = (x[1], x[0]) if batch_first else (x[0], x[1])
    return [entry for name, layer, w_ih, w_hh, w_hr in _recurrent_groups(params, num_layers, bidirectional, kind)
            for entry in _step_gradients(name, {batch: steps}, w_ih, w_hh, w_hr, bool(layer or input_grad),
                                         hidden_grad, context)]


@rule(aten.mkldnn_rnn_layer_backward)
def lstm_layer_backward(x: Shape, w_ih: Shape, w_hh: Shape, b_ih: Shape, b_hh: Shape, hx: Shape, cx: Shape,
                        output: Shape, hy: Shape, cy: Shape, grad_output: Shape | None, grad_hy: Shape | None,
                        grad_cy: Shape | None, reverse: bool, mode: int, hidden_size: int, num_layers: int,
                        has_biases: bool, train: bool, bidirectional: bool, batch_sizes: Sequence[int],
                        batch_first: bool, *_, context: Context, **__) -> list[Counted]:
    """The backward pass of one direction of one LSTM layer as oneDNN runs it on real CPU tensors: it computes
    every gradient, the input's and the initial state's too, counted as torch's unfused path on CPU tensors runs
    them (:func:`_step_gradients`): the hidden state's products step by step, the input's for all steps at once."""
    if batch_sizes:  # a packed batch: each step's rows
        batches = dict(Counter(batch_sizes))
    else:
        steps, batch = (x[1], x[0]) if batch_first else (x[0], x[1])
        batches = {batch: steps}
    return _step_gradients("LSTM", batches, w_ih, w_hh, None, True, True, context, merged=True)


#: the backward passes of the operators counted whole (see :func:`recurrent_backward`)
WHOLE_BACKWARD: dict[Any, Rule] = {}
for _packet, _kind in ((aten.lstm, "LSTM"), (aten.gru, "GRU"), (aten.rnn_tanh, "RNN"), (aten.rnn_relu, "RNN")):
    rule(_packet)(partial(recurrent, kind=_kind))
    WHOLE_BACKWARD[_packet] = partial(recurrent_backward, kind=_kind)
