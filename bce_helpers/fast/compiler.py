"""torch.compile where a compiler is available, the same function eagerly (with a warning)
where none is: the one place the suite decides between the two."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch

# torch.compiler.is_compiling is torch >= 2.3's name
_is_compiling = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling


def is_compiling() -> bool:
    """Whether dynamo is tracing the code that calls this (a graph is being made)."""
    return _is_compiling()


def compile_enabled() -> bool:
    """Whether torch.compile may be used here (this torch has it; BCE_HELPERS_COMPILE != 0)."""
    return hasattr(torch, "compile") and os.environ.get("BCE_HELPERS_COMPILE") != "0"


def _missing_compiler_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "no working compiler here", not "the caller's arguments"."""
    errors: list[type[BaseException]] = []
    try:
        from torch._dynamo.exc import BackendCompilerFailed

        errors.append(BackendCompilerFailed)
    except ImportError:  # a torch without dynamo: torch.compile itself is missing
        pass
    return tuple(errors)


def warn_eager(what: str, exc: BaseException) -> None:
    """Say, once per occasion, that `what` runs eagerly because compiling failed."""
    warnings.warn(
        f"{what}: torch.compile is not available here ({type(exc).__name__}: {exc!s:.200}); "
        "running the same formulas eagerly, correct but not fused",
        RuntimeWarning,
        stacklevel=4,
    )


def known_options(options: dict[str, Any]) -> dict[str, Any]:
    """torch.compile's arguments without the inductor options this torch does not know (an
    older torch lacks some; torch.compile would refuse them at the first call)."""
    inductor = dict(options.get("options") or {})
    if inductor:
        from torch._inductor import config

        for key in list(inductor):
            if not hasattr(config, key):  # inductor's config answers dotted names too
                del inductor[key]
    return {**options, "options": inductor} if "options" in options else dict(options)


class Compiled:
    """fn under torch.compile, compiled at its first call; fn itself where no compiler works.

    Only a missing or broken compiler (dynamo's BackendCompilerFailed, or torch.compile
    itself refusing) switches this function to eager, with a warning. Any other exception,
    a device mix-up or an out-of-memory error, is the caller's and reaches the caller
    unchanged, and the next call compiles as before.
    """

    def __init__(self, fn: Callable, what: str | None = None, **options: Any) -> None:
        self.fn = fn
        self.what = what or getattr(fn, "__name__", "a function")
        self.options = options
        self._compiled: Callable | None = None
        self.eager = False  # set for good when compiling fails here

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.eager or not compile_enabled():
            return self.fn(*args, **kwargs)
        if self._compiled is None:
            # a CUDA build on a machine without CUDA logs a warning when inductor starts
            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            try:
                self._compiled = torch.compile(self.fn, **known_options(self.options))
            except Exception as exc:  # torch.compile refuses (an unsupported Python)
                return self._fall_back(exc, args, kwargs)
        try:
            return self._compiled(*args, **kwargs)
        except _missing_compiler_errors() as exc:
            return self._fall_back(exc, args, kwargs)

    def _fall_back(self, exc: BaseException, args: tuple, kwargs: dict) -> Any:
        warn_eager(self.what, exc)
        self.eager = True
        return self.fn(*args, **kwargs)


def compiled(fn: Callable, what: str | None = None, **options: Any) -> Compiled:
    """fn under torch.compile where compile_enabled() at call time, else fn itself."""
    return Compiled(fn, what, **options)
