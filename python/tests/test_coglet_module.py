"""The `coglet` module as Cog's exposes it: `__build__`, a frozen `server`, `__all__`, the
`_sdk` writers, and the `Starting coglet server on HOST:PORT` line."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import FIXTURES
from server import Server

coglet = pytest.importorskip("coglet")


def test_all_lists_only_the_public_api() -> None:
    assert sorted(coglet.__all__) == ["CancelationException", "__build__", "__version__", "server"]
    # Importable, but private.
    assert hasattr(coglet, "_sdk") and hasattr(coglet, "_run_worker")


def test_build_info() -> None:
    build = coglet.__build__
    assert build.version == coglet.__version__
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", build.git_sha), build.git_sha
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", build.build_time), build.build_time
    assert build.rustc_version.startswith("rustc ") or build.rustc_version == "unknown"
    assert repr(build) == (
        f"BuildInfo(version='{build.version}', git_sha='{build.git_sha}', "
        f"build_time='{build.build_time}', rustc_version='{build.rustc_version}')"
    )
    with pytest.raises(AttributeError):
        build.version = "hacked"


def test_server_object_is_frozen() -> None:
    server = coglet.server
    assert repr(server) == "coglet.server"
    assert server.active is False  # not a worker process
    with pytest.raises(AttributeError):
        server.active = True
    with pytest.raises(AttributeError):
        server.anything = 1
    assert callable(server.serve) and callable(server._run_worker)


def test_sdk_writers_are_exposed() -> None:
    sdk = coglet._sdk
    assert sdk.SlotLogWriter is sdk._SlotLogWriter
    assert {"_SlotLogWriter", "_TeeWriter", "Scope", "MetricRecorder", "current_scope"} <= set(
        dir(sdk)
    )


def test_tee_writer_writes_to_both_streams() -> None:
    # Outside a prediction the slot writer passes writes on to the stream it replaced.
    original, user = io.StringIO(), io.StringIO()
    slot = coglet._sdk._SlotLogWriter("stdout", original)
    tee = coglet._sdk._TeeWriter(slot, user, "stdout")
    assert tee.write("héllo\n") == 6
    tee.writelines(["a", "b\n"])
    tee.flush()
    assert original.getvalue() == user.getvalue() == "héllo\nab\n"
    assert (tee.name, tee.inner, tee.user_stream) == ("stdout", slot, user)
    assert tee.encoding == user.encoding and tee.writable() and not tee.readable()
    with pytest.raises(TypeError, match="must be str"):
        tee.write(b"bytes")
    tee.close()
    assert tee.closed and not user.closed
    with pytest.raises(ValueError, match="closed"):
        tee.write("late")


def test_serve_logs_the_bound_address() -> None:
    # port=0: the OS picks the port, and the log line is how a caller learns it.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import coglet; coglet.server.serve('predict.py:Runner', host='127.0.0.1', port=0)",
        ],
        cwd=FIXTURES / "basic",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "server exited before announcing its address"
            found = re.search(r"Starting coglet server on 127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        assert port, "no 'Starting coglet server on' line"
        deadline = time.monotonic() + 30
        while True:
            health = requests.get(f"http://127.0.0.1:{port}/health-check", timeout=5).json()
            if health["status"] == "READY" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert health["status"] == "READY"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_a_replaced_stdout_is_teed_into_the_logs(tmp_path: Path) -> None:
    copy = tmp_path / "copy.log"
    s = Server(FIXTURES / "tee", env={"TEE_FILE": str(copy)})
    try:
        s.wait_for("READY")
        body = s.predict({"text": "hi"}).json()
        assert body["status"] == "succeeded", body
        # Inside the worker the user's stream is wrapped, and `server.active` is true.
        assert body["output"] == "_TeeWriter active=True"
        assert body["logs"] == "run says hi\n"
        assert copy.read_text() == "setup says hi\nrun says hi\n"
        # Wrapped from the moment setup() assigned it: setup's line reached the setup logs.
        assert "setup says hi" in s.health()["setup"]["logs"]
    finally:
        s.close()
