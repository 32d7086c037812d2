"""Unit tests of the worker's input coercion and output encoding (coglet._inputs/_outputs)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
import pathlib

import pytest

from cog import File, Input, Path, Secret

pytest.importorskip("coglet")

from coglet import _outputs
from coglet._inputs import InputError, coerce, describe_params


def run(
    text: str,
    secret: Secret,
    secrets: list[Secret],
    maybe: Secret | None = None,
    p: Path = Input(description="file"),
    ps: list[Path] = Input(default=None),
    f: float = 1.0,
    fi: File | None = None,
    tags: list[str] = Input(default=["a"]),
    opt: str | None = Input(default=None),
) -> str:
    return text


def test_describe_params() -> None:
    params, var_kw = describe_params(run)
    kinds = {p.name: (p.kind, p.is_list, p.nullable) for p in params}
    assert kinds == {
        "text": ("plain", False, False),
        "secret": ("secret", False, False),
        "secrets": ("plain", True, False),  # list[Secret] is not wrapped
        "maybe": ("secret", False, True),
        "p": ("path", False, False),
        "ps": ("path", True, False),
        "f": ("float", False, False),
        "fi": ("file", False, True),
        "tags": ("plain", True, False),
        "opt": ("plain", False, True),
    }
    defaults = {p.name: p.default for p in params}
    assert defaults["p"] is not None and defaults["tags"] == ["a"] and defaults["opt"] is None
    assert var_kw is False


def test_coerce_types_and_defaults(tmp_path: pathlib.Path) -> None:
    params, var_kw = describe_params(run)
    local = tmp_path / "x.txt"
    local.write_text("x")
    out = coerce(
        params,
        var_kw,
        {
            "text": "https://example.com/a.png",
            "secret": "s",
            "secrets": ["a"],
            "p": "data:text/plain;base64,aGk=",
            "ps": [str(local)],
            "f": 3,
            "extra": 1,
        },
    )
    kw = out.kwargs
    assert kw["text"] == "https://example.com/a.png"  # str is never coerced
    assert isinstance(kw["secret"], Secret) and kw["secret"].get_secret_value() == "s"
    assert kw["secrets"] == ["a"] and kw["maybe"] is None
    assert isinstance(kw["p"], pathlib.Path) and kw["p"].read_text() == "hi"
    assert kw["ps"] == [local]
    assert kw["f"] == 3.0 and isinstance(kw["f"], float)
    assert kw["tags"] == ["a"] and kw["opt"] is None
    assert out.dropped == ["extra"]
    downloaded = kw["p"]
    out.cleanup()
    assert not downloaded.exists() and local.exists()
    # With a download directory (the worker passes the prediction's own), files land there.
    dest = tmp_path / "pred" / "inputs"
    out = coerce(
        params,
        var_kw,
        {"text": "", "secret": "", "secrets": [], "p": "data:text/plain;base64,aGV5", "ps": []},
        str(dest),
    )
    assert out.kwargs["p"].parent == dest and out.kwargs["p"].read_text() == "hey"
    out.cleanup()
    assert list(dest.iterdir()) == []
    # A mutable default is copied per call.
    kw["tags"].append("b")
    assert coerce(
        params, var_kw, {"text": "", "secret": "", "secrets": [], "p": "/x", "ps": []}
    ).kwargs["tags"] == ["a"]


def test_coerce_errors() -> None:
    params, var_kw = describe_params(run)
    with pytest.raises(InputError, match="text: Field required"):
        coerce(params, var_kw, {})
    # Input(default=None) on a non-Optional type is optional (as in Cog <= 0.16): absent or
    # null, run() gets None.
    # Input() with no default is required.
    with pytest.raises(InputError, match="p: Field required"):
        coerce(params, var_kw, {"text": "", "secret": "", "secrets": []})
    for given in ({}, {"ps": None}):
        kw = coerce(params, var_kw, {"text": "", "secret": "", "secrets": [], "p": "/x", **given})
        assert kw.kwargs["ps"] is None
    with pytest.raises(InputError, match="'ftp' is not a valid URL scheme"):
        coerce(
            params,
            var_kw,
            {"text": "", "secret": "", "secrets": [], "p": "/x", "ps": [], "fi": "ftp://x"},
        )


def test_var_kwargs_keep_unknown_keys() -> None:
    def fn(a: int, **rest: object) -> None: ...

    params, var_kw = describe_params(fn)
    assert var_kw and coerce(params, var_kw, {"a": 1, "b": 2}).kwargs == {"a": 1, "b": 2}


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class DC:
    when: datetime.date
    color: Color
    items: tuple


def test_encode_json(tmp_path: pathlib.Path) -> None:
    enc = lambda v: _outputs.to_jsonable(v, str(tmp_path))  # noqa: E731
    assert enc(DC(datetime.date(2024, 1, 2), Color.RED, (1, {2}))) == {
        "when": "2024-01-02",
        "color": "red",
        "items": [1, [2]],
    }
    assert enc(Secret("x")) == "**********"
    assert enc(iter([1, 2])) == [1, 2]
    f = tmp_path / "a.json"
    f.write_text("{}")
    assert enc({"f": Path(f)}) == {"f": "data:application/json;base64,e30="}
    with pytest.raises(_outputs.OutputError, match="JSON cannot represent"):
        enc(float("nan"))
    with pytest.raises(_outputs.OutputError, match="cannot encode output of type object"):
        enc(object())


def test_encode_items(tmp_path: pathlib.Path) -> None:
    f = tmp_path / "img.png"
    f.write_bytes(b"png")
    assert _outputs.encode_item(Path(f), str(tmp_path)) == ("file", str(f), "image/png")
    buf = io.BytesIO(b"data")
    kind, path, _mime = _outputs.encode_item(buf, str(tmp_path / "out"))
    assert kind == "file" and pathlib.Path(path).read_bytes() == b"data"
    assert _outputs.encode_item({"a": 1}, str(tmp_path)) == ("json", '{"a":1}')
    with pytest.raises(_outputs.OutputError, match="does not exist"):
        _outputs.encode_item(Path(tmp_path / "missing.txt"), str(tmp_path))
    assert _outputs.is_stream([1]) and _outputs.is_stream(x for x in [1])
    assert not _outputs.is_stream("abc") and not _outputs.is_stream({"a": 1})
