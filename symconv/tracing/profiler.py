"""Whole-model profiles: every operator a model runs, counted and attributed to its modules.

:func:`profile` runs a copy of the model under :class:`.CountingMode`: on the meta
device (no memory, no arithmetic) with the example's shape and dtype, or, where the
model needs real values (data-dependent control flow, an operator without a meta
kernel), on the user's own example tensor under ``no_grad``. The user's model is
never touched: the copy shares no parameter, buffer or module with it, the random
number generator's state is restored, and every hook the run installs is removed,
whether the run succeeds or fails.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import itertools
import sys
import types
import warnings
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedTensorMixin
from torch.utils._pytree import tree_leaves, tree_map, tree_map_only

from ..core.errors import SymconvError, require_bool
from ..core.names import CONVENTION_NAMES, convention_name
from ..numeric.layer import is_int
from .arguments import ATOMS as _ATOMS
from .arguments import Signature, example_inputs, given_dtypes, given_shapes, listed, passed_text
from .counting_mode import CountingMode, is_symconv_bug, requiring_grad
from .ops import SPARSE_LAYOUTS, is_sparse, shape_of
from .report import ModuleInfo, Profile, inputs_text

META, REAL, SYMBOLIC = "meta", "real values", "symbolic"
_META = torch.device("meta")  # a device object: torch parses a device name at every call


def _checked_model(model: Any) -> torch.nn.Module:
    """The module to profile: the model, or the module a ``torch.export`` program runs."""
    export = sys.modules.get("torch.export")  # where it is not imported, nothing was exported
    if export is not None and isinstance(model, export.ExportedProgram):
        return model.module()  # a new module each call: the user's program is not touched
    if isinstance(model, torch.jit.ScriptModule):
        raise SymconvError(f"{type(model).__name__} is a TorchScript module: profile the torch.nn.Module it was "
                           f"scripted from (symconv counts the aten operators a Python forward runs)")
    if not isinstance(model, torch.nn.Module):
        raise SymconvError(f"model={type(model).__name__} must be a torch.nn.Module")
    return model


class _ValuesNeeded(SymconvError):
    """The model holds, or takes, a sparse tensor: a meta stand-in would not say which elements it stores."""


def _meta_empty(t: torch.Tensor) -> torch.Tensor:
    if is_sparse(t):
        raise _ValuesNeeded(f"a {str(t.layout).removeprefix('torch.')} tensor of shape {tuple(t.shape)}: its "
                            f"products are counted by the elements it stores, read from real values")
    if type(t) in (torch.Tensor, torch.nn.Parameter) and not t.is_meta:
        return torch.empty_like(t, device=_META)  # the quickest way, from a tensor that is not on meta
    # torch.empty, not empty_like: on a meta tensor empty_like runs a Python reference that imports SymPy.
    return torch.empty(tuple(t.shape), dtype=t.dtype, device=_META)


def _meta_like(t: torch.Tensor) -> torch.Tensor:
    """A meta stand-in of a parameter, buffer or tensor attribute (lazy modules' ones stay uninitialized)."""
    kind = type(t)
    if kind is torch.nn.Parameter:  # the common case first: the checks below go through a Python metaclass
        return torch.Tensor._make_subclass(torch.nn.Parameter, _meta_empty(t), t.requires_grad)
    if kind is not torch.Tensor:
        if isinstance(t, torch.nn.parameter.UninitializedParameter):
            return torch.nn.parameter.UninitializedParameter(t.requires_grad, device="meta", dtype=t.dtype)
        if isinstance(t, torch.nn.parameter.UninitializedBuffer):
            return torch.nn.parameter.UninitializedBuffer(t.requires_grad, device="meta", dtype=t.dtype)
    meta = _meta_empty(t)
    if isinstance(t, torch.nn.Parameter):
        return torch.nn.Parameter(meta, t.requires_grad)
    return meta.requires_grad_(t.requires_grad) if t.is_leaf and t.requires_grad else meta


@contextmanager
def _eager() -> Iterator[None]:
    """Compiled modules and functions run eagerly, operator by operator: dynamo would trace the counting mode
    itself, and ``module.compile()`` keeps a compiled call bound to the user's own module."""
    if "torch._dynamo" not in sys.modules:
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield


_COMPRESSED = SPARSE_LAYOUTS - {torch.sparse_coo}  # CSR, CSC, BSR, BSC: no storage that deepcopy could copy


def _real_copy(t: torch.Tensor, memo: dict[int, Any]) -> torch.Tensor:
    """A copy of a tensor with its values: torch deep-copies any but a compressed sparse one, cloned here with
    the same flags, and one made by autograd (an attribute computed from a parameter), which torch refuses to
    copy: cut from the user's graph, as its meta stand-in is."""
    if not t.is_leaf:
        return t.detach().clone()
    if t.layout not in _COMPRESSED:
        return copy.deepcopy(t, memo)
    clone = t.detach().clone()
    if isinstance(t, torch.nn.Parameter):
        return torch.nn.Parameter(clone, t.requires_grad)
    return clone.requires_grad_(t.requires_grad)


_CONTAINERS = frozenset((dict, OrderedDict, set, list))


_HELD = "_symconv_held"  # the copy's attribute holding what it refers to weakly (_Copier.reference)


class _Copier:
    """A copy of a module tree sharing no state with it: every tensor a meta stand-in (or a real copy).

    It builds each module itself (the bulk of ``copy.deepcopy``'s time goes to the
    dozen empty hook dictionaries of every module: new empty ones here) and
    deep-copies everything else through one memo, so hooks bound to a module are
    rebound to its copy; tensors, modules and closures within other values are
    copied its own way first, for deepcopy to find in the memo.
    """

    def __init__(self, meta: bool) -> None:
        self.meta = meta
        self.memo: dict[int, Any] = {}
        self.held: list[Any] = []  # the copies weak references refer to, which the copy of the model keeps alive
        self.modules: list[torch.nn.Module] = []  # every module copied, in the model's tree or outside it
        # torch.compile(module)'s wrapper class, looked up without importing torch._dynamo (about 1.5 s): where
        # it is not imported, nothing was compiled
        eval_frame = sys.modules.get("torch._dynamo.eval_frame")
        self.compiled = eval_frame.OptimizedModule if eval_frame is not None else None

    def tensor(self, t: torch.Tensor) -> torch.Tensor:
        copied = self.memo.get(id(t))
        if copied is None:
            copied = self.memo[id(t)] = _meta_like(t) if self.meta else _real_copy(t, self.memo)
        return copied

    def value(self, v: Any) -> Any:
        kind = type(v)
        if kind in _ATOMS:
            return v
        if isinstance(v, torch.Tensor):
            return self.tensor(v)
        if isinstance(v, torch.nn.Module):
            return self.module(v)
        if kind is types.FunctionType:
            return self.function(v)
        if kind is weakref.ReferenceType:
            return self.reference(v)
        if kind is list and _ATOMS.issuperset(map(type, v)):  # a layer's sizes, the common case: quickest
            copied = self.memo.get(id(v))
            if copied is None:
                copied = self.memo[id(v)] = list(v)
            return copied
        # What the copier copies its own way, wherever it lies in the value, is copied first, so that deepcopy
        # finds each copy in the memo: deepcopy would copy a tensor with its values (the stand-ins would meet it;
        # for a run on values, only those deepcopy refuses: it copies the rest alike, and may share the value
        # before reaching them), a layer as any object, and share a function, which closes over the user's model
        for part in _parts(v):
            if self.meta or not isinstance(part, torch.Tensor) or not part.is_leaf or part.layout in _COMPRESSED:
                self.value(part)
        known = len(self.memo)
        try:
            return copy.deepcopy(v, self.memo)
        except (TypeError, copy.Error):  # a lock, a file, a generator: no copy exists, so the copy shares it
            self._forget(known)
            self.memo[id(v)] = v
            return v

    def function(self, f: types.FunctionType) -> types.FunctionType:
        """A function closing over values (a lambda over the model, a hook keeping outputs in the model's list): the
        same code over copies of them and of its defaults. A function closing over nothing is itself."""
        copied = self.memo.get(id(f))
        if copied is not None:
            return copied
        if not f.__closure__:
            return f
        cells = tuple(types.CellType() for _ in f.__closure__)
        clone = self.memo[id(f)] = types.FunctionType(f.__code__, f.__globals__, f.__name__, None, cells)
        clone.__qualname__, clone.__module__, clone.__doc__ = f.__qualname__, f.__module__, f.__doc__
        clone.__dict__.update(f.__dict__)
        for cell, old in zip(cells, f.__closure__):
            try:
                contents = old.cell_contents
            except ValueError:  # an empty cell: a name the function's scope had not bound yet
                continue
            cell.cell_contents = self.value(contents)
        clone.__defaults__ = None if f.__defaults__ is None else tuple(self.value(d) for d in f.__defaults__)
        clone.__kwdefaults__ = None if f.__kwdefaults__ is None else self.value(f.__kwdefaults__)
        return clone

    def reference(self, r: weakref.ReferenceType) -> weakref.ReferenceType:
        """A weak reference (a layer's to its parent, to avoid a cycle): one to the copy of what it refers to, so
        that the copy never reaches the user's object; that copy is held (:attr:`held`: it may lie outside the
        model). Not by a subclass of the reference holding its referent: freeing one frees a tensor inside the
        reference's own deallocation, which crashes the interpreter (a recurrent layer's references to its
        weights). A dead reference, or one with a callback (a weak container's own), is shared."""
        copied = self.memo.get(id(r))
        if copied is not None:
            return copied
        target = r()
        if target is None or r.__callback__ is not None:
            return r
        copied_target = self.value(target)
        self.held.append(copied_target)
        copied = self.memo[id(r)] = weakref.ref(copied_target)
        return copied

    def _forget(self, known: int) -> None:
        """Drops the memo's entries after its first ``known`` (it keeps their order): the copies deepcopy made of a
        value it then failed to copy, some half-made (an object whose attributes were being copied), which other
        references to the same objects would otherwise be given."""
        for key in list(self.memo)[known:]:
            del self.memo[key]

    def module(self, m: torch.nn.Module) -> torch.nn.Module:
        cls = type(m)
        clone = self.memo.get(id(m))
        if clone is not None:
            return clone
        if self.compiled is not None and isinstance(m, self.compiled):  # counted as the module it wraps
            clone = self.memo[id(m)] = self.module(m._orig_mod)
            return clone
        if "__deepcopy__" in cls.__dict__ and cls.__module__ != "torch.nn.utils.parametrize":
            clone = self._copied_by_its_class(m)
            if clone is not None:
                return clone
        # object.__new__, not the class's own: an FX GraphModule's __new__ makes a new class, without its forward
        clone = self.memo[id(m)] = object.__new__(cls)
        self.modules.append(clone)
        state = dict(m.__dict__)
        atoms, containers, tensor, module = _ATOMS, _CONTAINERS, self.tensor, self.module
        for key, v in state.items():
            kind = type(v)
            if kind in atoms:
                continue
            if kind in containers and not v:
                state[key] = kind()  # the dozen hook dictionaries of every module, mostly empty
            elif key == "_compiled_call_impl":
                state[key] = None  # module.compile()'s compiled call is bound to the user's module
            elif key == "_modules":
                state[key] = {name: None if child is None else module(child) for name, child in v.items()}
            elif key == "_parameters" or key == "_buffers":
                state[key] = {name: None if t is None else tensor(t) for name, t in v.items()}
            elif kind is not tuple or not atoms.issuperset(map(type, v)):  # a layer's sizes: kept
                state[key] = self.value(v)
        object.__setattr__(clone, "__dict__", state)
        return clone

    def _copied_by_its_class(self, m: torch.nn.Module) -> torch.nn.Module | None:
        """A module copied as its class copies itself (a script module keeps its state in C++), with parameters
        and buffers of its own (:func:`_own_tensors`); None where that copy fails (a lock in its state) or is, or
        holds, one of the user's own modules or tensors (a class that copies itself as itself), which is then copied
        as any module is."""
        memo = dict(self.memo)  # deepcopy's entries are kept only with the copy they made
        try:
            clone = copy.deepcopy(m, memo)
        except Exception:  # the class's own copy: its failure is no failure of the copy made without it
            return None
        users = {id(o) for o in itertools.chain(m.modules(), m.parameters(), m.buffers())}
        if any(id(o) in users for o in itertools.chain(clone.modules(), clone.parameters(), clone.buffers())):
            return None
        replaced = _own_tensors(clone, self.meta, _storages(m))
        # deepcopy's own entries, the user's tensors leading to the copy's replacements (a weight tied elsewhere)
        self.memo.update({key: replaced.get(id(v), v) for key, v in memo.items()
                          if key not in self.memo and key != id(memo)})
        self.memo[id(m)] = clone
        self.modules += clone.modules()
        return clone


def _parts(value: Any) -> list[Any]:
    """The tensors, modules and functions with a closure within a value, which the copier copies its own way: in
    containers, objects' attributes and slots, bound methods' objects and partials, at any depth."""
    found, seen, pending = [], set(), [value]
    while pending:
        v = pending.pop()
        kind = type(v)
        if kind in _ATOMS or id(v) in seen:
            continue
        seen.add(id(v))
        if v is not value and (isinstance(v, (torch.Tensor, torch.nn.Module)) or kind is weakref.ReferenceType or
                               (kind is types.FunctionType and v.__closure__)):
            found.append(v)
        elif isinstance(v, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)):
            continue
        elif kind is types.MethodType:
            pending.append(v.__self__)
        elif isinstance(v, functools.partial):
            pending += [v.func, *v.args, *v.keywords.values()]
        elif isinstance(v, Mapping):
            pending += [*v.keys(), *v.values()]
        elif isinstance(v, (list, tuple, set, frozenset)):
            pending += v
        else:
            pending += _attributes(v)
    return found


def _attributes(v: Any) -> list[Any]:
    """The values of an object's attributes: its ``__dict__``'s and its slots' (set ones)."""
    values = list(vars(v).values()) if hasattr(v, "__dict__") else []
    for cls in type(v).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name.startswith("__") and not name.endswith("__"):  # a private slot, stored under its mangled name
                name = f"_{cls.__name__.lstrip('_')}{name}"
            if name not in ("__dict__", "__weakref__") and hasattr(v, name):
                values.append(getattr(v, name))
    return values


def _storages(module: torch.nn.Module) -> set[int]:
    """Where the data of a module's parameters and buffers lies (dense tensors with values)."""
    return {t.untyped_storage().data_ptr() for t in itertools.chain(module.parameters(), module.buffers())
            if t.layout == torch.strided and not t.is_meta and not isinstance(t, UninitializedTensorMixin)}


def _own_tensors(module: torch.nn.Module, meta: bool, users: set[int]) -> dict[int, torch.Tensor]:
    """Gives the parameters and buffers of a module's copy made by its class tensors of its own, each set in its
    place (``Module.to`` refuses a script module's): meta stand-ins, or tensors cut from the autograd graph, with
    data of their own where the class's copy shares the user's (storages ``users``). A script module copies its
    parameters as clones of the user's, through which a backward pass would reach the user's own gradients.
    Returns each replaced tensor's replacement, by the replaced tensor's id."""
    replaced: dict[int, torch.Tensor] = {}

    def own(t: torch.Tensor, parameter: bool) -> torch.Tensor:
        if id(t) in replaced:
            return replaced[id(t)]
        if isinstance(t, UninitializedTensorMixin):  # a lazy module's, made on the device of the run
            new = _meta_like(t) if meta else t
        else:
            data = _meta_empty(t) if meta else t.detach()
            if not meta and data.layout == torch.strided and data.untyped_storage().data_ptr() in users:
                data = data.clone()
            # a parameter of a script module's copy is a clone of the user's, no graph leaf: a parameter again
            new = torch.nn.Parameter(data, t.requires_grad) if parameter else data
        replaced[id(t)] = new
        return new

    for owner in module.modules():
        for name, t in owner.named_parameters(recurse=False, remove_duplicate=False):
            setattr(owner, name, own(t, True))
        for name, t in owner.named_buffers(recurse=False, remove_duplicate=False):
            setattr(owner, name, own(t, False))
    return replaced


def _copy(model: torch.nn.Module, meta: bool, options: tuple[Any, ...] = ()
          ) -> tuple[torch.nn.Module, tuple[Any, ...], list[tuple[str, torch.nn.Module]]]:
    """A copy of the model sharing nothing with it (every tensor on the meta device, or real copies), copies of the
    options forward is passed, through the same memo (one referring to a part of the model refers to its copy, and
    the run writes in none of the user's), and every module copied with its name (:func:`_named`)."""
    try:
        with warnings.catch_warnings():
            # torch's own pytree specs (FX and torch.export modules hold them) rebuild through a path it deprecates.
            # By category, not message: a message filter compiles a regular expression, 0.1 ms at the first profile.
            warnings.simplefilter("ignore", FutureWarning)
            copier = _Copier(meta)
            twin, copied = copier.module(model), tuple(copier.value(v) for v in options)
            if copier.held:
                twin.__dict__[_HELD] = copier.held
            return twin, copied, _named(twin, copier.modules)
    except _ValuesNeeded:
        raise
    except Exception as err:
        raise SymconvError(f"cannot copy the model to run it ({type(err).__name__}: {err}); symconv never runs "
                           f"the user's own model") from err


def _named(twin: torch.nn.Module, copied: list[torch.nn.Module]) -> list[tuple[str, torch.nn.Module]]:
    """Each module of the copy by its qualified name, and each copied one outside its tree (a layer in a plain
    list, or in an option) by its class's name."""
    named = list(twin.named_modules())
    known = {id(m) for _, m in named}
    for m in copied:
        if id(m) not in known:
            known.add(id(m))
            named.append((type(m).__name__, m))
    return named


def _inputs_for(examples: tuple[Any, ...], meta: bool) -> tuple[Any, ...]:
    """The inputs the copy runs on (each a tensor, or a list, tuple or dict of them): meta stand-ins, or copies."""
    stand_in = _meta_input if meta else _real_input
    if all(type(e) is torch.Tensor for e in examples):  # the common case, without pytree's walk (6x as long)
        return tuple(stand_in(t) for t in examples)
    return tree_map_only(torch.Tensor, stand_in, examples)


def _meta_input(t: torch.Tensor) -> torch.Tensor:
    return _meta_empty(t).requires_grad_(t.requires_grad and t.is_floating_point())


def _real_input(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(t.requires_grad)


def _shapes_of(value: Any) -> Any:
    """An input's shape, or its tensors' shapes in its own structure (a number or string beside them as text)."""
    return tree_map(lambda v: shape_of(v) if isinstance(v, torch.Tensor) else passed_text(v), value)


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message (torch's often run to several)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def _run(model: torch.nn.Module, examples: tuple[torch.Tensor, ...], signature: Signature,
         conventions: tuple[str, ...], meta: bool, backward: bool,
         made_on_meta: bool = False) -> tuple[CountingMode, torch.nn.Module]:
    if backward and torch.is_inference_mode_enabled():
        with torch.inference_mode(False):  # under the caller's inference mode no tensor could be saved for backward
            return _run(model, examples, signature, conventions, meta, backward, made_on_meta)
    twin, options, modules = _copy(model, meta, signature.values)
    inputs = _inputs_for(examples, meta)
    mode = CountingMode(conventions, modules, fast_meta=meta, backward=backward)
    with _eager(), mode, torch.set_grad_enabled(backward), _made_on_meta(made_on_meta):
        _step(mode, twin, inputs, signature, options, backward)
    return mode, twin


def _made_on_meta(on: bool) -> Any:
    """Tensors the model makes without a device (``torch.zeros(n, 16)``, a recurrent state written for the CPU)
    made on the meta device, beside the meta stand-ins they meet."""
    return torch.device("meta") if on else contextlib.nullcontext()


def _device_mixed(err: Exception) -> bool:
    """A failure of a tensor the model made on the CPU meeting the meta stand-ins."""
    text = str(err)
    return "meta" in text and ("expected device" in text or "two devices" in text)


def _run_on_meta(model: torch.nn.Module, examples: tuple[torch.Tensor, ...], signature: Signature,
                 conventions: tuple[str, ...], backward: bool) -> tuple[CountingMode, torch.nn.Module]:
    """The run on the meta device; again with the model's own tensors made there too, where a tensor it made on
    the CPU met the stand-ins (not at first: that costs every torch call a look-up)."""
    try:
        return _run(model, examples, signature, conventions, True, backward)
    except Exception as err:
        if isinstance(err, SymconvError) or is_symconv_bug(err) or not _device_mixed(err):
            raise
    return _run(model, examples, signature, conventions, True, backward, made_on_meta=True)


def _step(mode: CountingMode, twin: torch.nn.Module, inputs: Sequence[Any], signature: Signature,
          options: tuple[Any, ...], backward: bool) -> None:
    """The forward pass (on ``inputs`` and the copied ``options``), and with ``backward`` the backward pass of a
    training step from ones seeds, under the counting mode."""
    outputs = signature.call(twin, inputs, options)
    if not backward:
        return
    tensors = requiring_grad(outputs)
    if not tensors:
        raise SymconvError("backward=True, but no output of the model requires grad (no parameter "
                           "requires grad and no input does)")
    with mode.aside():
        seeds = [torch.ones(tuple(t.shape), dtype=t.dtype, device=t.device) for t in tensors]
    torch.autograd.backward(tensors, seeds)


def _run_on_values(model: torch.nn.Module, examples: tuple[torch.Tensor, ...], signature: Signature,
                   conventions: tuple[str, ...], backward: bool,
                   described: str) -> tuple[CountingMode, torch.nn.Module]:
    """The run on copies of the user's own tensors, where the meta device cannot run or count the model."""
    try:
        return _run(model, examples, signature, conventions, False, backward)
    except Exception as err:
        if is_symconv_bug(err):
            raise
        raise _failure(err, f"the model does not run on input {described}",
                       f"the model's forward raised on input {described}") from err


def _failure(err: Exception, refused: str, raised: str) -> SymconvError:
    """A failed run as the one line the user reads: symconv's refusal (the copy, a count) after ``refused``, an
    exception of the model's own code after ``raised``."""
    if isinstance(err, SymconvError):
        return SymconvError(f"{refused}: {err}")
    return SymconvError(f"{raised}: {type(err).__name__}: {_first_line(err)}")


@contextmanager
def _collection_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _needs_real_values(err: Exception) -> bool:
    """A failure of the meta device itself (a value read, an operator without a meta kernel)."""
    return "meta" in str(err).lower() and not isinstance(err, SymconvError)


def profile(model: torch.nn.Module,
            inputs: Sequence[int | str] | Sequence[Sequence[int | str]] | torch.Tensor | Sequence[torch.Tensor]
            | dict[str, Any],
            convention: str = "docs", *, all_conventions: bool = False, backward: bool = False,
            hints: dict[str, int] | None = None,
            dtype: torch.dtype | Sequence[torch.dtype | None] | dict[str, torch.dtype] | None = None) -> Profile:
    """Count every operator ``model`` runs on ``inputs``: a shape, a sequence of shapes (one per argument of
    ``forward``), a tensor, a tuple of tensors, or a dict of shapes or tensors by argument name (passed by name);
    an argument given as tensors may be a list, tuple or dict of them. Any other argument (a mode string, a
    scale, ``None``, a cache dict) is an option, passed to the copy as a copy of itself.
    Inputs given as shapes take ``dtype`` (one, one per shape, or by name: ``torch.long`` for token ids), by
    default the dtype of the model's parameters.

    Convolutions (forward and, with ``backward``, their gradients) are counted
    exactly as their layers; matrix products (Linear, matmul, attention) by their
    m·k·n; every other operator is listed as not counted. Totals under
    ``convention``, or under all three conventions (the chosen one first) with
    ``all_conventions``. ``backward`` adds a training step's backward pass (the
    gradient of every parameter and input that requires grad) as backward records.
    The model is never modified, on success or failure. Compiled code (``torch.compile``
    of the model, of a submodule or of a function, ``module.compile()``) runs eagerly
    and is counted as the code it compiles: the compiler does not run. FX graph modules
    and ``torch.export`` programs are counted as the code they hold.

    Sizes may be names or expressions in names (``(1, 3, "H", "W")``, ``"8*h"``):
    the counts (a training step's too) are then SymPy expressions in them, exact
    wherever the model takes the branches it took at the ``hints`` (values per name;
    large distinct defaults), and ``profile.domain`` holds the conditions on the sizes
    under which they hold.
    """
    model = _checked_model(model)
    require_bool("backward", backward)
    require_bool("all_conventions", all_conventions)
    first = convention_name(convention)
    conventions = (first, *(c for c in CONVENTION_NAMES if c != first)) if all_conventions else (first,)
    signature, values = Signature.of(*listed(inputs))
    shapes = given_shapes(values)
    if shapes is None and dtype is not None:
        raise SymconvError("dtype applies to inputs given as shapes: a tensor has its own")
    dtypes = given_dtypes(dtype, len(shapes), signature.given_names, model) if shapes is not None else []
    if shapes is not None and not all(is_int(v) for shape in shapes for v in shape):
        return _profile_symbolic(model, shapes, signature, dtypes, conventions, backward, hints)
    if hints:
        raise SymconvError("hints apply to symbolic sizes only: this input has none")
    examples, own = example_inputs(values, shapes, dtypes)
    listed_inputs = tuple(signature.texts([_shapes_of(v) for v in examples]))
    described = inputs_text(listed_inputs, signature.names)
    # A real pass may draw random numbers (dropout): not from the user's generator. And no garbage collection
    # midway: a full collection of torch's many objects costs more than profiling a large model.
    with torch.random.fork_rng(devices=[]), _collection_paused():
        try:
            mode, twin = _run_on_meta(model, examples, signature, conventions, backward)
            run = META
        except _ValuesNeeded as err:
            if not own:
                raise SymconvError(f"the model needs real values on input {described} ({err}): pass an example "
                                   f"tensor instead of a shape") from err
            mode, twin = _run_on_values(model, examples, signature, conventions, backward, described)
            run = REAL
        except SymconvError as err:
            raise SymconvError(f"the model does not run on input {described}: {err}") from err
        except Exception as err:
            if is_symconv_bug(err):
                raise
            if not own:
                if _needs_real_values(err):
                    raise SymconvError(f"the model needs real values on input {described} ({type(err).__name__}: "
                                       f"{_first_line(err)}): pass an example tensor instead of a shape"
                                       ) from err
                first_line = _first_line(err)
                dtypes_run = ", ".join(str(t.dtype).removeprefix("torch.") for t in tree_leaves(examples))
                advice = (f" (inputs of {dtypes_run}: give each shape's dtype, e.g. dtype=torch.long for token ids, "
                          f"--input 2,16:int64 on the command line)" if "scalar type" in first_line else "")
                raise SymconvError(f"the model's forward raised on input {described}: {type(err).__name__}: "
                                   f"{first_line}{advice}") from err
            mode, twin = _run_on_values(model, examples, signature, conventions, backward, described)
            run = REAL
        result = Profile(mode.records, conventions, run, _module_infos(mode.names, twin), type(twin).__name__,
                         listed_inputs, backward, input_names=signature.names)
        # The copy goes before collection resumes: alive then, its thousands of objects would count towards a
        # collection, which would run at once, find them alive and promote them (0.2–0.7 ms for a ResNet-50)
        del mode, twin
    return result


def _profile_symbolic(model: torch.nn.Module, shapes: list[tuple], signature: Signature,
                      dtypes: list[torch.dtype], conventions: tuple[str, ...], backward: bool,
                      hints: dict[str, int] | None, below: bool = True) -> Profile:
    """The profile as formulas in the size names, from a run on fake tensors with symbolic sizes (its domain
    widened below the names' least sizes, :func:`_small_joined`, where ``below``)."""
    from .symbolic import KeepSizesSymbolic, SymbolicRun
    run = SymbolicRun(shapes, hints)
    examples = [torch.empty(0, dtype=dtype) for dtype in dtypes]
    listed_inputs = tuple(signature.texts([tuple(str(v) for v in s) for s in shapes]))
    shape = inputs_text(listed_inputs, signature.names)
    with torch.random.fork_rng(devices=[]), _collection_paused():
        try:
            twin, options, modules = _copy(model, True, signature.values)
        except _ValuesNeeded as err:
            raise SymconvError(f"symbolic sizes cannot count this model ({err}): profile it on an example "
                               f"tensor") from err
        inputs = run.inputs(examples)
        mode = CountingMode(conventions, modules, fast_meta=False, backward=backward, size=run.translate.size)
        try:
            if any(isinstance(m, LazyModuleMixin) and m.has_uninitialized_params() for m in twin.modules()):
                # Lazy modules shape their parameters at their first call, and a fake tensor cannot become a
                # parameter's data: a first call on the meta device, at the hints, shapes them.
                with _eager(), torch.no_grad():
                    signature.call(twin, run.at_hints(examples), options)
            run.fakeify(twin)
            with _eager(), run.fake, mode, KeepSizesSymbolic(mode), torch.set_grad_enabled(backward), \
                    _made_on_meta(True):
                _step(mode, twin, inputs, signature, options, backward)
        except Exception as err:
            if is_symconv_bug(err):
                raise
            raise _failure(err, f"the model does not run on input {shape} at {run.describe_hints()}",
                           f"the model does not run on symbolic input {shape} (at {run.describe_hints()})") from err
    domain = run.domain()
    for record in mode.records:
        if record.counted is not None:
            domain += [c for c in record.counted.domain if c not in domain]
    domain = _widened(model, run, signature, dtypes, conventions, backward, mode.records, tuple(domain), below)
    return Profile(mode.records, conventions, SYMBOLIC, _module_infos(mode.names, twin), type(twin).__name__,
                   listed_inputs, backward, domain, run.describe_hints(), input_names=signature.names)


_SMALL_SIZES = 8  # sizes from 1 a one-name domain is widened to, where a concrete profile agrees


def _widened(model: torch.nn.Module, run: Any, signature: Signature, dtypes: list[torch.dtype],
             conventions: tuple[str, ...], backward: bool, records: list, domain: tuple, below: bool) -> tuple:
    """The domain of a profile, widened to small sizes it excludes where the profile at that size counts the same
    in each module and phase (:func:`_same_counts`): torch's tracing assumes a size is not 1 where broadcasting
    would differ, so a batch or a sequence of 1 was excluded though the counts hold.

    In one size name, each size up to ``_SMALL_SIZES`` is checked against a concrete profile; in several, see
    :func:`_one_joined` and :func:`_small_joined`.
    """
    import sympy as sp

    from ..core.sizes import holds_at
    symbols = sorted({s for shape in run.sizes for v in shape if not isinstance(v, int) for s in v.free_symbols},
                     key=lambda s: s.name)
    if len(symbols) > 1:
        domain = _one_joined(model, run, symbols, signature, dtypes, conventions, backward, records, domain)
        if below:
            domain = _small_joined(model, run, symbols, signature, dtypes, conventions, backward, records, domain)
        return domain
    if not symbols:
        return domain
    (name,) = symbols
    for n in range(1, _SMALL_SIZES + 1):
        if all(holds_at(c, name, n) for c in domain):
            continue
        other = _concrete_at(model, run, {name: n}, signature, dtypes, conventions, backward)
        if other is not None and _same_counts(records, other.counted, {name: n}, conventions):
            domain = tuple(c if holds_at(c, name, n) else _or_equal(c, name, n) for c in domain)
    return tuple(c for c in domain if c is not sp.true)


def _concrete_at(model: torch.nn.Module, run: Any, values: dict, signature: Signature, dtypes: list[torch.dtype],
                 conventions: tuple[str, ...], backward: bool) -> Profile | None:
    """The concrete profile with names set to ``values`` and the others at their hints; None where torch refuses
    those sizes."""
    at = {**run.hints, **values}
    shapes = [tuple(v if isinstance(v, int) else int(v.xreplace(at)) for v in shape) for shape in run.sizes]
    if any(v < 1 for shape in shapes for v in shape):
        return None
    try:
        return profile(model, signature.inputs(shapes), conventions[0], all_conventions=len(conventions) > 1,
                       backward=backward, dtype=dtypes)
    except SymconvError:
        return None  # torch refuses the sizes: the domain rightly excludes them


def _or_equal(condition: Any, name: Any, n: int) -> Any:
    """``condition`` or ``name = n``, as a threshold where it is one (size > n or size = n: size >= n)."""
    import sympy as sp

    from ..core.sizes import normalized
    form = normalized(condition)
    if form in (sp.Gt(name, n), sp.Ge(name, n + 1)):
        return sp.Ge(name, n)  # True at n = 1: sizes are positive
    if form == sp.Ne(name, n):
        return sp.true
    return sp.Or(condition, sp.Eq(name, n))


def _one_joined(model: torch.nn.Module, run: Any, symbols: list, signature: Signature, dtypes: list[torch.dtype],
                conventions: tuple[str, ...], backward: bool, records: list, domain: tuple) -> tuple:
    """The domain of a profile in several size names, with 1 joined for each name it excludes from 1 alone
    (``N >= 2``, torch's assumption) where the model, profiled again with that name 1 (in the other names, at
    the same hints, that profile's domain widened in turn), counts the same: 1 then needs what that profile
    needs of the other names, beyond what this domain needs anyway."""
    import sympy as sp

    from ..core.sizes import product_not_one, says_not_one
    for name in symbols:
        # false only where the name is 1: what joining 1 widens (a product with other names, N*W ≠ 1, too)
        one = [c for c in domain if says_not_one(c, name, domain) or
               name in getattr(product_not_one(c), "free_symbols", ())]
        if not one or any(c.xreplace({name: 1}) is sp.false for c in domain if c not in one):
            continue  # nothing to join, or 1 excluded all the same
        needed = _needed_at(model, run, name, 1, signature, dtypes, conventions, backward, records, domain)
        if needed is not None:
            domain = tuple(sp.Or(c, needed) if c in one else c for c in domain)
    return tuple(c for c in domain if c is not sp.true)


_SMALL_RANGE = 64  # the least sizes below which _small_joined looks for sizes to join


def _small_joined(model: torch.nn.Module, run: Any, symbols: list, signature: Signature,
                  dtypes: list[torch.dtype], conventions: tuple[str, ...], backward: bool, records: list,
                  domain: tuple) -> tuple:
    """The domain of a profile in several size names, with the sizes below a name's least one (3 or more) joined
    from the least down, as long as the model, profiled again at that size (in the other names), counts the
    same: torch's views and broadcasts assume a size derived from the input's is not 1 (a strided convolution's
    output length, ``L >= 5`` where the model runs from ``L = 3``). A size joins with what that profile needs of
    the other names beyond this domain, where that is thresholds on them or what their least sizes here settle
    (:func:`~symconv.core.sizes.joined_below`: ``W >= 3 or H >= 3`` where each small width needs a height of 3).
    The first size torch refuses, or counted otherwise, or needing more, ends the search (sizes below it seldom
    fare better, and each try is a profile)."""
    import sympy as sp

    from ..core.sizes import first_size, joined_below, least_sizes, reads_plainly, settled_parts
    for name in symbols:
        # the least size its own conditions allow (scanned from 1, not proven for good: a search starts there)
        least = first_size([c for c in domain if c.free_symbols == {name}], name, _SMALL_RANGE) or 1
        if least < 3:
            continue  # 1 alone is _one_joined's; no size within the range: nothing small to join
        joined = {}  # size -> what it needs of the other names
        lower = least_sizes(domain, symbols)  # the others', which joining sizes of this name leaves as they are
        for n in range(least - 1, max(least - _SMALL_SIZES, 1) - 1, -1):
            needed = _needed_at(model, run, name, n, signature, dtypes, conventions, backward, records, domain)
            if needed is None or not reads_plainly(needed, lower):
                break
            joined[n] = needed
            if len(set(joined.values())) > 1 and any(settled_parts(x, lower) is not sp.true for x in joined.values()):
                break  # neither one need for all (joined_below) nor, below here, needs the least sizes settle
        domain = tuple(joined_below(c, name, joined, least, lower) if name in c.free_symbols else c for c in domain)
        domain = tuple(c for c in domain if c is not sp.true)
    return domain


def _needed_at(model: torch.nn.Module, run: Any, name: Any, n: int, signature: Signature,
               dtypes: list[torch.dtype], conventions: tuple[str, ...], backward: bool, records: list,
               domain: tuple) -> Any:
    """What the other names need for the profile's counts to hold with ``name`` at size ``n``: the model profiled
    again there (in the other names, at the same hints, that profile's domain widened in turn), where it counts
    the same, its domain beyond what ``domain`` needs anyway; None where torch refuses that size or the counts
    differ."""
    import sympy as sp

    from ..core.sizes import normalized, parse_size, tidied
    if _concrete_at(model, run, {name: n}, signature, dtypes, conventions, backward) is None:
        return None  # torch refuses the size at the others' hints: a concrete run says so in milliseconds
    shapes = [tuple(parse_size(v if isinstance(v, int) else v.xreplace({name: n})) for v in shape)
              for shape in run.sizes]
    hints = {s.name: v for s, v in run.hints.items() if s != name}
    try:
        other = _profile_symbolic(model, shapes, signature, dtypes, conventions, backward, hints, below=False)
    except SymconvError:
        return None  # torch refuses the size: the domain rightly excludes it
    if not _same_counts(records, other.counted, {name: n}, conventions):
        return None
    ours = {normalized(c) for c in domain}
    return sp.And(*(c for c in tidied(other.domain) if c not in ours))


def _same_counts(records: list, others: list, at: dict, conventions: tuple[str, ...]) -> bool:
    """Whether the counted records, their sizes set ``at`` the given values, count what the other profile's
    records count in each module and phase, under every convention (numbers, or formulas whose difference
    expands to 0). By module, not record by record: a symbolic profile counts a recurrent layer whole, a
    concrete one step by step."""
    import sympy as sp

    def sums(entries: list, values: dict) -> dict:
        found: dict = {}
        for r in entries:
            if r.counted is not None:
                totals = found.setdefault((r.stack, r.phase), dict.fromkeys(conventions, 0))
                for c in conventions:
                    totals[c] += sp.sympify(r.counted.totals[c]).xreplace(values)
        return found

    ours, theirs = sums(records, at), sums(others, {})
    return ours.keys() == theirs.keys() and all(
        sp.expand(ours[key][c] - theirs[key][c]) == 0 for key in ours for c in conventions)


def _module_infos(names: dict[int, str], twin: torch.nn.Module) -> dict[str, ModuleInfo]:
    """Every module of the copy (its lazy parameters materialised by the run) with its parameter elements,
    its children's included and a shared parameter counted once."""
    modules: dict[str, ModuleInfo] = {}
    seen: set[int] = set()
    for module in twin.modules():  # parents before their children
        name = names[id(module)]
        own = 0
        for p in module._parameters.values():
            if p is None or id(p) in seen or isinstance(p, UninitializedTensorMixin):
                continue
            seen.add(id(p))
            own += p.numel()
        modules[name] = ModuleInfo(name, type(module).__name__, own)
    for name in reversed(modules):  # children hand their sums to their parents, the deepest first
        if name:
            modules[name.rpartition(".")[0]].parameters += modules[name].parameters
    return modules
