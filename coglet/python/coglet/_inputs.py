"""Input coercion: JSON values -> the types run() declares (Path, File, Secret, ...).

The server has already validated the input against the schema; this turns URLs into local
files (downloaded in parallel) and wraps secrets. `str` parameters are never coerced, even when
they hold a URL.

Downloads go into the prediction's own directory (`<work_dir>/predictions/<dir>/inputs`, named
by the server), which the server removes once the prediction's output is final: run() may return
an input Path as its output, and the server reads that file only after run() has returned.
"""

from __future__ import annotations

import copy
import inspect
import os
import pathlib
import types
import typing
from dataclasses import dataclass
from typing import Any

from cog.input import FieldInfo
from cog.types import File, Path, Secret, URLPath

_MISSING = inspect.Parameter.empty
_DOWNLOAD_WORKERS = 8


class InputError(ValueError):
    """The input cannot be turned into run()'s arguments (answered with HTTP 422)."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "path", "file", "secret", "float", "plain"
    is_list: bool
    default: Any  # _MISSING when required
    nullable: bool


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _strip_optional(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(tp))
        if len(args) == 1:
            inner, _ = _strip_optional(args[0])
            return inner, nullable
        return tp, nullable
    return tp, False


def _kind_of(tp: Any) -> str:
    if isinstance(tp, type):
        if issubclass(tp, File):
            return "file"
        if issubclass(tp, pathlib.PurePath):
            return "path"
        if issubclass(tp, Secret):
            return "secret"
        if tp is float:
            return "float"
    return "plain"


def _describe(tp: Any) -> tuple[str, bool, bool]:
    inner, nullable = _strip_optional(tp)
    if typing.get_origin(inner) is list:  # also typing.List[T]
        args = typing.get_args(inner)
        elem, _ = _strip_optional(args[0]) if args else (Any, False)
        kind = _kind_of(elem)
        # Cog wraps Secret, Optional[Secret] and Secret | None, but not list[Secret].
        return ("plain" if kind == "secret" else kind), True, nullable
    return _kind_of(inner), False, nullable


def describe_params(fn: Any) -> tuple[list[Param], bool]:
    """run()'s parameters, and whether it takes **kwargs."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable annotations: fall back to the raw ones
        hints = {name: p.annotation for name, p in sig.parameters.items()}
    params = []
    var_kw = False
    for name, p in sig.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
            continue
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        kind, is_list, nullable = _describe(hints.get(name, Any))
        default = p.default
        if isinstance(default, FieldInfo):
            # Input() without a default is required unless the type admits None (a Secret
            # becomes optional, as in Cog); Input(default=None) is optional whatever the type,
            # as in Cog <= 0.16 (the schema marks it nullable, not required).
            given = getattr(default, "_default_given", True)
            default = default.default
            if not given and not nullable and kind != "secret":
                default = _MISSING
        params.append(Param(name, kind, is_list, default, nullable))
    return params, var_kw


class Coerced:
    """The arguments for one run() call and the files it downloaded for them.

    `cleanup()` is only for a prediction that never runs (a failed download): after run(), the
    files may be the output, and the server removes them with the prediction's directory.
    """

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}
        self.temp_files: list[pathlib.Path] = []
        self.dropped: list[str] = []
        # URL inputs still to download.
        self.pending: list[tuple[URLPath, Any]] = []

    def download(self, download_dir: str | None) -> None:
        """Downloads the pending URL inputs (in parallel) and puts the local files in
        `kwargs`. Raises InputError, having removed what it downloaded, if any fails."""
        if self.pending:
            pending, self.pending = self.pending, []
            _download_all(self, pending, download_dir)

    def cleanup(self) -> None:
        for p in self.temp_files:
            try:
                os.unlink(p)
            except OSError:
                pass
        self.temp_files.clear()


def _coerce_one(kind: str, value: Any, pending: list[tuple[URLPath, Any]]) -> Any:
    if value is None:
        return None
    if kind == "path":
        path = Path.validate(value)
        if isinstance(path, URLPath):
            pending.append((path, None))
        return path
    if kind == "file":
        return File.validate(value)
    if kind == "secret":
        return value if isinstance(value, Secret) else Secret(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def coerce(
    params: list[Param], var_kw: bool, raw: dict[str, Any], download_dir: str | None = None
) -> Coerced:
    """run()'s arguments from the JSON input; URL inputs are downloaded into `download_dir`
    (created if needed; the system temp dir when None)."""
    out = prepare(params, var_kw, raw)
    out.download(download_dir)
    return out


def prepare(params: list[Param], var_kw: bool, raw: dict[str, Any]) -> Coerced:
    """run()'s arguments from the JSON input, with URL inputs not yet downloaded: call
    `download()` (which blocks; an event loop runs it in an executor) when `pending`."""
    out = Coerced()
    known = {p.name for p in params}
    for key in raw:
        if key not in known and not var_kw:
            out.dropped.append(key)
    try:
        for p in params:
            if p.name in raw:
                value = raw[p.name]
            elif p.default is not _MISSING:
                # Copied so that a mutable default (a list) never leaks between predictions.
                value = copy.deepcopy(p.default)
            elif p.nullable:
                value = None
            else:
                raise InputError(f"{p.name}: Field required")
            if p.is_list and isinstance(value, list):
                value = [_coerce_one(p.kind, v, out.pending) for v in value]
            else:
                value = _coerce_one(p.kind, value, out.pending)
            out.kwargs[p.name] = value
        if var_kw:
            for key, value in raw.items():
                if key not in known:
                    out.kwargs[key] = value
    except (TypeError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(str(e)) from e
    return out


def _download_all(
    out: Coerced, pending: list[tuple[URLPath, Any]], download_dir: str | None
) -> None:
    """Download every URL input in parallel, then swap each URLPath for its local file."""
    from concurrent.futures import ThreadPoolExecutor  # only when there is something to fetch

    urls = [u for u, _ in pending]
    if download_dir is not None:
        try:
            os.makedirs(download_dir, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the download directory {download_dir}: {e}") from e
    with ThreadPoolExecutor(max_workers=min(_DOWNLOAD_WORKERS, len(urls))) as pool:
        futures = [pool.submit(u.convert, download_dir) for u in urls]
    errors = []
    local: dict[int, pathlib.Path] = {}
    for u, fut in zip(urls, futures, strict=True):
        try:
            path = fut.result()
        except Exception as e:
            errors.append(f"failed to download {_short(u.source)}: {e}")
            continue
        out.temp_files.append(path)
        local[id(u)] = path
    if errors:
        out.cleanup()
        raise InputError("; ".join(errors))

    def swap(v: Any) -> Any:
        return local.get(id(v), v) if isinstance(v, URLPath) else v

    for name, value in out.kwargs.items():
        out.kwargs[name] = [swap(v) for v in value] if isinstance(value, list) else swap(value)


def _short(url: str) -> str:
    return url if len(url) <= 100 else url[:60] + "..." + url[-20:]
