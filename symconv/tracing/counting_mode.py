"""The dispatch mode that counts what runs: every aten operator, attributed to the modules that issued it.

Whatever reaches aten (a module, a functional call, a parametrization, a subclass's
own forward, attention, the backward pass) passes through
:meth:`CountingMode.__torch_dispatch__`. Operators with a rule in :mod:`.ops` are
counted; every other one is recorded as not counted.

On meta tensors the mode makes the outputs of common operators itself
(:mod:`.shapes`) instead of running torch's Python meta kernels, whose first use
costs about a second of imports.

Which modules are running comes from a wrapper around each module's call
(:class:`ForwardStack`), and in a backward pass from the gradient hooks it
registers (:class:`TrainingStack`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass
from functools import partial
from itertools import zip_longest
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.autograd.graph import register_multi_grad_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

from ..core.errors import SymconvError
from . import shapes
from .ops import (RULES, Context, Counted, Sparse, _convolution_layer, biasless, fits_as_bias, is_sparse, shape_of,
                  takes, with_bias)

aten = torch.ops.aten
#: a convolution or its backward, whose input may be zero padding merged into the layer
CONVOLVES = (aten.convolution, aten._convolution, aten.convolution_backward)
_CALL = "_compiled_call_impl"  # what Module.__call__ runs in place of _call_impl where it is set
_PRODUCTS = (aten.mm, aten.bmm, aten._trilinear)  # products without a bias of their own
_ADDS = (aten.add, aten.add_)
_RECENT_PRODUCTS = 8

# What each (operator, argument shapes, context) costs, kept across runs: models repeat their layers, and
# profiling the same model again is common. Counted entries are frozen; the cache is dropped when full.
_COUNTED: dict[tuple, list[Counted]] = {}
_COUNTED_LIMIT = 4096


def clear_caches() -> None:
    """Forget every count, layer and output shape remembered across runs: the next profile works each out
    afresh, as the first one in a process does (for measurements)."""
    _COUNTED.clear()
    _convolution_layer.cache_clear()
    shapes.clear_caches()

#: operators that move, view or create data and do no arithmetic
DATA_MOVEMENT = frozenset(str(p) for p in (
    aten.view, aten._unsafe_view, aten.reshape, aten.t, aten.transpose, aten.permute, aten.expand, aten.squeeze,
    aten.unsqueeze, aten.select, aten.slice, aten.split, aten.split_with_sizes, aten.unbind, aten.chunk,
    aten.detach, aten.alias, aten.clone, aten.copy_, aten._to_copy, aten.contiguous, aten.cat, aten.stack,
    aten.empty, aten.empty_like, aten.empty_strided, aten.zeros, aten.zeros_like, aten.ones, aten.ones_like,
    aten.full, aten.full_like, aten.fill_, aten.zero_, aten.new_empty, aten.new_zeros, aten.new_ones,
    aten.new_empty_strided, aten.lift_fresh, aten.constant_pad_nd, aten.reflection_pad1d, aten.reflection_pad2d,
    aten.reflection_pad3d, aten.replication_pad1d, aten.replication_pad2d, aten.replication_pad3d,
    aten.flatten, aten.unflatten, aten.as_strided, aten.index_select, aten.gather, aten.repeat,
    aten._reshape_alias, aten.narrow, aten.roll, aten.flip, aten.embedding, aten._local_scalar_dense, aten.set_,
    aten.resize_,
    # each output element a copy of an input element or a constant
    aten.pixel_shuffle, aten.pixel_unshuffle, aten.channel_shuffle, aten.native_channel_shuffle,
    aten.upsample_nearest1d, aten.upsample_nearest2d, aten.upsample_nearest3d, aten._upsample_nearest_exact1d,
    aten._upsample_nearest_exact2d, aten._upsample_nearest_exact3d, aten.unfold, aten.im2col, aten.triu,
    aten.tril, aten.masked_fill, aten.masked_fill_, aten.where, aten.index, aten.repeat_interleave, aten.diagonal,
    aten.movedim, aten.new_full, aten.arange, aten.scalar_tensor, aten.lift_fresh_copy))

#: not operators, not recorded: a metadata query (fake tensors, with symbolic sizes, dispatch ``tensor.device``
#: where meta tensors answer it without dispatching, so the two runs of one model would list different operators)
#: and the profiler's annotations (``torch.autograd.profiler.record_function``, which nn.DataParallel calls)
_NOT_OPERATORS = frozenset({"prim.device", "profiler._record_function_enter", "profiler._record_function_enter_new",
                            "profiler._record_function_exit"})


@dataclass(slots=True)
class Record:
    """One operator call: where it ran and, when counted, what it costs."""

    op: str                      # "aten.convolution"
    stack: tuple[str, ...]       # the modules running it, outermost first ("" is the model itself)
    phase: str                   # "forward" or "backward"
    counted: Counted | None = None

    @property
    def module(self) -> str:
        return self.stack[-1] if self.stack else ""


@dataclass(frozen=True)
class _Plan:
    """What recording an operator involves, worked out once per operator overload."""

    packet: Any
    name: str
    rule: Any
    pads: bool        # a constant pad, perhaps merged into the convolution it feeds
    adds: bool        # an add, perhaps the bias of a product run without one
    convolves: bool   # a convolution or its backward, whose input may be padded
    multiplies: bool  # a matrix product without a bias of its own
    recorded: bool    # an operator, not a metadata query or a profiler annotation
    symbolic_safe: bool  # its output is made by the shapes module on symbolic sizes too
    shaped_by_count: bool  # a forward convolution: on meta, its output is made in the shape its count gives


_PLANS: dict[Any, _Plan] = {}


def _plan(func) -> _Plan:
    packet = func.overloadpacket
    _PLANS[func] = _Plan(packet, str(packet), RULES.get(packet), packet is aten.constant_pad_nd, packet in _ADDS,
                         packet in CONVOLVES, packet in _PRODUCTS,
                         str(packet) not in _NOT_OPERATORS, shapes.symbolic_safe(func),
                         func is aten.convolution.default)
    return _PLANS[func]


def _all_meta(args: Any, kwargs: dict | None = None) -> bool:
    """Whether no tensor among the arguments (a tensor list among them) is off the meta device. Read from the
    values, not from the schema: an operator's schema costs tens of µs the first time it is read, as much as
    dozens of calls of this loop."""
    if kwargs and not _all_meta(kwargs.values()):
        return False
    for v in args:
        kind = type(v)
        if kind is list or kind is tuple:
            for e in v:
                if isinstance(e, torch.Tensor) and not e.is_meta:
                    return False
        elif isinstance(v, torch.Tensor) and not v.is_meta:
            return False
    return True


def _storage(t: torch.Tensor) -> int | None:
    """Identity of a tensor's storage, shared by its views; None for a sparse tensor, which has none."""
    return t.untyped_storage()._cdata if t.layout is torch.strided else None


def _same(size: Any) -> Any:
    return size


_PLAIN = frozenset((int, bool, float, str, type(None)))


def _shaped(value: Any, size: Callable[[Any], Any]) -> Any:
    """An argument as a rule sees it, hashable: tensors as their shapes (each size through ``size``),
    lists as tuples. Every counted operator's arguments pass here: the common kinds are tested first."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list or kind is tuple:  # before the tensor check, which goes through torch's metaclass
        return tuple([v if type(v) in _PLAIN else _shaped(v, size) for v in value])
    if isinstance(value, torch.Tensor):
        if size is _same or value.is_nested:
            return shape_of(value)
        shape = tuple(size(v) for v in value.shape)
        return Sparse(shape) if is_sparse(value) else shape  # a fake tensor's elements are unknown
    if isinstance(value, (list, tuple)):  # a subclass of either (torch.Size)
        return tuple([v if type(v) in _PLAIN else _shaped(v, size) for v in value])
    return size(value)


def operands(args: tuple, kwargs: dict, size: Callable[[Any], Any] = _same) -> tuple[tuple, dict]:
    """An operator's arguments as its rule takes them: positional and named, shaped (``out=`` names where the
    result goes: no operand)."""
    return tuple([_shaped(a, size) for a in args]), {k: _shaped(v, size) for k, v in kwargs.items() if k != "out"}


def _mark_ours(err: Exception) -> None:
    """An exception raised by symconv's own code inside the mode, other than SymconvError, is a bug in
    symconv: marked so that the profiler lets it through with its traceback instead of blaming the model."""
    if not isinstance(err, SymconvError):
        err.symconv_bug = True


def is_symconv_bug(err: BaseException) -> bool:
    return getattr(err, "symconv_bug", False)


class ZeroPads:
    """Zero padding applied before a convolution, remembered so that the convolution counts it as its padding."""

    def __init__(self, size: Callable[[Any], Any] = _same) -> None:
        self.size = size  # a tensor size as the rules see it (symbolic runs translate SymInts)
        self.padded = WeakIdKeyDictionary()  # output of a zero constant_pad_nd -> (its input shape, its pad)

    def _of(self, x: Any) -> tuple | None:
        """(source shape, pad) of a tensor made by zero padding, else None."""
        return self.padded.get(x) if len(self.padded) and isinstance(x, torch.Tensor) else None

    def remember(self, args: tuple, kwargs: dict, out: torch.Tensor) -> None:
        """A ``constant_pad_nd``: its output remembered if it padded with zeros."""
        x, pad = args[0], list(args[1])
        value = args[2] if len(args) > 2 else kwargs.get("value", 0)
        if value == 0 and all(p >= 0 for p in pad):
            pad = _shaped(pad, self.size)  # symbolic amounts (a size-dependent "same" padding) as expressions
            found = self._of(x)
            if found is None:
                self.padded[out] = (_shaped(x, self.size), tuple(pad))
            else:  # zeros around zeros: one pad of the first input, by the sum of both (last dimension first)
                source, inner = found
                self.padded[out] = (source, tuple(a + b for a, b in zip_longest(pad, inner, fillvalue=0)))

    def merged(self, args: tuple, packet: Any, context: Context) -> Context:
        """Zero padding that produced a (plain) convolution's input: merged into the layer's padding."""
        x, w = (args[0], args[1]) if packet is not aten.convolution_backward else (args[1], args[2])
        transposed = args[6] if packet is not aten.convolution_backward else args[7]
        found = self._of(x)
        if found is None or transposed:
            return context
        source, pad = found
        ndim = w.dim() - 2
        axes = len(pad) // 2  # pad lists (left, right) pairs from the last dimension backwards
        if axes > ndim:
            return context  # it pads channels or batch too: those zeros are data, not padding
        per_axis = [(0, 0)] * ndim
        for i in range(axes):
            per_axis[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        return Context(context.conventions, tuple(per_axis), source)


class ForwardStack:
    """The modules running a forward pass, outermost first.

    Each module of the copy is called through a wrapper set as its
    ``_compiled_call_impl`` (which ``Module.__call__`` runs instead of ``_call_impl``
    where it is set) for the run: torch's global module hooks would do it too, but
    they send every module call down ``_call_impl``'s slow path (a tenth of a
    ResNet-50's profile). The module's own hooks run within its call. A module the
    copy does not hold (one made during forward) is not tracked: its operators are
    its caller's.
    """

    def __init__(self, modules: Sequence[tuple[str, torch.nn.Module]]) -> None:
        self.modules = modules  # (name, module) of every module the copy holds
        self.current: tuple[str, ...] = ()  # the running modules' names, outermost first

    def _tracked(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def tracked(*args: Any, **kwargs: Any) -> Any:
            outer = self.current
            self.current = (*outer, name)
            try:  # a module that raises leaves too (activation checkpointing stops its recomputation that way)
                return call(*args, **kwargs)
            finally:
                self.current = outer
        return tracked

    def __enter__(self) -> "ForwardStack":
        for name, module in self.modules:
            module.__dict__[_CALL] = self._tracked(name, module._call_impl)
        return self

    def __exit__(self, *exc: Any) -> None:
        for _, module in self.modules:
            module.__dict__.pop(_CALL, None)  # the class's None: the copier drops a compiled call

    def where(self) -> tuple[tuple[str, ...], str]:
        return self.current, "forward"


def _enclosing(name: str) -> tuple[str, ...]:
    """A module's fully qualified name and its ancestors', outermost ("", the model) first."""
    parts = name.split(".") if name else []
    return ("", *(".".join(parts[:i]) for i in range(1, len(parts) + 1)))


def _in_backward() -> bool:
    return torch._C._current_graph_task_id() != -1


def requiring_grad(value: Any) -> list[torch.Tensor]:
    """The tensors in a value (a tensor; a list, tuple, dict or dataclass of them, nested) that require grad."""
    found = []
    for leaf in tree_flatten(value)[0]:
        if isinstance(leaf, torch.Tensor):
            if leaf.requires_grad:
                found.append(leaf)
        # a model's output record, which pytree keeps whole: a dataclass, a subclass of dict, list or tuple
        elif is_dataclass(leaf) and not isinstance(leaf, type):
            found += requiring_grad([getattr(leaf, f.name) for f in fields(leaf)])
        elif isinstance(leaf, Mapping):
            found += requiring_grad(list(leaf.values()))
        elif isinstance(leaf, (list, tuple)):
            found += requiring_grad(list(leaf))
    return found


class TrainingStack(ForwardStack):
    """The modules running, forward and backward.

    In the backward pass a module is entered at the first gradient of its outputs and
    left once its inputs' gradients are complete (torch's multi-grad hooks, registered
    as the module runs forward); of the modules in their backward, the one entered last
    is at work (a residual block's downsampling runs while the main branch, which reads
    the same input, waits for it). A forward run inside the backward pass (activation
    checkpointing recomputing it) keeps its forward stack, and registers hooks too: a
    reentrant checkpoint differentiates it in a backward pass of its own. torch's
    ModuleTracker keeps a set instead: it never enters the module that made the
    model's output (torch does not report a backward pass's roots as reached),
    attributes a downsampling branch to the main branch's modules, and lets a
    recomputation leave the module whose backward recomputes it.
    """

    def __init__(self, modules: Sequence[tuple[str, torch.nn.Module]]) -> None:
        super().__init__(modules)
        # modules in their backward -> (times entered, the operator count when last entered)
        self.running: dict[str, tuple[int, int]] = {}
        self.operators = 0
        self._grad_hooks: list = []

    def _tracked(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def tracked(*args: Any, **kwargs: Any) -> Any:
            outer = self.current
            self.current = (*outer, name)
            # within the module: registering a hook on tensors runs operators, which are the module's
            self._on_gradients(args, self._leave_backward, name, "all")
            try:
                output = call(*args, **kwargs)
            finally:
                self.current = outer
            self._on_gradients(output, self._enter_backward, name, "any")
            return output
        return tracked

    def _on_gradients(self, value: Any, hook: Callable[..., None], name: str, mode: str) -> None:
        """``hook(name)`` once the gradients of the tensors in ``value`` that require grad are computed (all of
        them, or any)."""
        tensors = requiring_grad(value)
        if tensors:
            self._grad_hooks.append(register_multi_grad_hook(tensors, partial(hook, name), mode=mode))

    def _enter_backward(self, name: str, *grads: Any) -> None:
        self.running[name] = (self.running.get(name, (0, 0))[0] + 1, self.operators)

    def _leave_backward(self, name: str, *grads: Any) -> None:
        times = self.running.get(name, (0, 0))[0]
        if times > 1:
            self.running[name] = (times - 1, self.running[name][1])
        elif times:
            del self.running[name]

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        for handle in self._grad_hooks:
            handle.remove()

    def where(self) -> tuple[tuple[str, ...], str]:
        self.operators += 1
        if not _in_backward():
            return self.current, "forward"
        if self.current:
            return _enclosing(self.current[-1]), "backward"
        # entered last; of modules entered together (the model and the module that made its output), the deepest
        name = max(self.running, key=lambda n: (self.running[n][1], n.count(".") + bool(n)), default="")
        return _enclosing(name), "backward"


class CountingMode(TorchDispatchMode):
    """Counts every aten operator the model runs (see the module docstring)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # This mode never runs under torch.compile; wrapping it for dynamo would import torch._dynamo (~1.5 s).
        return False

    def __init__(self, conventions: tuple[str, ...], modules: Sequence[tuple[str, torch.nn.Module]],
                 fast_meta: bool = True, backward: bool = False, size: Callable[[Any], Any] = _same) -> None:
        super().__init__()
        self.conventions = conventions
        self.fast_meta = fast_meta
        self.size = size  # a tensor size as the rules see it (symbolic runs translate SymInts)
        self.records: list[Record] = []
        self.recording = True  # off while the profiler itself makes tensors (see aside)
        self.names = {id(m): name for name, m in modules}  # each module of the model run -> its name
        self.tracker = (TrainingStack if backward else ForwardStack)(modules)
        self._pads = ZeroPads(size)
        # Concrete sizes share the process-wide cache; a symbolic run's sizes are its own.
        self._counted: dict[tuple, list[Counted]] = _COUNTED if size is _same else {}
        self._context = Context(conventions)
        # The latest matrix products without bias: storage -> (the storage, kept alive so that its address is not
        # reused, and the index of the product's record). A bias add follows its product within a few operators.
        self._products: dict[int, tuple[Any, int]] = {}
        # The latest forward convolution: (its output, the index of its record). Its bias, where a separate add
        # supplies it, follows before the next convolution; most convolutions feed a normalisation instead, so
        # its storage is looked up only at an add.
        self._convolution: tuple[torch.Tensor, int] | None = None

    def __enter__(self):
        self.tracker.__enter__()
        try:
            return super().__enter__()
        except BaseException:
            self.tracker.__exit__(None, None, None)
            raise

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            self.tracker.__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = NotImplemented
        counted = None
        try:
            plan = _PLANS.get(func) or _plan(func)
            if (self.fast_meta or plan.symbolic_safe) and _all_meta(args, kwargs):
                if plan.shaped_by_count and self.fast_meta:
                    # The count checks the layer and input as torch does, and knows the output's shape: one
                    # look-up for both, where the count is known
                    counted = self._count(plan, args, kwargs)
                    if counted is not None:
                        out = shapes.convolution_output(args[0], args[1], counted[0].output_shape)
                if out is NotImplemented:
                    out = shapes.fast_output(func, args, kwargs)
        except Exception as err:
            _mark_ours(err)
            raise
        if out is NotImplemented:
            out = func(*args, **kwargs)  # torch's own kernel: its errors are the model's
        if self.recording and plan.recorded:
            try:
                self._record(plan, args, kwargs, out, counted)
            except Exception as err:
                _mark_ours(err)
                raise
        return out

    # --- recording -----------------------------------------------------------------------------------------

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Tensors the profiler itself makes (a backward pass's seeds, stand-ins for a layer counted whole): not
        the model's operators, not recorded."""
        self.recording = False
        try:
            yield
        finally:
            self.recording = True

    def record_whole(self, func: Any, args: tuple, kwargs: dict, out: Any, rule: Any = None) -> None:
        """A call of an operator that torch decomposes before this mode sees it, counted whole by its rule (the
        symbolic profile's recurrent layers: their steps' loop would fix the sequence length at its hint), or
        by ``rule`` (its backward pass)."""
        try:
            plan = _PLANS.get(func) or _plan(func)
            if rule is None:
                self._record(plan, args, kwargs, out)
                return
            stack, phase = self.tracker.where()
            shaped, named = operands(args, kwargs, self.size)
            self.records += [Record(plan.name, stack, phase, entry)
                             for entry in rule(*shaped, **named, context=self._context)]
        except Exception as err:
            _mark_ours(err)
            raise

    def _record(self, plan: _Plan, args: tuple, kwargs: dict, out: Any, counted: list[Counted] | None = None
                ) -> None:
        """Records an operator call, with its count (``counted`` where it is known) where it has a rule."""
        # A pad in the backward pass (a pad's gradient, cropping) feeds no convolution's input: not looked at, so
        # that a symbolic run does not test its amounts (negated, they hold only where they are 0: even sizes)
        if plan.pads and not self._differentiating():
            self._pads.remember(args, kwargs, out)
        if plan.adds and (self._products or self._convolution) and not self._differentiating() and \
                self._bias_of_a_product(args, kwargs):
            return
        stack, phase = self.tracker.where()
        if plan.rule is None:
            self.records.append(Record(plan.name, stack, phase))
            return
        if counted is None:
            counted = self._count(plan, args, kwargs)
            if counted is None:
                self.records.append(Record(plan.name, stack, phase))  # a nested tensor: listed, not counted
                return
        self.records += [Record(plan.name, stack, phase, entry) for entry in counted]
        if not isinstance(out, torch.Tensor):  # a tuple (a convolution's backward): no bias can follow
            return
        if plan.convolves:
            self._convolution = (out, len(self.records) - 1)
        elif plan.multiplies:
            storage = out.untyped_storage()
            self._products[storage._cdata] = (storage, len(self.records) - 1)
            if len(self._products) > _RECENT_PRODUCTS:
                del self._products[next(iter(self._products))]

    def _count(self, plan: _Plan, args: tuple, kwargs: dict) -> list[Counted] | None:
        """An operator call's count by its rule, remembered by its arguments' shapes (and any zero padding merged
        into a convolution); None where the rule does not take the arguments (a nested tensor)."""
        context = self._pads.merged(args, plan.packet, self._context) if plan.convolves else self._context
        shaped, named = operands(args, kwargs, self.size)
        key = (plan.packet, shaped, tuple(sorted(named.items())) if named else (), context)
        counted = self._counted.get(key)
        if counted is None:
            if not takes(plan.rule, (*shaped, *named.values())):
                return None
            if len(self._counted) >= _COUNTED_LIMIT:
                self._counted.clear()
            counted = self._counted[key] = plan.rule(*shaped, **named, context=context)
        return counted

    def _differentiating(self) -> bool:
        """Whether the operator runs in the backward pass itself (not in a forward run the backward pass repeats,
        as activation checkpointing does): its adds sum gradients from two paths, never a product's bias, even
        where one of them is shaped like a bias (a batch of one)."""
        return _in_backward() and not self.tracker.current

    def _bias_of_a_product(self, args: tuple, kwargs: dict) -> bool:
        """An ``add`` of a bias to the output of a product run without one (or a view of it): counted as that
        product's bias, like addmm's or a convolution's own, instead of as an uncounted add."""
        if len(args) < 2 or not all(isinstance(a, torch.Tensor) for a in args[:2]) or kwargs.get("alpha", 1) != 1:
            return False
        for product, bias in ((args[0], args[1]), (args[1], args[0])):
            storage = _storage(product)
            found = self._products.get(storage)
            convolution = found is None and self._convolution is not None and storage == _storage(self._convolution[0])
            if convolution:
                found = self._convolution
            if found is None:
                continue
            record = self.records[found[1]]
            if biasless(record.counted) and \
                    fits_as_bias(record.counted, _shaped(bias, self.size), _shaped(product, self.size)):
                record.counted = with_bias(record.counted, self.conventions)
                if convolution:
                    self._convolution = None
                else:
                    del self._products[storage]
                return True
        return False
