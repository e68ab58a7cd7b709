"""symconv's one domain exception."""

from __future__ import annotations


class SymconvError(ValueError):
    """Bad input to symconv: the message names the parameter and the value.

    A subclass of ValueError, so ``except ValueError`` keeps working; the CLI turns
    it into exit status 2 and one line, and lets every other exception show its
    traceback (a bug in symconv is reported as a bug).
    """


def require_bool(name: str, value: object) -> bool:
    """``value`` if it is True or False; SymconvError naming the parameter otherwise (``"no"`` is not False)."""
    if not isinstance(value, bool):
        raise SymconvError(f"{name}={value!r} must be True or False")
    return value
