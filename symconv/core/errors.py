"""symconv's one domain exception."""

from __future__ import annotations


class SymconvError(ValueError):
    """Bad input to symconv: the message names the parameter and the value.

    A subclass of ValueError, so ``except ValueError`` keeps working; the CLI turns
    it into exit status 2 and one line, and lets every other exception show its
    traceback (a bug in symconv is reported as a bug).
    """
