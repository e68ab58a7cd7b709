"""Load a user's model for ``symconv profile``: ``package.module:attr`` or ``path/to/file.py:attr``.

Everything here runs the user's own code (their imports, their builder), so every
failure becomes one :class:`~symconv.SymconvError` line naming the phase (import,
build) and the user's exception; the traceback stays available as its cause.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from ..core.errors import SymconvError


def _user_error(phase: str, err: BaseException) -> SymconvError:
    if isinstance(err, SystemExit):  # argparse's parse_args() at the top of a script, an exit() while importing
        return SymconvError(f"{phase} failed: the code exited (SystemExit: {err.code}); keep a script's command "
                            f"line under if __name__ == '__main__':")
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return SymconvError(f"{phase} failed: {type(err).__name__}" + (f": {text}" if text else ""))


def _is_file(source: str) -> bool:
    """A path to a Python file, not a dotted module name."""
    return source.endswith(".py") or "/" in source or "\\" in source


@contextmanager
def _as_run_alone(source: str) -> Iterator[None]:
    """The user's code imported and its model built as ``python file.py`` or ``python -m module`` would run it alone:
    the modules beside it importable (the file's folder, or the working folder, first on sys.path) and a command line
    of its own name only (a script parsing its arguments on import takes its defaults, not symconv's arguments).
    sys.path and sys.argv as they were afterwards."""
    entry = str(Path(source).resolve().parent if _is_file(source) else Path.cwd())
    added, argv = entry not in sys.path, sys.argv
    if added:
        sys.path.insert(0, entry)
    sys.argv = [source]
    try:
        yield
    finally:
        sys.argv = argv
        if added and entry in sys.path:
            sys.path.remove(entry)


def _import(source: str) -> ModuleType:
    """A module by dotted name, or a Python file by path (run as a fresh module)."""
    if _is_file(source):
        path = Path(source)
        if not path.is_file():
            raise SymconvError(f"model file {source!r} does not exist")
        name = f"symconv_user_model_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise SymconvError(f"cannot load {source!r} as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling inside the file look their module up
        try:
            spec.loader.exec_module(module)
        except BaseException as err:
            del sys.modules[name]
            if isinstance(err, KeyboardInterrupt):
                raise
            raise _user_error(f"importing {source!r}", err) from err
        return module
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as err:
        if err.name and source.startswith(err.name):
            raise SymconvError(f"cannot import {source!r}: no module named {err.name!r}") from err
        raise _user_error(f"importing {source!r}", err) from err
    except (Exception, SystemExit) as err:
        raise _user_error(f"importing {source!r}", err) from err


def load_model(target: str) -> Any:
    """``SOURCE:ATTR`` -> the torch.nn.Module it names, or that a class or function of no arguments builds."""
    import torch

    source, _, attr = target.rpartition(":") if target.count(":") else ("", "", "")
    if target.count(":") and len(source) == 1 and source.isalpha():  # a Windows drive letter, no attribute
        source, attr = "", ""
    if not source or not attr:
        raise SymconvError(f"model {target!r} must be written MODULE:ATTR or path/to/file.py:ATTR, "
                           f"e.g. symconv.frontends.examples:dcgan_generator")
    with _as_run_alone(source):
        obj: Any = _import(source)
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise SymconvError(f"{source!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if not isinstance(obj, torch.nn.Module) and callable(obj):
            try:
                obj = obj()
            except (Exception, SystemExit) as err:
                raise _user_error(f"building the model with {attr}()", err) from err
    if not isinstance(obj, torch.nn.Module):
        raise SymconvError(f"{target!r} is not a torch.nn.Module nor builds one without arguments "
                           f"(got {type(obj).__name__})")
    return obj
