"""Outputs of common aten operators on meta tensors, without running torch's meta kernels.

Many of torch's meta kernels are Python, and their first use imports SymPy and
torch._dynamo (about a second). The profiler only needs each output's shape and
dtype, so for the operators every network runs it makes them here: a convolution
from the core's output size, normalisations and pointwise operators from their
inputs. Each function checks what torch checks about shapes (channel counts,
broadcasting), so a model torch would refuse is refused here too. Anything else
returns ``NotImplemented`` and the profiler runs torch's own meta kernel.
tests/test_tracing.py compares every function here with torch's meta kernels.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable

import torch

from ..core.errors import SymconvError
from ..numeric import _scalar_generated as generated
from ..numeric.layer import plain_ints

aten = torch.ops.aten
Fast = Callable[..., Any]
FAST: dict[Any, Fast] = {}


def fast(*overloads: Any) -> Callable[[Fast], Fast]:
    def register(fn: Fast) -> Fast:
        for op in overloads:
            FAST[op] = fn
        return fn
    return register


META = torch.device("meta")


def _empty(shape, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    # A tuple, not a torch.Size: torch.empty parses a tuple in half the time.
    return torch.empty(tuple(shape), dtype=dtype or like.dtype, device=META)


def _stats_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


# --- convolutions -----------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _convolution_shape(x: tuple, w: tuple, bias: bool, stride: tuple, padding: tuple, dilation: tuple,
                       transposed: bool, output_padding: tuple, groups: int) -> tuple[int, ...]:
    from .ops import convolution_layer  # the layer the count uses: the same object, which remembers this check
    layer = convolution_layer(w, bias, stride, padding, dilation, transposed, output_padding, groups)
    batch, spatial, out = layer.check_input(x)
    return ((batch,) if len(x) == layer.ndim + 2 else ()) + (layer.out_channels, *out)


def convolution_output(x: torch.Tensor, w: torch.Tensor, shape: tuple) -> torch.Tensor:
    """A convolution's output of a given shape (its count's: the count checks the layer and input), its dtypes
    checked."""
    _check_dtypes(x, w)
    return _empty(shape, x)


def _check_dtypes(x: torch.Tensor, w: torch.Tensor) -> None:
    if x.dtype != w.dtype:  # torch's meta kernel lets it through; its CPU and GPU kernels refuse it
        raise SymconvError(f"a convolution of a {str(x.dtype).removeprefix('torch.')} input with "
                           f"{str(w.dtype).removeprefix('torch.')} weights, which torch refuses to run")


@fast(aten.convolution.default)
def convolution(x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    _check_dtypes(x, w)
    arguments = (tuple(x.shape), tuple(w.shape), bias is not None, tuple(stride), tuple(padding), tuple(dilation),
                 bool(transposed), tuple(output_padding), int(groups))
    if plain_ints(arguments[0] + arguments[3] + arguments[4] + arguments[5] + arguments[7]):  # nothing symbolic
        return _empty(_convolution_shape(*arguments), x)
    return _empty(_symbolic_convolution_shape(*arguments), x)


def _symbolic_convolution_shape(x: tuple, w: tuple, bias: bool, stride: tuple, padding: tuple, dilation: tuple,
                                transposed: bool, output_padding: tuple, groups: int) -> tuple:
    """A convolution's output shape on symbolic sizes, by the core's output-size rules: its one condition on the
    sizes is torch's, every output size at least 1 (the count checks the layer itself)."""
    ndim = len(w) - 2
    in_channels = w[0] if transposed else w[1] * groups
    if len(x) not in (ndim + 1, ndim + 2) or x[-ndim - 1] != in_channels:
        raise SymconvError(f"input shape {x} does not fit a convolution of weight shape {w} and groups={groups}")
    out = []
    for a in range(ndim):
        if transposed:
            size = generated.t_L_out(x[a - ndim], w[2 + a], stride[a], padding[a], dilation[a], output_padding[a])
        else:
            size = generated.p_L_out(x[a - ndim], w[2 + a], stride[a], padding[a], padding[a], dilation[a])
        if size < 1:
            raise SymconvError(f"output size {size} < 1 on axis {a} for input shape {x}")
        out.append(size)
    return x[:len(x) - ndim - 1] + (w[1] * groups if transposed else w[0], *out)


@fast(aten.convolution_backward.default)
def convolution_backward(grad_out, x, w, bias_sizes, stride, padding, dilation, transposed, output_padding, groups,
                         output_mask):
    return (_empty(x.shape, x) if output_mask[0] else None, _empty(w.shape, w) if output_mask[1] else None,
            _empty(bias_sizes, grad_out) if output_mask[2] and bias_sizes is not None else None)


# --- matrix products --------------------------------------------------------------------------------------

def _product_dtype(*tensors: torch.Tensor) -> torch.dtype:
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1:
        raise SymconvError(f"a matrix product of {' and '.join(sorted(map(str, dtypes)))} operands")
    return dtypes.pop()


def _inner(a: int, b: int, what: str) -> None:
    if a != b:
        raise SymconvError(f"{what}: inner sizes {a} and {b} differ")


@fast(aten.mm.default)
def mm(a, b):
    _inner(a.shape[1], b.shape[0], "mm")
    return _empty((a.shape[0], b.shape[1]), a, _product_dtype(a, b))


def _plus_bias(name: str, bias, out):
    """The product's output, once the bias is known to broadcast to it."""
    if broadcast(tuple(bias.shape), tuple(out.shape)) != tuple(out.shape):
        raise SymconvError(f"{name}: bias shape {tuple(bias.shape)} does not broadcast to {tuple(out.shape)}")
    return out


@fast(aten.addmm.default)
def addmm(bias, a, b, *, beta=1, alpha=1):
    return _plus_bias("addmm", bias, mm(a, b))


@fast(aten.bmm.default)
def bmm(a, b):
    _inner(a.shape[2], b.shape[1], "bmm")
    if a.shape[0] != b.shape[0]:
        raise SymconvError(f"bmm: batch sizes {a.shape[0]} and {b.shape[0]} differ")
    return _empty((a.shape[0], a.shape[1], b.shape[2]), a, _product_dtype(a, b))


@fast(aten.baddbmm.default)
def baddbmm(bias, a, b, *, beta=1, alpha=1):
    return _plus_bias("baddbmm", bias, bmm(a, b))


@fast(aten._trilinear.default)
def trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    """nn.Bilinear's product: the operands unsqueezed at their ``expand`` dimensions, broadcast, summed over
    ``sumdim`` (torch's own symbolic kernel fails on symbolic sizes)."""
    from .ops import _expanded  # the operands as the count reads them
    total = i1.dim() + len(expand1)
    shapes = [_expanded(tuple(x.shape), e, total) for x, e in ((i1, expand1), (i2, expand2), (i3, expand3))]
    out = broadcast(*(tuple(shape) for shape in shapes))
    return _empty(tuple(v for i, v in enumerate(out) if i not in sumdim), i1, _product_dtype(i1, i2, i3))


@fast(aten.mv.default)
def mv(a, v):
    _inner(a.shape[1], v.shape[0], "mv")
    return _empty((a.shape[0],), a, _product_dtype(a, v))


@fast(aten.dot.default, aten.vdot.default)
def dot(a, b):
    _inner(a.shape[0], b.shape[0], "dot")
    return _empty((), a, _product_dtype(a, b))


# --- normalisations ---------------------------------------------------------------------------------------

def _check_channels(x: torch.Tensor, *per_channel: torch.Tensor | None) -> int:
    channels = x.shape[1] if x.dim() > 1 else 1
    for t in per_channel:
        if t is not None and t.numel() != channels:
            raise SymconvError(f"a normalisation over {channels} channels got a parameter of {t.numel()} "
                               f"elements (input shape {tuple(x.shape)})")
    return channels


@fast(aten.native_batch_norm.default, aten._native_batch_norm_legit.default)
def native_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    stats = (_check_channels(x, weight, bias, running_mean, running_var),)
    return _empty(x.shape, x), _empty(stats, x, _stats_dtype(x)), _empty(stats, x, _stats_dtype(x))


@fast(aten._native_batch_norm_legit_no_training.default)
def native_batch_norm_legit_no_training(x, weight, bias, running_mean, running_var, momentum, eps):
    return native_batch_norm(x, weight, bias, running_mean, running_var, False, momentum, eps)


@fast(aten.native_batch_norm_backward.default)
def native_batch_norm_backward(grad_out, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps,
                               output_mask):
    channels = _check_channels(x, weight)
    return (_empty(x.shape, x) if output_mask[0] else None,
            _empty((channels,), x) if output_mask[1] else None,
            _empty((channels,), x) if output_mask[2] else None)


@fast(aten.native_layer_norm.default)
def native_layer_norm(x, normalized_shape, weight, bias, eps):
    k = len(normalized_shape)
    if tuple(x.shape[x.dim() - k:]) != tuple(normalized_shape):
        raise SymconvError(f"layer_norm over {tuple(normalized_shape)} got input shape {tuple(x.shape)}")
    stats = tuple(x.shape[:x.dim() - k]) + (1,) * k
    return _empty(x.shape, x), _empty(stats, x, _stats_dtype(x)), _empty(stats, x, _stats_dtype(x))


@fast(aten.native_layer_norm_backward.default)
def native_layer_norm_backward(grad_out, x, normalized_shape, mean, rstd, weight, bias, output_mask):
    return (_empty(x.shape, x) if output_mask[0] else None,
            _empty(weight.shape, weight) if output_mask[1] and weight is not None else None,
            _empty(bias.shape, bias) if output_mask[2] and bias is not None else None)


@fast(aten.native_group_norm.default)
def native_group_norm(x, weight, bias, N, C, HxW, group, eps):
    if C % group:
        raise SymconvError(f"group_norm: {group} groups do not divide {C} channels")
    _check_channels(x, weight, bias)
    return _empty(x.shape, x), _empty((N, group), x, _stats_dtype(x)), _empty((N, group), x, _stats_dtype(x))


@fast(aten.native_group_norm_backward.default)
def native_group_norm_backward(grad_out, x, mean, rstd, weight, N, C, HxW, group, output_mask):
    return (_empty(x.shape, x) if output_mask[0] else None,
            _empty((C,), x) if output_mask[1] else None,
            _empty((C,), x) if output_mask[2] else None)


# --- shape-preserving operators -----------------------------------------------------------------------------

@fast(aten._softmax.default, aten._log_softmax.default)
def softmax(x, dim, half_to_float):
    return _empty(x.shape, x, torch.float32 if half_to_float else None)


@fast(aten._safe_softmax.default)
def safe_softmax(x, dim, dtype=None):
    return _empty(x.shape, x, dtype)


@fast(aten._softmax_backward_data.default, aten._log_softmax_backward_data.default)
def softmax_backward(grad_out, output, dim, input_dtype):
    return _empty(grad_out.shape, grad_out, input_dtype)


@fast(aten.native_dropout.default)
def native_dropout(x, p, train):
    return _empty(x.shape, x), _empty(x.shape, x, torch.bool)


@fast(aten.constant_pad_nd.default)
def constant_pad_nd(x, pad, value=0):
    if len(pad) % 2 or len(pad) // 2 > x.dim():
        raise SymconvError(f"pad {tuple(pad)} does not fit input shape {tuple(x.shape)}")
    shape = list(x.shape)
    for i in range(len(pad) // 2):
        shape[-1 - i] += pad[2 * i] + pad[2 * i + 1]
        if shape[-1 - i] < 0:
            raise SymconvError(f"pad {tuple(pad)} leaves a negative size on input shape {tuple(x.shape)}")
    return _empty(shape, x)


# --- reductions ---------------------------------------------------------------------------------------------

def _reduced(x: torch.Tensor, dim, keepdim: bool) -> tuple[int, ...]:
    dims = range(x.dim()) if dim is None or (isinstance(dim, (list, tuple)) and not dim) else \
        ([dim] if isinstance(dim, int) else dim)
    axes = {d % x.dim() if x.dim() else 0 for d in dims}
    return tuple(1 if i in axes else n for i, n in enumerate(x.shape) if keepdim or i not in axes)


@fast(aten.mean.dim)
def mean_dim(x, dim, keepdim=False, dtype=None):
    if dtype is None and not (x.is_floating_point() or x.is_complex()):
        return NotImplemented  # torch refuses integer means: let it say so
    return _empty(_reduced(x, dim, keepdim), x, dtype)


@fast(aten.sum.dim_IntList)
def sum_dim(x, dim, keepdim=False, dtype=None):
    if dtype is None and not (x.is_floating_point() or x.is_complex()):
        dtype = torch.int64  # integer sums accumulate in int64
    return _empty(_reduced(x, dim, keepdim), x, dtype)


@fast(aten.sum.default)
def sum_all(x, dtype=None):
    return sum_dim(x, None, False, dtype)


@fast(aten.mean.default)
def mean_all(x, dtype=None):
    return mean_dim(x, None, False, dtype)


@fast(aten.amax.default, aten.amin.default)
def extremum(x, dim=(), keepdim=False):
    return _empty(_reduced(x, dim, keepdim), x)


# --- pooling and resampling ---------------------------------------------------------------------------------

def _pool_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """ATen's pooling output size (pooling_output_shape)."""
    if padding > (dilation * (kernel - 1) + 1) // 2:
        raise SymconvError(f"pooling padding {padding} must be at most half of the kernel {kernel}")
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise SymconvError(f"pooling kernel {kernel} leaves no output on a size-{size} input")
    return out


def _pooled(x: torch.Tensor, n: int, kernel, stride, padding, dilation, ceil_mode: bool) -> tuple[int, ...]:
    def per_axis(v, default):
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return [default[i] for i in range(n)] if not v else v * n if len(v) == 1 else v
    k = per_axis(kernel, None)
    s = per_axis(stride, k)
    p, d = per_axis(padding, [0] * n), per_axis(dilation, [1] * n)
    if x.dim() not in (n + 1, n + 2):
        raise SymconvError(f"{n}-d pooling got input shape {tuple(x.shape)}")
    return tuple(x.shape[:-n]) + tuple(_pool_size(x.shape[-n + a], k[a], s[a], p[a], d[a], ceil_mode)
                                       for a in range(n))


def _max_pool(n: int):
    def run(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
        shape = _pooled(x, n, kernel_size, stride, padding, dilation, ceil_mode)
        return _empty(shape, x), _empty(shape, x, torch.int64)
    return run


def _avg_pool(n: int):
    def run(x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
        return _empty(_pooled(x, n, kernel_size, stride, padding, 1, ceil_mode), x)
    return run


for _n, _max, _avg in ((2, aten.max_pool2d_with_indices.default, aten.avg_pool2d.default),
                       (3, aten.max_pool3d_with_indices.default, aten.avg_pool3d.default)):
    fast(_max)(_max_pool(_n))
    fast(_avg)(_avg_pool(_n))


@fast(aten._adaptive_avg_pool2d.default, aten._adaptive_avg_pool3d.default)
def adaptive_avg_pool(x, output_size):
    return _empty(tuple(x.shape[:-len(output_size)]) + tuple(output_size), x)


@fast(aten.adaptive_max_pool2d.default, aten.adaptive_max_pool3d.default)
def adaptive_max_pool(x, output_size):
    shape = tuple(x.shape[:-len(output_size)]) + tuple(output_size)
    return _empty(shape, x), _empty(shape, x, torch.int64)


@fast(aten.max_pool2d_with_indices_backward.default, aten.max_pool3d_with_indices_backward.default,
      aten.avg_pool2d_backward.default, aten.avg_pool3d_backward.default,
      aten._adaptive_avg_pool2d_backward.default, aten._adaptive_avg_pool3d_backward.default,
      aten.adaptive_max_pool2d_backward.default, aten.adaptive_max_pool3d_backward.default)
def pool_backward(grad_out, x, *args):
    return _empty(x.shape, x)


@fast(aten.im2col.default)
def im2col(x, kernel_size, dilation, padding, stride):
    """``F.unfold``: every block of the kernel's size as a column, (N, C·kh·kw, blocks)."""
    if x.dim() not in (3, 4):
        raise SymconvError(f"unfold takes a 3-d or 4-d input, got shape {tuple(x.shape)}")
    # its blocks are a convolution's output positions: the rule torch checks convolutions by, written once
    blocks = [generated.p_L_out(x.shape[-2 + a], kernel_size[a], stride[a], padding[a], padding[a], dilation[a])
              for a in range(2)]
    if not all(b >= 1 for b in blocks):
        raise SymconvError(f"unfold: kernel {tuple(kernel_size)} leaves no block on input shape {tuple(x.shape)}")
    return _empty((*x.shape[:-3], x.shape[-3] * kernel_size[0] * kernel_size[1], blocks[0] * blocks[1]), x)


@fast(aten.col2im.default)
def col2im(columns, output_size, kernel_size, dilation, padding, stride):
    """``F.fold`` (and unfold's gradient): the columns summed back into (N, C, *output_size)."""
    return _empty((*columns.shape[:-2], columns.shape[-2] // (kernel_size[0] * kernel_size[1]), *output_size),
                  columns)


def _upsample(n: int):
    def run(x, output_size, *args):
        scales = [a for a in args if isinstance(a, (list, tuple))]
        if output_size is None:
            if not scales or scales[-1] is None:
                return NotImplemented
            output_size = [int(x.shape[-n + a] * scales[-1][a]) for a in range(n)]
        return _empty(tuple(x.shape[:-n]) + tuple(output_size), x)
    return run


#: torch's rescalings -> their spatial dimensions
_UPSAMPLINGS = {aten.upsample_nearest1d: 1, aten.upsample_linear1d: 1, aten.upsample_nearest2d: 2,
                aten.upsample_bilinear2d: 2, aten.upsample_bicubic2d: 2, aten.upsample_nearest3d: 3,
                aten.upsample_trilinear3d: 3}
for _op, _n in _UPSAMPLINGS.items():
    fast(_op.default, _op.vec)(_upsample(_n))
_UPSAMPLING_GRADIENTS = tuple(getattr(aten, f"{op.__name__}_backward").default for op in _UPSAMPLINGS)


@fast(*_UPSAMPLING_GRADIENTS)
def upsample_backward(grad_out, output_size, input_size, *args):
    """A rescaling's input gradient: the input's size."""
    return _empty(tuple(input_size), grad_out)


# --- views ---------------------------------------------------------------------------------------------------

def _contiguous_strides(shape: Any) -> list:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step = step * size
    return strides[::-1]


@fast(aten.view.default, aten._unsafe_view.default)
def view(x, size):
    """A view of a contiguous tensor of symbolic sizes: its elements in order, in the new shape (of as many
    elements as written, one size left for it to work out). torch's own kernel checks the strides size by size,
    assuming each is not 1, which a view of any size needs not; other views are torch's."""
    shape = tuple(x.shape)
    if all(type(v) is int for v in (*shape, *size)):
        return NotImplemented
    new = list(size)
    holes = [i for i, v in enumerate(new) if type(v) is int and v == -1]
    if len(holes) > 1 or not all(_same_size(a, b) for a, b in zip(x.stride(), _contiguous_strides(shape))):
        return NotImplemented
    if holes:  # the input's sizes the others do not take, as written (a quotient would be a floor of a product)
        left = list(shape)
        for i, v in enumerate(new):
            found = next((k for k, w in enumerate(left) if _same_size(v, w)), None) if i != holes[0] else -1
            if found is None:
                return NotImplemented
            if found >= 0:
                del left[found]
        new[holes[0]] = math.prod(left)
    if not _same_size(math.prod(new), math.prod(shape)):
        return NotImplemented  # torch's kernel says what is wrong
    return torch.as_strided(x, new, _contiguous_strides(new), x.storage_offset())


# --- creation ------------------------------------------------------------------------------------------------

@fast(aten.empty.memory_format)
def empty(size, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    """An empty tensor asked for on the meta device (normalisations make one); any other device: torch's."""
    if device is None or torch.device(device).type != "meta" or layout not in (None, torch.strided) or \
            pin_memory or memory_format not in (None, torch.contiguous_format, torch.preserve_format):
        return NotImplemented
    return torch.empty(tuple(size), dtype=dtype, device=META)


# --- pointwise operators -----------------------------------------------------------------------------------

def _small(value: Any) -> Any:
    """A one-element CPU stand-in with the same dtype and the same role in type promotion (0-d stays 0-d)."""
    if isinstance(value, torch.Tensor):
        return torch.ones((1,) * min(value.dim(), 1), dtype=value.dtype)
    return value


def broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """torch's broadcasting of shapes (``torch.broadcast_shapes`` runs a Python reference that imports SymPy).

    A symbolic size is compared (a condition on the sizes) only where it meets another size that is not 1:
    one size broadcast against 1s is that size, whether or not it is 1 itself.
    """
    if all(_same_shape(s, shapes[0]) for s in shapes[1:]):  # the common case: operands of one shape
        return tuple(shapes[0])
    out = []
    for i in range(1, max(map(len, shapes), default=0) + 1):
        sizes: list = []  # the distinct sizes other than 1 (a list: a symbolic size is not hashable)
        for s in shapes:
            if len(s) >= i and not (type(s[-i]) is int and s[-i] == 1) and _distinct(s[-i], sizes):
                sizes.append(s[-i])
        if len(sizes) > 1:  # sizes that differ as written: each must be 1 or equal to the others
            sizes = [v for v in sizes if v != 1]
            sizes = [v for k, v in enumerate(sizes) if all(v != w for w in sizes[:k])]
        if len(sizes) > 1:
            raise SymconvError(f"shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast")
        out.append(sizes.pop() if sizes else 1)
    return tuple(reversed(out))


def _same_shape(a: tuple, b: tuple) -> bool:
    """Whether two shapes are equal as written (``(1, 8, H, W) == (1, 8, 1, 1)`` would compare H with 1, and a
    tuple compares its sizes before its length, L with 48)."""
    return len(a) == len(b) and all(_same_size(x, y) for x, y in zip(a, b))


def _distinct(size: Any, sizes: list) -> bool:
    """Whether a size differs from each of ``sizes`` as written."""
    return not any(_same_size(size, other) for other in sizes)


def _same_size(a: Any, b: Any) -> bool:
    """Whether two sizes are equal as written: equal ints, or the same symbolic expression (no condition on the
    sizes is made)."""
    if type(a) is int and type(b) is int:
        return a == b
    from torch.fx.experimental.symbolic_shapes import statically_known_true  # symbolic sizes only: SymPy
    return a is b or statically_known_true(a == b)


_DTYPES_LIMIT = 1024


def _in_place(func) -> bool:
    arguments = func._schema.arguments
    return bool(arguments) and arguments[0].alias_info is not None and arguments[0].alias_info.is_write


def _promotion_key(value: Any) -> Any:
    """What type promotion reads of an argument: a tensor's dtype and whether it is 0-d; a scalar's type and
    value (``1`` and ``1.0`` promote differently though they are equal)."""
    if isinstance(value, torch.Tensor):
        return value.dtype, value.dim() == 0
    if value != value:  # NaN is not equal to itself: one key for every NaN
        return type(value), "nan"
    return type(value), value


def _sample_dtypes(func, args: tuple, kwargs: dict) -> torch.dtype | tuple[torch.dtype, ...] | None:
    """The dtype of ``func``'s output (a tuple of them for a tuple of outputs), from the operator run on
    one-element CPU stand-ins; None where it refuses them."""
    try:
        sample = func(*(_small(a) for a in args), **{k: _small(v) for k, v in kwargs.items()})
    except Exception:  # a stand-in this operator refuses: let torch's meta kernel answer
        return None
    if isinstance(sample, torch.Tensor):
        return sample.dtype
    if isinstance(sample, tuple) and all(isinstance(s, torch.Tensor) for s in sample):
        return tuple(s.dtype for s in sample)
    return None


def pointwise(func, args: tuple, kwargs: dict, in_place: bool | None = None,
              dtypes: dict[Any, Any] | None = None) -> Any:
    """A pointwise operator: broadcast shape; dtype from the same operator on one-element CPU stand-ins,
    remembered in ``dtypes`` by what type promotion reads of the arguments."""
    if in_place if in_place is not None else _in_place(func):
        others = [a for a in args[1:] if isinstance(a, torch.Tensor)]
        if others and broadcast(tuple(args[0].shape), *(tuple(a.shape) for a in others)) != tuple(args[0].shape):
            raise SymconvError(f"{func}: the operands do not broadcast to the shape {tuple(args[0].shape)} "
                               f"updated in place")
        return args[0]
    if "out" in kwargs:
        return NotImplemented
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    if not tensors:
        return NotImplemented
    shape = broadcast(*(tuple(t.shape) for t in tensors))
    try:
        key = (func, tuple(map(_promotion_key, args)), tuple((k, _promotion_key(v)) for k, v in kwargs.items()))
        hash(key)
    except TypeError:  # an unhashable argument: nothing to remember it by
        key = None
    if dtypes is None or key is None:
        found = _sample_dtypes(func, args, kwargs)
    elif key in dtypes:
        found = dtypes[key]
    else:
        if len(dtypes) >= _DTYPES_LIMIT:  # scalars that change from call to call: keep the memory bounded
            dtypes.clear()
        found = dtypes[key] = _sample_dtypes(func, args, kwargs)
    if found is None:
        return NotImplemented
    if isinstance(found, tuple):
        return tuple(_empty(shape, tensors[0], dtype) for dtype in found)
    return _empty(shape, tensors[0], found)


_HANDLERS: dict[Any, Fast | None] = {}  # every operator seen -> its handler, or None


def _pointwise_handler(func) -> Fast:
    in_place, dtypes = _in_place(func), {}
    return lambda *args, **kwargs: pointwise(func, args, kwargs, in_place, dtypes)


def clear_caches() -> None:
    """Forget the remembered output shapes of convolutions and dtypes of pointwise operators."""
    _convolution_shape.cache_clear()
    for func in [f for f, handler in _HANDLERS.items() if handler is not None and f not in FAST]:
        del _HANDLERS[func]  # each pointwise handler holds its dtypes


def _handler(func) -> Fast | None:
    if func not in _HANDLERS:
        _HANDLERS[func] = FAST.get(func) or (_pointwise_handler(func) if torch.Tag.pointwise in func.tags else None)
    return _HANDLERS[func]


# hardswish is pointwise, though torch does not tag it so (its fake kernel decomposes it, guarding every size)
for _op in (aten.hardswish.default, aten.hardswish_.default, aten.hardswish_backward.default):
    FAST[_op] = _pointwise_handler(_op)


#: operators whose outputs are made here on symbolic sizes too: torch's own kernels read the sizes and fix them at
#: their hints (constant_pad_nd's Python meta kernel calls size()), need concrete sizes (the upsamplings' and their
#: gradients', im2col's and col2im's), fail on symbolic ones (baddbmm's expands its bias, _trilinear's) or assume
#: sizes are not 1 where nothing depends on it (batch norm's decomposition broadcasts its statistics over every
#: size, guarding each not 1; layer norm's, softmax's, the reductions', the pools' and a view's check their
#: input's layout, guarding sizes not 1 or at least 2): a formula would leave out the sizes of 1 it holds at
SYMBOLIC_SAFE = frozenset({
    aten.constant_pad_nd.default, aten.upsample_linear1d.default, aten.upsample_bilinear2d.default,
    aten.upsample_bicubic2d.default, aten.upsample_trilinear3d.default, *_UPSAMPLING_GRADIENTS,
    aten.baddbmm.default, aten.im2col.default, aten.col2im.default, aten._trilinear.default,
    aten.native_batch_norm.default, aten._native_batch_norm_legit.default,
    aten._native_batch_norm_legit_no_training.default, aten.native_batch_norm_backward.default,
    aten.native_layer_norm.default, aten.native_layer_norm_backward.default, aten.native_group_norm.default,
    aten.native_group_norm_backward.default, aten._softmax.default, aten._log_softmax.default,
    aten._safe_softmax.default, aten._softmax_backward_data.default, aten._log_softmax_backward_data.default,
    aten.native_dropout.default, aten.mean.dim, aten.mean.default, aten.sum.dim_IntList, aten.sum.default,
    aten.amax.default, aten.amin.default, aten._adaptive_avg_pool2d.default, aten._adaptive_avg_pool3d.default,
    aten.adaptive_max_pool2d.default, aten.adaptive_max_pool3d.default, aten.max_pool2d_with_indices.default,
    aten.max_pool3d_with_indices.default, aten.avg_pool2d.default, aten.avg_pool3d.default,
    aten.hardswish.default, aten.hardswish_.default, aten.hardswish_backward.default, aten.convolution.default,
    aten.convolution_backward.default, aten.view.default, aten._unsafe_view.default})


def symbolic_safe(func) -> bool:
    """Whether ``func``'s output is made here on symbolic sizes too: SYMBOLIC_SAFE, and every pointwise operator
    (torch's fake kernels guard each size not 1 while broadcasting, even between operands of one shape; here
    operands of one shape broadcast to it, and only sizes that meet a 1 are guarded)."""
    return func in SYMBOLIC_SAFE or torch.Tag.pointwise in func.tags


def fast_output(func, args: tuple, kwargs: dict) -> Any:
    """The output of ``func`` on meta tensors made here, or NotImplemented where torch's kernel must run."""
    handler = _HANDLERS.get(func) or _handler(func)
    return NotImplemented if handler is None else handler(*args, **kwargs)
