"""The coglet worker (PyO3 bridge + coglet._worker) driven directly over its IPC.

`ipc_parent.WorkerProcess` plays the server's part, so these tests pin the worker's behaviour
(coercion, encoding, logs, metrics, cancellation, setup, healthcheck) without the HTTP layer.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("coglet")

from conftest import FIXTURES
from ipc_parent import WorkerProcess


@pytest.fixture
def spawn() -> Iterator:  # type: ignore[type-arg]
    workers: list[WorkerProcess] = []

    def start(name: str, ready: bool = True, **kw: object) -> WorkerProcess:
        w = WorkerProcess(FIXTURES / name, **kw)  # type: ignore[arg-type]
        workers.append(w)
        if ready:
            msg = w.wait_ready()
            assert msg["type"] == "ready", msg
        return w

    yield start
    for w in workers:
        w.close()


def terminal(events: list[dict]) -> dict:
    return events[-1]


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def logs(events: list[dict]) -> str:
    return "".join(e["data"] for e in of_type(events, "log"))


# ---------------------------------------------------------------- basics


def test_ready_reports_versions_and_setup_logs(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("basic", ready=False)
    ready = w.wait_ready()
    assert ready["versions"]["python_sdk"] == "0.1.0"
    assert ready["versions"]["python"].count(".") == 2
    assert any(e["data"] == "setting up basic\n" for e in w.logs)


def test_sync_prediction_logs_metrics_context(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("basic")
    events = w.predict({"text": "bob", "count": 2}, context={"token": "t1"})
    done = terminal(events)
    assert done["type"] == "done"
    assert done["output"] == {"kind": "json", "value": "hello bob hello bob"}
    assert done["predict_time"] > 0
    assert not done.get("is_stream")
    assert of_type(events, "log") == [
        {"type": "log", "source": "stdout", "data": "greeting bob\n"},
        {"type": "log", "source": "stderr", "data": "to stderr\n"},
        {"type": "log", "source": "stdout", "data": "context token=t1\n"},
    ]
    metrics = [(m["name"], m["value"], m["mode"]) for m in of_type(events, "metric")]
    assert metrics == [
        ("count", 2, "replace"),
        ("tokens", 1, "increment"),
        ("tokens", 2, "increment"),
        ("timing.inner", 0.5, "replace"),
        ("seen", "a", "append"),
        ("seen", "b", "append"),
    ]
    # The context belongs to one prediction only.
    again = w.predict({"text": "al"})
    assert "context token" not in logs(again)


def test_defaults_and_unknown_inputs(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("basic")
    events = w.predict({"text": "x", "extra": 1})
    assert terminal(events)["output"]["value"] == "hello x"
    assert "ignoring unknown input(s): extra" in logs(events)
    missing = terminal(w.predict({}))
    assert missing["type"] == "invalid_input" and "text" in missing["error"]


@pytest.mark.parametrize("op,expect", [
    # Name errors: ValueError with Cog's messages; value and mode errors: TypeError, as Cog.
    ("bad_name", "ValueError: metric name segment '1abc' must start with a letter"),
    ("reserved", "ValueError: 'predict_time' is reserved by the runtime"),
    ("cog_prefix", "ValueError: the 'cog.' prefix is reserved for system metrics"),
    ("double_underscore", "ValueError: metric name segment 'foo__bar' must not contain consecutive underscores"),
    ("leading_dot", "ValueError: metric name must not start with a dot"),
    ("empty_segment", "ValueError: metric name must not contain empty segments (consecutive dots)"),
    ("too_long", "ValueError: metric name must be 128 characters or fewer (got 129 characters)"),
    ("delete_reserved", "ok"),
    ("type_change", "TypeError: metric 'a' already holds a int value"),
    ("delete_then_change", "ok"),
    ("bad_mode", "TypeError: invalid metric mode 'multiply'"),
    ("bad_value", "TypeError: metric 'a': a value of type object is not allowed"),
    ("incr_str", "TypeError: metric 'a': mode 'incr' needs a number"),
    ("none_deletes", "ok"),
    ("too_deep", "ValueError: metric name must have at most 4 dot-separated segments (got 5)"),
])  # fmt: skip
def test_metric_rules(spawn, op: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    w = spawn("metrics")
    out = terminal(w.predict({"op": op}))["output"]["value"]
    assert out.startswith(expect), out


# ---------------------------------------------------------------- inputs


def test_input_coercion(spawn, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    recorder.files["/in/hello.txt"] = b"from http"
    recorder.files["/in/two.txt"] = b"second"
    w = spawn("inputs")
    data_url = "data:text/plain;base64," + base64.b64encode(b"from data").decode()
    events = w.predict({
        "s": "str", "i": 3, "f": 2, "b": True, "choice": "b",
        "p": f"{base}/in/hello.txt", "paths": [data_url, f"{base}/in/two.txt"],
        "fi": data_url, "secret": "pw", "ints": [5], "opt": None, "obj": {"k": [1]},
        "url_str": "https://example.com/x.png",
    })  # fmt: skip
    done = terminal(events)
    assert done["type"] == "done", events
    out = done["output"]["value"]
    assert out["s"] == ["str", "str"]
    assert out["i"] == ["int", 3]
    assert out["f"] == ["float", 2.0]  # ints are accepted for float inputs
    assert out["b"] == ["bool", True]
    assert out["choice"] == "b" and out["ints"] == [5] and out["opt"] is None
    assert out["obj"] == {"k": [1]}
    assert out["url_str"] == ["str", "https://example.com/x.png"]  # str is never coerced
    assert out["secret"] == ["Secret", "**********", "pw"]
    assert out["p"] == [True, True, "from http", True]
    assert out["paths"] == ["from data", "second"]
    assert out["fi"] == "from data"


def test_downloaded_inputs_are_deleted_after_the_prediction(spawn, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    recorder.files["/in/a.txt"] = b"A"
    w = spawn("inputs")
    # The runner keeps the path; print it via a second call's input instead of reaching in.
    events = w.predict({"p": f"{base}/in/a.txt"})
    assert terminal(events)["type"] == "done"
    tmp_files = [p for p in Path("/tmp").glob("tmp*a.txt") if p.stat().st_mtime > time.time() - 5]
    assert tmp_files == []


def test_failed_download_is_invalid_input(spawn, http_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = http_server
    w = spawn("inputs")
    done = terminal(w.predict({"p": f"{base}/missing.txt"}))
    assert done["type"] == "invalid_input"
    assert done["error"].startswith("Input validation error: failed to download")
    assert "404" in done["error"]


def test_async_runner_downloads_without_blocking_other_slots(spawn, http_server) -> None:  # type: ignore[no-untyped-def]
    """URL inputs of an async runner download off its event loop: a slow download on one
    slot does not hold up a prediction on another."""
    base, recorder = http_server
    recorder.files["/in/slow.txt"] = b"from slow"
    w = spawn("async_download", num_slots=2)
    started = time.monotonic()
    w.start_predict(0, "slow", {"p": f"{base}/in/slow.txt?delay=1", "tag": "a"})
    time.sleep(0.05)
    w.start_predict(1, "quick", {"tag": "b"})
    quick = terminal(w.read_until_terminal(1))
    quick_took = time.monotonic() - started
    assert quick["output"]["value"] == "b:", quick
    assert quick_took < 0.7, f"the quick prediction waited for the download: {quick_took:.2f}s"
    slow = terminal(w.read_until_terminal(0))
    assert slow["output"]["value"] == "a:from slow", slow
    # A failed download is the prediction's input error, as with sync runners.
    w.start_predict(0, "missing", {"p": f"{base}/missing.txt"})
    done = terminal(w.read_until_terminal(0))
    assert done["type"] == "invalid_input", done
    assert done["error"].startswith("Input validation error: failed to download"), done


# ---------------------------------------------------------------- outputs


def _data(path: str) -> bytes:
    return Path(path).read_bytes()


@pytest.mark.parametrize("kind,value", [
    ("str", "hi"), ("int", 42), ("float", 1.25), ("bool", True),
    ("dict", {"a": 1, "nested": {"b": [1, 2]}}),
    ("dataclass", {"a": 1, "b": ["red"]}), ("enum", "red"),
    ("datetime", "2024-01-02T03:04:05"),
])  # fmt: skip
def test_json_outputs(spawn, kind: str, value: object) -> None:  # type: ignore[no-untyped-def]
    w = spawn("outputs")
    done = terminal(w.predict({"kind": kind}))
    assert done["type"] == "done" and not done.get("is_stream")
    assert done["output"] == {"kind": "json", "value": value}


def test_none_output(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("outputs")
    done = terminal(w.predict({"kind": "none"}))
    assert done["type"] == "done" and "output" not in done


@pytest.mark.parametrize("kind,items", [
    ("list", [1, "two", 3.0]), ("tuple", [1, 2]),
])  # fmt: skip
def test_list_outputs_stream_items(spawn, kind: str, items: list) -> None:  # type: ignore[no-untyped-def]
    w = spawn("outputs")
    events = w.predict({"kind": kind})
    assert [e["output"]["value"] for e in of_type(events, "output")] == items
    assert terminal(events)["is_stream"] is True


def test_set_output_is_a_list(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("outputs")
    assert terminal(w.predict({"kind": "set"}))["output"]["value"] == [7]


def test_file_outputs(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("outputs")
    single = terminal(w.predict({"kind": "path"}))["output"]
    assert single["kind"] == "file" and single["mime_type"] == "text/plain"
    assert _data(single["path"]) == b"file content"

    events = w.predict({"kind": "paths"})
    files = [e["output"] for e in of_type(events, "output")]
    assert [f["kind"] for f in files] == ["file", "file"]
    assert [_data(f["path"]) for f in files] == [b"A", b"B"]
    assert files[1]["mime_type"] == "image/png"
    assert terminal(events)["is_stream"] is True

    one = w.predict({"kind": "one_path_list"})
    assert len(of_type(one, "output")) == 1 and terminal(one)["is_stream"] is True

    pid = "io1"
    out_dir = w.start_predict(0, pid, {"kind": "iobase"})
    io_out = terminal(w.read_until_terminal(0))["output"]
    assert io_out["kind"] == "file" and Path(io_out["path"]).parent == out_dir
    assert _data(io_out["path"]) == b"bytes content"


def test_nested_files_are_data_urls(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("outputs")
    model = terminal(w.predict({"kind": "model"}))["output"]["value"]
    assert model["text"] == "t" and model["score"] == 0.5
    assert model["file"] == "data:text/plain;base64," + base64.b64encode(b"model file").decode()
    nested = terminal(w.predict({"kind": "nested_path"}))["output"]["value"]
    assert nested["file"].startswith("data:text/plain;base64,")


def test_pydantic_output(spawn) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pydantic")
    w = spawn("outputs")
    assert terminal(w.predict({"kind": "pydantic"}))["output"]["value"] == {"x": 3}


def test_runner_error_fails_only_its_prediction(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("outputs")
    events = w.predict({"kind": "unknown"})
    done = terminal(events)
    assert done == {"type": "failed", "id": done["id"], "error": "unknown kind unknown"}
    assert "Traceback" in logs(events) and "ValueError: unknown kind unknown" in logs(events)
    assert terminal(w.predict({"kind": "str"}))["output"]["value"] == "hi"


@pytest.mark.parametrize("kind,error", [
    ("raise", "user error here"), ("exit", "SystemExit: 3"), ("keyboard", "KeyboardInterrupt"),
])  # fmt: skip
def test_exceptions_and_exit_fail_the_prediction(spawn, kind: str, error: str) -> None:  # type: ignore[no-untyped-def]
    w = spawn("crash")
    assert terminal(w.predict({"kind": kind}))["error"] == error
    assert terminal(w.predict({"kind": "ok"}))["type"] == "done"


# ---------------------------------------------------------------- streaming


def test_sync_generator_streams(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("stream")
    events = w.predict({"n": 3})
    assert [e["output"]["value"] for e in of_type(events, "output")] == ["tok0 ", "tok1 ", "tok2 "]
    assert terminal(events)["is_stream"] is True
    # logs and outputs interleave in order
    kinds = [e["type"] for e in events[:-1]]
    assert kinds == ["log", "output"] * 3
    files = w.predict({"n": 2, "files": True})
    assert [e["output"]["kind"] for e in of_type(files, "output")] == ["file", "file"]


def test_async_generator_with_async_setup_and_weights(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("async_setup", weights="/weights/here")
    events = w.predict({"n": 2})
    assert [e["output"]["value"] for e in of_type(events, "output")] == [
        "0:/weights/here",
        "1:/weights/here",
    ]


def test_setup_weights_from_env(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("setup_slow", env={"SETUP_SECONDS": "0", "COG_WEIGHTS": "https://w/x"})
    assert terminal(w.predict({}))["output"]["value"] == "weights=https://w/x"


def test_legacy_predictor_and_function_runner(spawn) -> None:  # type: ignore[no-untyped-def]
    legacy = spawn("legacy", ref="predict.py:Predictor")
    events = legacy.predict({"n": 2})
    assert [e["output"]["value"] for e in of_type(events, "output")] == ["legacy0", "legacy1"]
    fn = spawn("function_runner", ref="predict.py:run")
    assert terminal(fn.predict({}))["output"]["value"] == "hi world"
    assert terminal(fn.predict({"name": "x"}))["output"]["value"] == "hi x"


def test_train_mode(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("train", ref="predict.py:train", is_train=True)
    assert terminal(w.predict({"steps": 3}))["output"]["value"] == {"weights": "trained 3"}


# ---------------------------------------------------------------- setup failure


def test_setup_failure(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("setup_fail", ready=False)
    msg = w.wait_ready()
    assert msg["type"] == "setup_failed"
    assert msg["error"] == "setup failed: setup exploded"
    text = "".join(e["data"] for e in w.logs)
    assert "about to fail" in text and "RuntimeError: setup exploded" in text
    assert w.proc.wait(timeout=10) == 1


def test_bad_ref_is_a_setup_failure(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("basic", ready=False, ref="predict.py:Nope")
    msg = w.wait_ready()
    assert msg["type"] == "setup_failed" and "Nope" in msg["error"]


# ---------------------------------------------------------------- cancellation


def _cancel_after(w: WorkerProcess, pid: str, delay: float) -> float:
    time.sleep(delay)
    started = time.monotonic()
    w.cancel(0, pid)
    return started


@pytest.mark.parametrize("busy", [False, True])
def test_cancel_sync_runner_promptly(spawn, tmp_path: Path, busy: bool) -> None:  # type: ignore[no-untyped-def]
    w = spawn("sleep")
    marker = tmp_path / "marker"
    w.start_predict(0, "c1", {"seconds": 3, "busy": busy, "marker": str(marker)})
    started = _cancel_after(w, "c1", 0.3)
    events = w.read_until_terminal(0)
    elapsed = time.monotonic() - started
    assert terminal(events) == {"type": "cancelled", "id": "c1"}
    assert elapsed < 0.2, f"cancel took {elapsed:.3f}s"
    assert marker.read_text() == "canceled"  # the runner saw CancelationException
    # The worker is healthy afterwards, and a stale cancel does not hit the next prediction.
    w.cancel(0, "c1")
    assert terminal(w.predict({"seconds": 0.2}))["type"] == "done"


def test_cancel_other_id_is_ignored(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("sleep")
    w.start_predict(0, "keep", {"seconds": 0.5})
    time.sleep(0.1)
    w.cancel(0, "someone-else")
    assert terminal(w.read_until_terminal(0))["type"] == "done"


def test_cancel_async_runner(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("async_concurrent", num_slots=2)
    w.start_predict(0, "a1", {"seconds": 5})
    w.start_predict(1, "a2", {"seconds": 0.3, "tag": "b"})
    started = _cancel_after(w, "a1", 0.1)
    first = terminal(w.read_until_terminal(0))
    assert first == {"type": "cancelled", "id": "a1"}
    assert time.monotonic() - started < 0.2
    assert terminal(w.read_until_terminal(1))["output"]["value"].startswith("b:")


def test_eight_concurrent_async_predictions(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("async_concurrent", num_slots=8)
    started = time.monotonic()
    for slot in range(8):
        w.start_predict(
            slot, f"c{slot}", {"seconds": 0.5, "tag": f"t{slot}"}, context={"who": f"w{slot}"}
        )
    results = {}

    def read(slot: int) -> None:
        results[slot] = w.read_until_terminal(slot)

    threads = [threading.Thread(target=read, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"8 x 0.5 s took {elapsed:.2f}s: not concurrent"
    for slot, events in results.items():
        done = terminal(events)
        tag, who, _peak = done["output"]["value"].split(":")
        assert (tag, who) == (f"t{slot}", f"w{slot}")  # context and logs stay per prediction
        assert logs(events) == f"start t{slot}\nend t{slot}\n"
        assert of_type(events, "metric")[0]["value"] == 2
    assert max(int(terminal(e)["output"]["value"].split("peak=")[1]) for e in results.values()) == 8


# ---------------------------------------------------------------- healthcheck


@pytest.mark.parametrize("mode,status,error", [
    ("ok", "healthy", None),
    # Cog's wording, word for word.
    ("false", "unhealthy", "Healthcheck failed: user-defined healthcheck returned False"),
    ("raise", "unhealthy", "Healthcheck failed: RuntimeError: sick"),
])  # fmt: skip
def test_healthcheck(spawn, tmp_path: Path, mode: str, status: str, error: str | None) -> None:  # type: ignore[no-untyped-def]
    health = tmp_path / "health"
    health.write_text(mode)
    w = spawn("healthcheck", env={"HEALTH_FILE": str(health)})
    w.send_control({"type": "healthcheck", "id": "h1"})
    msg = w.next_control()
    assert msg is not None and msg["type"] == "healthcheck_result"
    assert msg["status"] == status and msg.get("error") == error


def test_healthcheck_times_out_after_5s(spawn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    health = tmp_path / "health"
    health.write_text("slow")
    w = spawn("healthcheck", env={"HEALTH_FILE": str(health)})
    started = time.monotonic()
    w.send_control({"type": "healthcheck", "id": "h2"})
    msg = w.next_control()
    assert msg is not None and msg["status"] == "unhealthy"
    assert (
        msg["error"] == "Healthcheck failed: user-defined healthcheck timed out after 5.0 seconds"
    )
    assert 4.5 < time.monotonic() - started < 6.5


def test_shutdown_exits_cleanly(spawn) -> None:  # type: ignore[no-untyped-def]
    w = spawn("basic")
    w.send_control({"type": "shutdown"})
    assert w.next_control() == {"type": "shutting_down"}
    assert w.proc.wait(timeout=10) == 0


def test_subprocess_output_does_not_corrupt_ipc(spawn) -> None:  # type: ignore[no-untyped-def]
    # The runner and its child processes write straight to fds 1 and 2, including bytes that
    # look like a frame header. The IPC stays intact: the fd output arrives as control `log`
    # messages (setup output first), and each prediction still ends with its `done`.
    w = spawn("noisy")
    setup_logs = "".join(e["data"] for e in w.logs)
    assert "setup-subprocess-out\n" in setup_logs and "setup-subprocess-err\n" in setup_logs
    assert "{not a frame}" in setup_logs
    for n in (1, 3):
        events = w.predict({"n": n})
        assert [e["type"] for e in events] == ["log", "done"], events
        assert events[0]["data"] == "via print\n"  # print() goes to the prediction's logs
        assert events[-1]["output"] == {"kind": "json", "value": f"survived {n}"}
    deadline = time.monotonic() + 5
    want = [f"child-{s}-{i}\n" for s in ("out", "err") for i in range(3)] + ["raw-fd2\n"]
    while time.monotonic() < deadline:
        fd_logs = [e["data"] for e in w.logs]
        if all(any(d.endswith(x) for d in fd_logs) for x in want):
            break
        time.sleep(0.05)
    fd_logs = [e["data"] for e in w.logs]
    assert all(any(d.endswith(x) for d in fd_logs) for x in want), fd_logs
