"""Output encoding (Cog reference 3.3): Python values -> JSON text, files kept as files."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import io
import json
import math
import mimetypes
import os
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any


class OutputError(ValueError):
    """An output value cannot be encoded as JSON."""


def is_stream(value: Any) -> bool:
    """Outputs sent item by item: lists, tuples, generators and other iterators."""
    if isinstance(value, (list, tuple)):
        return True
    if isinstance(value, (str, bytes, bytearray, dict, io.IOBase, pathlib.PurePath)):
        return False
    return isinstance(value, Iterator)


def is_async_stream(value: Any) -> bool:
    return isinstance(value, AsyncIterator)


def is_file(value: Any) -> bool:
    return isinstance(value, (os.PathLike, io.IOBase)) and not isinstance(value, (str, bytes))


def guess_mime(name: str) -> str | None:
    return mimetypes.guess_type(name)[0]


def materialize_file(value: Any, output_dir: str) -> str:
    """A local path for a file output. IO objects are written into the prediction's output_dir."""
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise OutputError(f"output file {path!r} does not exist")
        return path
    name = os.path.basename(str(getattr(value, "name", "") or "")) or f"output-{uuid.uuid4().hex}"
    os.makedirs(output_dir, exist_ok=True)
    dest = os.path.join(output_dir, name)
    if os.path.exists(dest):
        dest = os.path.join(output_dir, f"{uuid.uuid4().hex[:8]}-{name}")
    if hasattr(value, "seek") and value.seekable():
        value.seek(0)
    with open(dest, "wb") as f:
        while True:
            chunk = value.read(1024 * 1024)
            if not chunk:
                break
            f.write(chunk.encode() if isinstance(chunk, str) else chunk)
    return dest


def _data_url(path: str) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    mime = guess_mime(path) or "application/octet-stream"
    return f"data:{mime};base64,{data}"


def to_jsonable(value: Any, output_dir: str) -> Any:
    """Plain JSON data. Files nested in containers become base64 data URLs (as Cog does)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise OutputError(f"output contains {value!r}, which JSON cannot represent")
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, output_dir)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, output_dir) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v, output_dir) for v in value]
    if is_file(value):
        return _data_url(materialize_file(value, output_dir))
    secret = getattr(value, "get_secret_value", None)
    if callable(secret) and type(value).__name__ == "Secret":
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Not dataclasses.asdict: it deep-copies, which breaks on open files and big arrays.
        return {
            f.name: to_jsonable(getattr(value, f.name), output_dir)
            for f in dataclasses.fields(value)
        }
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return to_jsonable(dump(), output_dir)
    legacy = getattr(value, "dict", None)  # pydantic v1
    if callable(legacy) and hasattr(value, "__fields__"):
        return to_jsonable(legacy(), output_dir)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist) and type(value).__module__.startswith("numpy"):
        return to_jsonable(tolist(), output_dir)
    if isinstance(value, Iterator):
        return [to_jsonable(v, output_dir) for v in value]
    raise OutputError(f"cannot encode output of type {type(value).__qualname__} as JSON")


def encode_json(value: Any, output_dir: str) -> str:
    return json.dumps(to_jsonable(value, output_dir), allow_nan=False, separators=(",", ":"))


def encode_item(value: Any, output_dir: str) -> tuple[str, ...]:
    """One output item for the IPC: ("file", path, mime) or ("json", text)."""
    if is_file(value):
        path = materialize_file(value, output_dir)
        return ("file", path, guess_mime(path) or "")
    return ("json", encode_json(value, output_dir))
