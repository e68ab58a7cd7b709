"""Parse a layer written as its PyTorch constructor call, safely (``ast``, never ``eval``).

    >>> parse_layer("ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=False)").stride
    (2, 2)
"""

from __future__ import annotations

import ast
import re
from typing import Any, Sequence

from ..core.errors import SymconvError
from ..core.names import LAYER_KINDS, canonical_kind
from ..numeric.layer import Layer

# torch's positional order of each constructor
_POSITIONAL = {
    False: ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
            "padding_mode"),
    True: ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias",
           "dilation", "padding_mode"),
}
_PREFIXES = ("torch.nn.", "nn.")


def _literal(node: ast.AST, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError):
        raise SymconvError(f"{ast.get_source_segment(text, node) or '?'!r} in {text!r} is not a literal "
                         f"(ints, tuples, True/False, strings)") from None


def parse_layer(text: str) -> Layer:
    """A :class:`Layer` from text like ``"Conv2d(3, 64, 3, padding=1)"``; SymconvError naming what is wrong."""
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise SymconvError(f"malformed layer {text!r}: expected a constructor call like "
                         f"'ConvTranspose2d(16, 8, 4, stride=2)'") from None
    call = tree.body
    if not isinstance(call, ast.Call):
        raise SymconvError(f"malformed layer {text!r}: expected a constructor call like 'Conv2d(3, 64, 3)'")
    name = ast.get_source_segment(text, call.func) or ""
    for prefix in _PREFIXES:
        name = name[len(prefix):] if name.startswith(prefix) else name
    kind = canonical_kind(name)
    order = _POSITIONAL[LAYER_KINDS[kind][1]]
    if len(call.args) > len(order):
        raise SymconvError(f"{kind} takes at most {len(order)} positional arguments, got {len(call.args)}")
    kwargs = {order[i]: _literal(node, text) for i, node in enumerate(call.args)}
    for kw in call.keywords:
        if kw.arg is None or kw.arg not in order:
            raise SymconvError(f"{kind} has no argument {kw.arg!r}; arguments: {', '.join(order)}")
        if kw.arg in kwargs:
            raise SymconvError(f"{kind} got argument {kw.arg!r} twice")
        kwargs[kw.arg] = _literal(kw.value, text)
    missing = [n for n in order[:3] if n not in kwargs]
    if missing:
        raise SymconvError(f"{kind} needs {', '.join(missing)}")
    return Layer.make(kind, **kwargs)


_INTEGER = re.compile(r"[0-9]+")               # ASCII digits only: no sign, no underscore, no other script's digits
_EXPRESSION = re.compile(r"[A-Za-z0-9_+\-*() ]+")  # names, integers, + - * and parentheses


def decimal(digits: str) -> int:
    """An ASCII decimal string as an int, at any length (``int`` refuses past Python's digit limit)."""
    value = 0
    for start in range(0, len(digits), 1000):
        chunk = digits[start:start + 1000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def parse_shape(text: str | Sequence) -> tuple:
    """'1,1,4,4' -> (1, 1, 4, 4); '1,512,H,W' and '1,3,8*h,8*w' -> symbolic sizes (SymPy expressions).

    A field is ASCII decimal digits, or a name or an expression in names; empty
    fields, signs, underscores in numbers and other scripts' digits are refused
    with a SymconvError naming the field.
    """
    if not isinstance(text, str):
        return tuple(text)
    body = text.strip()
    if body[:1] in "([" and body[-1:] in ")]":
        body = body[1:-1]
    if not body.strip():
        raise SymconvError(f"input shape {text!r} is empty: give sizes like 1,1,4,4")
    shape: list = []
    for field in body.split(","):
        part = field.strip()
        if not part:
            raise SymconvError(f"input shape {text!r} has an empty size: give sizes like 1,1,4,4")
        if _INTEGER.fullmatch(part):
            shape.append(decimal(part))
        elif _EXPRESSION.fullmatch(part) and re.search(r"[A-Za-z_]", part) and \
                not re.search(r"(?<![A-Za-z0-9_])[0-9]+_", part):
            from ..core.sizes import parse_size  # SymPy, for symbolic sizes only
            shape.append(parse_size(part))
        else:
            raise SymconvError(f"input shape {text!r} has a non-integer size {part!r}")
    return tuple(shape)
