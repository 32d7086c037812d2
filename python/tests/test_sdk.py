"""Unit tests of the pure-Python `cog` SDK."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import re
import subprocess
import sys
import typing
import warnings
from pathlib import Path as StdPath

import pytest

import cog
from cog import (
    BaseModel,
    BasePredictor,
    BaseRunner,
    File,
    Input,
    Path,
    Secret,
    URLFile,
    URLPath,
    concurrent,
    streaming,
)
from cog.coder import Coder
from cog.errors import CogError, ConfigDoesNotExist, PredictorNotSet
from cog.input import FieldInfo
from cog.mode import Mode
from cog.predictor import load_predictor_from_ref
from cog.types import get_filename

REPO = StdPath(__file__).resolve().parents[2]


def test_version_is_the_workspace_version() -> None:
    cargo = (REPO / "Cargo.toml").read_text()
    workspace_version = re.search(r'\[workspace\.package\][^\[]*?version = "([^"]+)"', cargo)
    assert workspace_version is not None
    assert cog.__version__ == workspace_version.group(1)
    pyproject = (REPO / "python" / "pyproject.toml").read_text()
    assert f'version = "{cog.__version__}"' in pyproject


def test_public_api_matches_cog() -> None:
    assert cog.__all__ == [
        "__version__", "BaseRunner", "BasePredictor", "BaseModel", "Opaque", "Input",
        "FieldInfo", "Path", "Secret", "File", "URLFile", "URLPath", "ConcatenateIterator",
        "AsyncConcatenateIterator", "CancelationException", "current_scope", "streaming",
        "concurrent", "ExperimentalFeatureWarning", "emit_metric",
    ]  # fmt: skip
    assert issubclass(cog.CancelationException, BaseException)
    assert not issubclass(cog.CancelationException, Exception)


def test_legacy_imports_still_work() -> None:
    from cog import (  # noqa: F401
        AsyncConcatenateIterator,
        BaseModel,
        BasePredictor,
        ConcatenateIterator,
        File,
        Input,
        Path,
        Secret,
        current_scope,
    )


def test_deprecated_shims_print_once(capsys: pytest.CaptureFixture[str]) -> None:
    cog.__dict__.pop("ExperimentalFeatureWarning", None)
    cog.__dict__.pop("emit_metric", None)
    w = cog.ExperimentalFeatureWarning
    assert issubclass(w, FutureWarning)
    assert cog.ExperimentalFeatureWarning is w
    emit = cog.emit_metric
    emit("x", 1)  # a no-op outside a prediction
    assert cog.emit_metric is emit
    err = capsys.readouterr().err
    assert err.count("ExperimentalFeatureWarning is deprecated") == 1
    assert err.count("emit_metric() is deprecated") == 1
    with pytest.raises(AttributeError, match="module 'cog' has no attribute 'nope'"):
        cog.nope  # noqa: B018


# ---------------------------------------------------------------- Input / FieldInfo


def test_input_returns_frozen_fieldinfo() -> None:
    info = Input(default=5, description="n", ge=0, le=10)
    assert isinstance(info, FieldInfo)
    assert (info.default, info.description, info.ge, info.le) == (5, "n", 0, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.default = 6  # type: ignore[misc]
    assert Input().default is None
    full = Input(
        "a",
        min_length=1,
        max_length=3,
        regex=r"^\w+$",
        choices=["a", "b"],
        deprecated=True,
        accept="image/*",
    )
    assert full.choices == ["a", "b"] and full.accept == "image/*" and full.deprecated is True


def test_input_rejects_default_factory() -> None:
    with pytest.raises(TypeError, match="default_factory is not supported"):
        Input(default_factory=list)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ge": 10, "le": 1}, ValueError, "ge=10 greater than le=1"),
        ({"ge": "1"}, TypeError, "'ge' must be a number"),
        ({"min_length": -1}, ValueError, "'min_length' must be >= 0"),
        ({"min_length": 5, "max_length": 2}, ValueError, "min_length=5 greater than max_length=2"),
        ({"regex": "("}, ValueError, "'regex' is not a valid pattern"),
        ({"choices": []}, ValueError, "'choices' must not be empty"),
        ({"choices": "abc"}, TypeError, "'choices' must be a list"),
        ({"default": "z", "choices": ["a"]}, ValueError, "not one of the choices"),
        ({"deprecated": "yes"}, TypeError, "'deprecated' must be a bool"),
        ({"bogus": 1}, TypeError, "unexpected keyword argument"),
    ],
)
def test_input_checks(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Input(**kwargs)


# ---------------------------------------------------------------- BaseModel


def test_basemodel_is_a_dataclass() -> None:
    class Out(BaseModel):
        text: str
        score: float = 0.5

    assert dataclasses.is_dataclass(Out)
    assert Out("a") == Out(text="a", score=0.5)
    assert repr(Out("a")).endswith("Out(text='a', score=0.5)")


def test_basemodel_options() -> None:
    class Frozen(BaseModel, frozen=True):
        x: int

    with pytest.raises(dataclasses.FrozenInstanceError):
        Frozen(1).x = 2  # type: ignore[misc]

    class Manual(BaseModel, auto_dataclass=False):
        x: int = 1

    assert not dataclasses.is_dataclass(Manual)


def test_basemodel_rejects_foreign_bases() -> None:
    @dataclasses.dataclass
    class Other:
        y: int = 0

    # Cog's messages, word for word.
    with pytest.raises(
        TypeError, match=r'^Cannot mixin dataclass "Other" while inheriting from `BaseModel`$'
    ):

        class Mixed(BaseModel, Other):
            x: int = 1

    class Plain:
        pass

    with pytest.raises(
        TypeError, match=r'^Primary base class of "Wrong" must inherit from BaseModel$'
    ):

        class Wrong(Plain, BaseModel):
            x: int = 1

    # The primary-base rule holds with auto_dataclass=False too.
    with pytest.raises(TypeError, match="must inherit from BaseModel"):

        class WrongManual(Plain, BaseModel, auto_dataclass=False):
            pass


def test_basemodel_child_cannot_drop_auto_dataclass() -> None:
    class Parent(BaseModel):
        x: int

    # The child would inherit dataclass fields that its own __init__ never sets.
    with pytest.raises(ValueError) as raised:

        class Child(Parent, auto_dataclass=False):
            y: str

    assert str(raised.value) == (
        'Primary base class of "Child" ("Parent") has auto_dataclass=True, but "Child" has '
        "auto_dataclass=False. This creates broken field inheritance."
    )

    # Opting out at the top, then staying out, is fine; so is opting back in below.
    class Manual(BaseModel, auto_dataclass=False):
        def __init__(self, x: int) -> None:
            self.x = x

    class StillManual(Manual, auto_dataclass=False):
        pass

    class Auto(Manual):
        z: int = 0

    assert not dataclasses.is_dataclass(StillManual)
    assert StillManual(3).x == 3
    assert dataclasses.is_dataclass(Auto)


# ---------------------------------------------------------------- Secret, Path, File


def test_secret_masks() -> None:
    s = Secret("hunter2")
    assert str(s) == "**********"
    assert repr(s) == "Secret(**********)"
    assert s.get_secret_value() == "hunter2"
    assert "hunter2" not in f"{s} {s!r}"
    # No value: nothing to mask, so str() is empty (as Cog).
    empty = Secret()
    assert (str(empty), repr(empty), empty.get_secret_value()) == ("", "Secret()", None)
    assert str(Secret(None)) == ""


def test_legacy_weights_type() -> None:
    from cog.types import Weights

    # Cog <= 0.16's alias, still imported by models written for it.
    assert typing.get_args(Weights) == (File, Path, str)


def test_path_validate_local_and_url() -> None:
    p = Path.validate("/tmp/x.txt")
    assert type(p) is Path and str(p) == "/tmp/x.txt"
    u = Path.validate("https://example.com/a/b%20c.png?x=1")
    assert isinstance(u, URLPath) and isinstance(u, Path)
    assert u.filename == "b c.png"
    assert u.source == "https://example.com/a/b%20c.png?x=1"
    assert isinstance(Path.validate("data:text/plain;base64,aGk="), URLPath)


def test_filename_rules() -> None:
    assert get_filename("data:image/png;base64,AAAA") == "file.png"
    assert get_filename("data:application/x-unknown-thing,AAAA") == "file"
    long = "a" * 300 + ".jpeg"
    name = get_filename(f"https://x/{long}")
    assert len(name.encode()) <= 200 and name.endswith("~.jpeg")
    assert "\x00" not in get_filename("https://x/a%00b.txt")


def test_urlpath_downloads_data_url(tmp_path: StdPath) -> None:
    u = Path.validate("data:text/plain;base64,aGVsbG8=")
    assert isinstance(u, URLPath)
    local = u.convert(str(tmp_path))
    assert local.read_text() == "hello" and local.name.endswith("file.txt")
    assert u.convert() == local  # once
    u.unlink()
    assert not local.exists()


def test_urlpath_downloads_http(http_server, tmp_path: StdPath) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    recorder.files["/dir/weights.bin"] = b"\x00\x01payload"
    u = Path.validate(f"{base}/dir/weights.bin")
    assert isinstance(u, URLPath)
    assert u.convert(str(tmp_path)).read_bytes() == b"\x00\x01payload"
    assert recorder.requests[0]["headers"]["user-agent"].startswith("cog-worker/")
    missing = Path.validate(f"{base}/nope.bin")
    assert isinstance(missing, URLPath)
    with pytest.raises(Exception, match="404"):
        missing.convert(str(tmp_path))
    assert list(tmp_path.iterdir()) == [u.convert()]  # nothing half-written left behind


def test_urlpath_pickles() -> None:
    u = Path.validate("https://example.com/x.png")
    v = pickle.loads(pickle.dumps(u))
    assert isinstance(v, URLPath) and v.source == "https://example.com/x.png"


def test_file_validate(http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    recorder.files["/f.txt"] = b"remote"
    data = File.validate("data:text/plain;base64,aGk=")
    assert isinstance(data, io.BytesIO) and data.read() == b"hi"
    remote = File.validate(f"{base}/f.txt")
    assert isinstance(remote, URLFile) and remote.read() == b"remote"
    assert isinstance(pickle.loads(pickle.dumps(remote)), URLFile)
    with pytest.raises(ValueError, match="'ftp' is not a valid URL scheme"):
        File.validate("ftp://x/y")
    buf = io.BytesIO(b"x")
    assert File.validate(buf) is buf


# ---------------------------------------------------------------- decorators


def test_streaming_is_a_noop() -> None:
    def f() -> None: ...

    assert streaming(f) is f
    assert streaming()(f) is f


def test_concurrent() -> None:
    @concurrent
    def a() -> None: ...

    assert a.__cog_concurrent_max__ == 1

    @concurrent(max=4)
    async def b() -> None: ...

    assert b.__cog_concurrent_max__ == 4

    @concurrent(max=2)
    async def c():  # type: ignore[no-untyped-def]
        yield 1

    assert c.__cog_concurrent_max__ == 2
    with pytest.raises(TypeError, match="requires an async function"):
        concurrent(max=2)(lambda: None)
    with pytest.raises(ValueError, match="at least 1"):
        concurrent(max=0)
    for bad in (1.5, "2", True):
        with pytest.raises(TypeError, match="must be an integer"):
            concurrent(max=bad)  # type: ignore[arg-type]


def test_current_scope_outside_prediction_is_noop() -> None:
    scope = cog.current_scope()
    assert scope is not None
    scope.record_metric("a", 1)
    scope.metrics["b"] = 2
    del scope.metrics["b"]
    assert dict(scope.context) == {}


# ---------------------------------------------------------------- BaseRunner / loading


def test_base_runner_defaults() -> None:
    r = BaseRunner()
    assert r.setup() is None
    with pytest.raises(NotImplementedError, match="run has not been implemented"):
        r.run()

    class Legacy(BaseRunner):
        def predict(self, x: int) -> int:
            return x + 1

    assert Legacy().run(x=1) == 2


def test_predict_bridge_is_deprecated() -> None:
    class Modern(BaseRunner):
        def run(self, text: str) -> str:
            return text.upper()

    with pytest.warns(
        DeprecationWarning, match=r"^Modern\.predict\(\) is deprecated; use run\(\) instead$"
    ):
        assert Modern().predict("a") == "A"
    with pytest.warns(DeprecationWarning, match=r"BasePredictor\.predict\(\) is deprecated"):
        with pytest.raises(NotImplementedError):
            BasePredictor().predict()


def test_user_method_owner_is_found_once_per_class() -> None:
    class Left(BaseRunner):
        pass

    class Right(BaseRunner):
        def run(self) -> str:
            return "right"

    class Diamond(Left, Right):
        pass

    class Mixin:
        def predict(self) -> str:
            return "mixin"

    # A mixin listed after BaseRunner is not the user's method: Cog stops the search there.
    class AfterBase(BaseRunner, Mixin):
        pass

    class Legacy(BasePredictor):
        def predict(self) -> str:
            return "legacy"

    assert (Diamond._run_owner, Diamond._predict_owner) == (Right, None)
    assert Diamond().run() == "right"
    assert (AfterBase._run_owner, AfterBase._predict_owner) == (None, None)
    with pytest.raises(NotImplementedError, match="run has not been implemented"):
        AfterBase().run()
    assert (Legacy._run_owner, Legacy._predict_owner) == (None, Legacy)
    assert Legacy().run() == "legacy"
    assert BaseRunner._run_owner is None and BasePredictor._predict_owner is None


def _write(tmp_path: StdPath, source: str, name: str = "predict.py") -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


def test_load_runner_and_fallbacks(tmp_path: StdPath) -> None:
    ref = _write(
        tmp_path,
        "from cog import BaseRunner\n"
        "class Runner(BaseRunner):\n    def run(self) -> str:\n        return 'r'\n",
    )
    assert load_predictor_from_ref(ref).run() == "r"
    assert load_predictor_from_ref(ref + ":Runner").run() == "r"
    assert "predict" in sys.modules

    both = _write(
        tmp_path,
        "class Runner:\n    def run(self): return 1\n"
        "class Predictor:\n    def predict(self): return 2\n",
        "both.py",
    )
    with pytest.warns(UserWarning, match="Both Runner and Predictor are defined; using Runner"):
        assert load_predictor_from_ref(both).run() == 1

    legacy = _write(
        tmp_path,
        "from cog import BasePredictor\n"
        "class Predictor(BasePredictor):\n    def predict(self): return 2\n",
        "legacy.py",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_predictor_from_ref(legacy).predict() == 2
    messages = [str(w.message) for w in caught]
    assert "Predictor is deprecated; use Runner instead" in messages
    assert "Predictor.predict() is deprecated; use run() instead" in messages
    assert "BasePredictor is deprecated; use BaseRunner instead" in messages

    fn = _write(tmp_path, "def train(n: int) -> int:\n    return n\n", "fn.py")
    assert load_predictor_from_ref(fn + ":train")(3) == 3


@pytest.mark.parametrize(
    ("source", "error", "match"),
    [
        ("x = 1\n", AttributeError, "module 'bad' has no Runner or Predictor"),
        (
            "class Runner:\n    def run(self): pass\n    def predict(self): pass\n",
            ValueError,
            "Runner must define either run\\(\\) or predict\\(\\), not both",
        ),
        ("class Runner:\n    pass\n", ValueError, "run or predict method not found: Runner"),
        (
            "from cog import BaseRunner\nclass Runner(BaseRunner):\n    pass\n",
            ValueError,
            "run or predict method not found: Runner",
        ),
    ],
)
def test_load_errors(tmp_path: StdPath, source: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_predictor_from_ref(_write(tmp_path, source, "bad.py"))


def test_a_runner_that_is_not_one_falls_back_to_predictor(tmp_path: StdPath) -> None:
    predictor = (
        "from cog import BaseRunner\n"
        "class Predictor(BaseRunner):\n    def run(self) -> str:\n        return 'p'\n"
    )
    not_callable = _write(tmp_path, "Runner = 42\n" + predictor, "number.py")
    with pytest.warns(DeprecationWarning, match="Predictor is deprecated; use Runner instead"):
        assert load_predictor_from_ref(not_callable).run() == "p"

    invalid_class = _write(tmp_path, "class Runner:\n    pass\n" + predictor, "invalid.py")
    with pytest.warns(DeprecationWarning, match="Predictor is deprecated"):
        assert load_predictor_from_ref(invalid_class).run() == "p"

    # A callable Runner (a function) is a valid runner and wins.
    function = _write(tmp_path, "def Runner() -> str:\n    return 'f'\n" + predictor, "fn2.py")
    with pytest.warns(UserWarning, match="Both Runner and Predictor"):
        assert load_predictor_from_ref(function)() == "f"

    # Without a Predictor to fall back to, the Runner's problem is the error.
    alone = _write(tmp_path, "Runner = 42\n", "alone.py")
    with pytest.raises(TypeError, match=r"^Runner exists but is not a class or callable$"):
        load_predictor_from_ref(alone)


def test_load_missing_file(tmp_path: StdPath) -> None:
    with pytest.raises(FileNotFoundError, match="Cannot load module from"):
        load_predictor_from_ref(str(tmp_path / "missing.py") + ":Runner")


def test_non_base_runner_class_works(tmp_path: StdPath) -> None:
    ref = _write(
        tmp_path,
        "class Runner:\n    def setup(self): self.x = 1\n    def run(self): return self.x\n",
        "plain.py",
    )
    r = load_predictor_from_ref(ref)
    r.setup()
    assert r.run() == 1
    assert not isinstance(r, BasePredictor)


# ---------------------------------------------------------------- misc modules


def test_suppress_output_silences_fds_1_and_2() -> None:
    code = (
        "import os, subprocess, sys\n"
        "from cog.suppress_output import suppress_output\n"
        "print('before', flush=True)\n"
        "with suppress_output():\n"
        "    print('hidden-py')\n"
        "    os.write(2, b'hidden-fd\\n')\n"
        "    subprocess.run(['echo', 'hidden-child'])\n"
        "print('after', flush=True)\n"
        "os.write(2, b'err-after\\n')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "before\nafter\n"
    assert out.stderr == "err-after\n"


def test_wheel_declares_cogs_dependencies() -> None:
    from importlib import metadata

    try:
        requires = metadata.requires("cog")
    except metadata.PackageNotFoundError:
        pytest.skip("cog is not installed as a wheel")
    names = sorted(
        re.split(r"[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-")
        for r in requires or []
        if "extra ==" not in r
    )
    # Cog's `cog` wheel brings these; models use e.g. `requests` without declaring it.
    assert names == ["coglet", "pyyaml", "requests", "structlog", "typing-extensions"]


def test_errors_mode_coder() -> None:
    assert issubclass(ConfigDoesNotExist, CogError) and issubclass(PredictorNotSet, CogError)
    assert Mode("train") is Mode.TRAIN and str(Mode.PREDICT) == "predict"

    class IntCoder(Coder):
        @staticmethod
        def factory(tpe):  # type: ignore[no-untyped-def]
            return IntCoder() if tpe is complex else None

        def encode(self, x):  # type: ignore[no-untyped-def]
            return {"re": x.real, "im": x.imag}

        def decode(self, x):  # type: ignore[no-untyped-def]
            return complex(x["re"], x["im"])

    Coder.register(IntCoder)
    coder = Coder.lookup(complex)
    assert coder is not None and coder.decode(coder.encode(1 + 2j)) == 1 + 2j
    assert Coder.lookup(str) is None


# ---------------------------------------------------------------- launcher


def _launcher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COG_")}
    return subprocess.run(
        [sys.executable, "-m", "cog.server.http", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, **(env or {})},
    )


def test_launcher_version() -> None:
    pytest.importorskip("coglet")
    out = _launcher("-v")
    assert out.returncode == 0
    assert re.fullmatch(r"coglet \(Rust\) \d+\.\d+\.\d+\S*\n", out.stdout)


def test_launcher_without_runner_ref_exits_1() -> None:
    pytest.importorskip("coglet")
    out = _launcher()
    assert out.returncode == 1
    assert out.stderr.startswith("ERROR: COG_PREDICT_TYPE_STUB environment variable is not set.\n")
    out = _launcher("--x-mode", "train")
    assert (
        out.returncode == 1 and "COG_TRAIN_TYPE_STUB environment variable is not set" in out.stderr
    )


def test_launcher_rejects_bad_flags() -> None:
    out = _launcher("--x-mode", "serve")
    # --x-mode parses into cog.mode.Mode, as Cog's (which exposes it as cog.server.http.Mode).
    assert out.returncode == 2 and "invalid Mode value: 'serve'" in out.stderr
    from cog.server import http

    assert http.Mode is Mode and http._parser().parse_args(["--x-mode", "train"]).mode is Mode.TRAIN
    out = _launcher("--threads", "4", "-v")  # accepted and ignored
    assert out.returncode in (0, 1)
