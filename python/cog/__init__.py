"""Cog SDK: define machine learning models with standard Python.

from cog import BaseRunner, Input, Path

class Runner(BaseRunner):
    def setup(self) -> None:
        self.model = load_model()

    def run(self, prompt: str = Input(description="Prompt")) -> str:
        return self.model.generate(prompt)
"""

from __future__ import annotations

import inspect as _inspect
import sys as _sys
from collections.abc import Callable
from typing import Any, TypeVar, overload

from . import _runtime
from ._opaque import Opaque
from ._runtime import CancelationException
from ._version import __version__
from .input import FieldInfo, Input
from .model import BaseModel
from .predictor import BasePredictor, BaseRunner
from .types import (
    AsyncConcatenateIterator,
    ConcatenateIterator,
    File,
    Path,
    Secret,
    URLFile,
    URLPath,
)

_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def streaming(fn: _F) -> _F: ...


@overload
def streaming(fn: None = None) -> Callable[[_F], _F]: ...


def streaming(fn: _F | None = None) -> _F | Callable[[_F], _F]:
    """Mark run() as streaming (SSE). A no-op at run time: the schema generator reads it."""

    def decorate(inner: _F) -> _F:
        return inner

    return decorate if fn is None else decorate(fn)


@overload
def concurrent(fn: _F) -> _F: ...


@overload
def concurrent(fn: None = None, *, max: int = 1) -> Callable[[_F], _F]: ...


def concurrent(fn: _F | None = None, *, max: int = 1) -> _F | Callable[[_F], _F]:
    """Allow up to `max` concurrent predictions (async run() only when max > 1).

    Read statically at build time (an integer literal); at run time `COG_MAX_CONCURRENCY`
    sets the slot count.
    """
    if isinstance(max, bool) or not isinstance(max, int):
        raise TypeError("concurrent max must be an integer")
    if max < 1:
        raise ValueError("concurrent max must be at least 1")

    def decorate(inner: _F) -> _F:
        if max > 1 and not (
            _inspect.iscoroutinefunction(inner) or _inspect.isasyncgenfunction(inner)
        ):
            raise TypeError("concurrent max greater than 1 requires an async function")
        inner.__cog_concurrent_max__ = max  # type: ignore[attr-defined]
        return inner

    if fn is None:
        return decorate
    if not callable(fn):
        raise TypeError("concurrent must be used as @concurrent or @concurrent(max=...)")
    return decorate(fn)


def current_scope() -> Any:
    """The current prediction's scope: `.metrics`, `.context`, `.record_metric(k, v, mode)`.

    Outside a prediction it is a no-op scope, never None.
    """
    return _runtime.current_scope()


class _ExperimentalFeatureWarning(FutureWarning):
    """Deprecated: no longer used by Cog; kept so old `filterwarnings` calls still import."""


def __getattr__(name: str) -> Any:
    # Deprecated shims: print a notice once (to stderr, so warning filters cannot hide it).
    if name == "ExperimentalFeatureWarning":
        print(
            "cog: ExperimentalFeatureWarning is deprecated and will be removed in a "
            "future release. Remove `ExperimentalFeatureWarning` from your imports "
            "and any associated `warnings.filterwarnings(...)` calls.",
            file=_sys.stderr,
        )
        globals()[name] = _ExperimentalFeatureWarning
        return _ExperimentalFeatureWarning
    if name == "emit_metric":
        print(
            "cog: emit_metric() is deprecated and will be removed in a future release. "
            "Use current_scope().record_metric(name, value) instead.",
            file=_sys.stderr,
        )

        def emit_metric(name: str, value: Any) -> None:
            current_scope().record_metric(name, value)

        globals()["emit_metric"] = emit_metric
        return emit_metric
    raise AttributeError(f"module 'cog' has no attribute {name!r}")


__all__ = [  # noqa: RUF022 - grouped as in Cog
    "__version__",
    "BaseRunner",
    "BasePredictor",
    "BaseModel",
    "Opaque",
    "Input",
    "FieldInfo",
    "Path",
    "Secret",
    "File",
    "URLFile",
    "URLPath",
    "ConcatenateIterator",
    "AsyncConcatenateIterator",
    "CancelationException",
    "current_scope",
    "streaming",
    "concurrent",
    "ExperimentalFeatureWarning",
    "emit_metric",
]
