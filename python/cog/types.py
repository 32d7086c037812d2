"""Input and output types: Path, File, Secret, URL helpers and the iterator markers."""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import pathlib
import shutil
import sys
import tempfile
import urllib.parse
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from ._version import __version__

FILENAME_ILLEGAL_CHARS = set("\u0000/")
# Linux allows 255-byte names; leave room for the prefix NamedTemporaryFile adds.
FILENAME_MAX_LENGTH = 200
DOWNLOAD_TIMEOUT_SECONDS = 10
_URL_SCHEMES = ("http", "https", "data")

Item = TypeVar("Item")


@dataclass(frozen=True)
class Secret:
    """A string that is never printed: `str()` and `repr()` mask it."""

    secret_value: str | None = None

    def __repr__(self) -> str:
        return f"Secret({self!s})"

    def __str__(self) -> str:
        # An empty secret (no value) prints as "", as in Cog.
        return "**********" if self.secret_value is not None else ""

    def get_secret_value(self) -> str | None:
        return self.secret_value


def _user_agent() -> str:
    return os.environ.get("COG_USER_AGENT", f"cog-worker/{__version__}")


def _truncate_filename_bytes(name: str, length: int) -> str:
    """At most `length` UTF-8 bytes, keeping the extension: `long~.png`."""
    raw = name.encode("utf-8")
    if len(raw) <= length:
        return name
    root, ext = os.path.splitext(name)
    ext_bytes = ext.encode("utf-8")
    keep = max(length - len(ext_bytes) - 1, 0)
    root_bytes = root.encode("utf-8")[:keep]
    return root_bytes.decode("utf-8", "ignore") + "~" + ext


def get_filename(url: str) -> str:
    """A safe local filename for a URL: the last path segment, or `file.<ext>` for data URLs."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "data":
        mime = parsed.path.split(",", 1)[0].split(";", 1)[0] or "text/plain"
        ext = mimetypes.guess_extension(mime)
        return "file" + ext if ext else "file"
    basename = urllib.parse.unquote_plus(os.path.basename(parsed.path)) or "file"
    basename = _truncate_filename_bytes(basename, FILENAME_MAX_LENGTH)
    return "".join("_" if c in FILENAME_ILLEGAL_CHARS else c for c in basename)


def _decode_data_url(url: str) -> bytes:
    try:
        header, _, payload = url[len("data:") :].partition(",")
    except ValueError as e:  # pragma: no cover - partition never raises
        raise ValueError(f"invalid data URL: {url[:64]}") from e
    if not _:
        raise ValueError(f"invalid data URL (no ','): {url[:64]}")
    if header.endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=False)
        except ValueError as e:
            raise ValueError(f"invalid base64 in data URL: {e}") from e
    return urllib.parse.unquote_to_bytes(payload)


def _open_url(url: str) -> Any:
    # Imported here: urllib.request (http.client, email, ...) is most of `import cog`'s time,
    # and the server and its worker import cog on every cold start.
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": _user_agent()})
    return urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS)


def download(url: str, dest: io.IOBase | Any) -> None:
    """Stream `url` (http, https or data) into the binary file `dest`."""
    if url.startswith("data:"):
        dest.write(_decode_data_url(url))
        return
    with _open_url(url) as response:
        shutil.copyfileobj(response, dest, 1024 * 1024)


class Path(pathlib.PosixPath):
    """A file input or output. Inputs given as http(s)/data URLs are downloaded before run()."""

    @classmethod
    def validate(cls, value: Any) -> pathlib.Path:
        if isinstance(value, pathlib.Path):
            return value
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"expected a path or URL, got {type(value).__name__}")
        text = os.fspath(value)
        scheme = urllib.parse.urlparse(text).scheme if isinstance(text, str) else ""
        if scheme in _URL_SCHEMES:
            return URLPath(source=text, filename=get_filename(text))
        return cls(text)

    if sys.version_info >= (3, 12):

        def with_segments(self, *pathsegments: Any) -> pathlib.Path:
            # Derived paths (parent, joinpath) are plain cog Paths, never URLPaths.
            return Path(*pathsegments)


class URLPath(Path):
    """A Path input given as a URL, fetched lazily by `convert()` into a named temp file.

    It subclasses Path only so that `isinstance(x, pathlib.Path)` checks in user code pass
    before the download happens; the worker converts every URLPath before calling run().
    """

    source: str
    filename: str

    if sys.version_info >= (3, 12):

        def __init__(self, *, source: str, filename: str | None = None) -> None:
            name = filename or get_filename(source)
            super().__init__(name)
            self.source = source
            self.filename = name
            self._converted: Path | None = None

    else:

        def __new__(cls, *, source: str, filename: str | None = None) -> URLPath:
            name = filename or get_filename(source)
            self = super().__new__(cls, name)
            self.source = source
            self.filename = name
            self._converted = None
            return self

    def convert(self, directory: str | None = None) -> Path:
        """Download into `NamedTemporaryFile(suffix=filename)` once; return its local Path."""
        if getattr(self, "_converted", None) is None:
            with tempfile.NamedTemporaryFile(
                suffix=self.filename, dir=directory, delete=False
            ) as dest:
                try:
                    download(self.source, dest)
                except BaseException:
                    dest.close()
                    os.unlink(dest.name)
                    raise
            self._converted = Path(dest.name)
        return self._converted

    def unlink(self, missing_ok: bool = False) -> None:
        if getattr(self, "_converted", None) is not None:
            self._converted.unlink(missing_ok=missing_ok)

    def __str__(self) -> str:
        # Before conversion a URLPath stands for its source URL (e.g. in logs or encoders).
        # Paths derived from it (`.parent` on 3.10/3.11) lack these attributes: plain str.
        converted = getattr(self, "_converted", None)
        if converted is not None:
            return str(converted)
        return getattr(self, "source", None) or super().__str__()

    def __fspath__(self) -> str:
        return os.fspath(self.convert())

    def __reduce__(self) -> Any:
        return (_rebuild_urlpath, (self.source, self.filename))


def _rebuild_urlpath(source: str, filename: str) -> URLPath:
    return URLPath(source=source, filename=filename)


class URLFile(io.IOBase):
    """A lazily opened, read-only file-like view of an http(s) URL. Survives pickling."""

    __slots__ = ("__target__", "__url__", "name")

    def __init__(self, url: str, filename: str | None = None) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(
                f"URLFile requires URL to conform to HTTP or HTTPS protocol, got {url!r}"
            )
        object.__setattr__(self, "name", filename or get_filename(url))
        object.__setattr__(self, "__url__", url)
        object.__setattr__(self, "__target__", None)

    def __wrapped__(self) -> Any:
        target = object.__getattribute__(self, "__target__")
        if target is None:
            target = _open_url(object.__getattribute__(self, "__url__"))
            object.__setattr__(self, "__target__", target)
        return target

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self.__wrapped__().read(size)

    def readinto(self, buffer: Any) -> int:
        return self.__wrapped__().readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        return self.__wrapped__().readline(size)

    def close(self) -> None:
        target = object.__getattribute__(self, "__target__")
        if target is not None:
            target.close()
        super().close()

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.__wrapped__())

    def __getstate__(self) -> dict[str, Any]:
        return {"url": object.__getattribute__(self, "__url__"), "name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "name", state["name"])
        object.__setattr__(self, "__url__", state["url"])
        object.__setattr__(self, "__target__", None)

    def __repr__(self) -> str:
        return f"URLFile({object.__getattribute__(self, '__url__')!r})"


class File(io.IOBase):
    """Deprecated: use Path. A file-like input: data URLs become BytesIO, http(s) a URLFile."""

    @classmethod
    def validate(cls, value: Any) -> io.IOBase:
        if isinstance(value, io.IOBase):
            return value
        if not isinstance(value, str):
            raise TypeError(f"expected a URL, got {type(value).__name__}")
        scheme = urllib.parse.urlparse(value).scheme
        if scheme == "data":
            buffer = io.BytesIO(_decode_data_url(value))
            buffer.name = get_filename(value)  # type: ignore[attr-defined]
            return buffer
        if scheme in ("http", "https"):
            return URLFile(value)
        raise ValueError(
            f"'{scheme}' is not a valid URL scheme. 'data', 'http', or 'https' is supported."
        )


# What `setup(weights=...)` receives, as Cog <= 0.16 spelled it (`from cog.types import
# Weights`); Cog 0.17+ dropped the name, but models written for older versions still import it.
Weights = Union[File, Path, str]


class ConcatenateIterator(Iterator[Item]):
    """Return type of run() for streamed tokens that are concatenated for display."""

    @abstractmethod
    def __next__(self) -> Item: ...


class AsyncConcatenateIterator(AsyncIterator[Item]):
    """Async variant of ConcatenateIterator."""

    @abstractmethod
    async def __anext__(self) -> Item: ...


__all__ = [
    "AsyncConcatenateIterator",
    "ConcatenateIterator",
    "File",
    "Path",
    "Secret",
    "URLFile",
    "URLPath",
    "Weights",
    "get_filename",
]
