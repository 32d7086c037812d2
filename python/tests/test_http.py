"""`python -m cog.server.http` end to end: every route and behaviour of the reference's section 3.

Each test starts the real server (Rust coglet + Python worker) on a loopback port with a predictor
fixture from `fixtures/`, and talks HTTP to it. Webhooks and uploads go to loopback receivers.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import FIXTURES
from server import Server

import cog

coglet = pytest.importorskip("coglet")

AT_CAPACITY = {"error": "At capacity - all prediction slots busy", "status": "failed"}
NOT_READY = {
    "error": "Setup has not finished yet. Wait until it has finished, or GET /health-check for "
    "status.",
    "status": "failed",
}


@pytest.fixture
def start() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def run(fixture: str | Path, ready: bool = True, **kw: Any) -> Server:
        path = fixture if isinstance(fixture, Path) else FIXTURES / fixture
        s = Server(path, **kw)
        servers.append(s)
        if ready:
            s.wait_for("READY")
        return s

    yield run
    for s in servers:
        s.close()


def sse_events(response: requests.Response) -> list[tuple[str, Any]]:
    events = []
    event, data = None, []
    for raw in response.iter_lines(decode_unicode=True):
        if raw is None:
            continue
        if raw.startswith(":"):
            continue
        if raw == "":
            if event is not None or data:
                payload = "\n".join(data)
                events.append((event or "message", json.loads(payload) if payload else None))
            event, data = None, []
            continue
        field, _, value = raw.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    return events


# ---------------------------------------------------------------- discovery, health, schema


def test_root_health_and_schema(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic")
    root = s.get("/").json()
    assert root["cog_version"] == cog.__version__
    for key, value in {
        "docs_url": "/docs",
        "openapi_url": "/openapi.json",
        "shutdown_url": "/shutdown",
        "healthcheck_url": "/health-check",
        "predictions_url": "/predictions",
        "predictions_idempotent_url": "/predictions/{prediction_id}",
        "predictions_cancel_url": "/predictions/{prediction_id}/cancel",
    }.items():
        assert root[key] == value
    assert "trainings_url" not in root

    health = s.health()
    assert health["status"] == "READY"
    assert health["setup"]["status"] == "succeeded"
    assert "setting up basic" in health["setup"]["logs"]
    assert health["setup"]["started_at"] and health["setup"]["completed_at"]
    assert health["version"]["coglet"] == coglet.__version__
    assert health["version"]["python_sdk"] == cog.__version__
    assert health["version"]["python"].count(".") == 2

    schema = json.loads((FIXTURES / "basic" / ".cog" / "openapi_schema.json").read_text())
    assert s.get("/openapi.json").json() == schema


def test_no_schema_means_no_validation(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shutil.copy(FIXTURES / "basic" / "predict.py", tmp_path / "predict.py")
    s = start(tmp_path)
    r = s.get("/openapi.json")
    assert r.status_code == 503 and r.json() == {"error": "OpenAPI schema not available"}
    # Unvalidated: a wrong type reaches the runner, which handles it.
    assert s.predict({"text": "x", "count": 2}).json()["output"] == "hello x hello x"


def test_health_only_mode_without_runner(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic", ready=False, ref=None)
    # The launcher refuses to start without a runner ref, like Cog's.
    assert s.proc.wait(timeout=10) == 1
    assert "ERROR: COG_PREDICT_TYPE_STUB environment variable is not set." in s.logs()


# ---------------------------------------------------------------- sync predictions


def test_sync_prediction(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic")
    r = s.predict({"text": "bob", "count": 2}, context={"token": "t1"}, id="fixed-id")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "fixed-id"
    assert body["status"] == "succeeded"
    assert body["output"] == "hello bob hello bob"
    assert body["logs"] == "greeting bob\nto stderr\ncontext token=t1\n"
    metrics = body["metrics"]
    assert metrics["count"] == 2 and metrics["tokens"] == 3
    assert metrics["timing"] == {"inner": 0.5} and metrics["seen"] == ["a", "b"]
    assert isinstance(metrics["predict_time"], float) and metrics["predict_time"] > 0
    # Cog 0.22's sync responses leave these out.
    for key in ("input", "created_at", "started_at", "completed_at", "version"):
        assert key not in body


def test_generated_ids_and_empty_input(start) -> None:  # type: ignore[no-untyped-def]
    s = start("function_runner", ref="predict.py:run")
    body = s.post("/predictions", json={}).json()
    assert body["output"] == "hi world" and body["id"].startswith("pred_")
    # No body and no content type: treated as {} input.
    assert s.post("/predictions").json()["output"] == "hi world"
    assert s.predict({"name": "x"}, input_file_prefix="ignored").json()["output"] == "hi x"


def test_validation_errors(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic")
    r = s.predict({})
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {
                "loc": ["body", "input", "text"],
                "msg": "Field required",
                "type": "value_error.missing",
            }
        ]
    }
    r = s.predict({"text": "x", "count": 11})
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "input", "count"] and detail["type"] == "value_error"
    r = s.predict({"text": 5})
    assert r.status_code == 422
    # Unknown keys are stripped, not rejected.
    assert s.predict({"text": "x", "bogus": 1}).json()["output"] == "hello x"


def test_runner_error_is_200_failed(start) -> None:  # type: ignore[no-untyped-def]
    s = start("crash")
    r = s.predict({"kind": "raise"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "failed" and body["error"] == "user error here"
    assert "ValueError: user error here" in body["logs"]
    assert s.predict({"kind": "ok"}).json()["status"] == "succeeded"


def test_sys_exit_fails_only_its_prediction(start) -> None:  # type: ignore[no-untyped-def]
    s = start("crash")
    first = s.predict({"kind": "ok"}).json()["output"]
    body = s.predict({"kind": "exit"}).json()
    assert body["status"] == "failed" and body["error"] == "SystemExit: 3"
    assert s.predict({"kind": "ok"}).json()["output"] == first  # same worker


@pytest.mark.parametrize("kind", ["segfault", "os_exit"])
def test_worker_crash_fails_the_prediction_and_recovers(start, kind: str) -> None:  # type: ignore[no-untyped-def]
    s = start("crash")
    before = s.predict({"kind": "ok"}).json()["output"]
    r = s.predict({"kind": kind})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "failed"
    reason = "killed by signal 11 (SIGSEGV)" if kind == "segfault" else "exited with code 1"
    assert body["error"] == f"Prediction failed: worker process {reason}", body
    # Reported in /health-check (while restarting and after), then a fresh worker serves.
    health = s.wait_for("READY", timeout=60)
    assert health["setup"]["logs"].startswith(f"Previous worker process {reason}; restarting")
    after = s.predict({"kind": "ok"})
    assert after.status_code == 200 and after.json()["status"] == "succeeded"
    assert after.json()["output"] != before  # another worker process (pid)


def test_worker_side_input_error_is_422(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, _ = http_server
    s = start("inputs")
    r = s.predict({"p": f"{base}/missing.txt"})
    assert r.status_code == 422
    body = r.json()
    assert body["status"] == "failed"
    assert body["error"].startswith("Input validation error: failed to download")


def test_inputs_of_every_type(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    recorder.files["/a.txt"] = b"from http"
    s = start("inputs")
    data = "data:text/plain;base64," + base64.b64encode(b"from data").decode()
    body = s.predict(
        {"s": "v", "i": 2, "f": 0.5, "b": True, "choice": "b", "p": f"{base}/a.txt",
         "paths": [data], "fi": data, "secret": "pw", "ints": [3], "obj": {"a": 1}}
    ).json()  # fmt: skip
    assert body["status"] == "succeeded", body
    out = body["output"]
    assert out["p"] == [True, True, "from http", True]
    assert out["paths"] == ["from data"] and out["fi"] == "from data"
    assert out["secret"] == ["Secret", "**********", "pw"]
    assert out["i"] == ["int", 2] and out["f"] == ["float", 0.5] and out["obj"] == {"a": 1}
    r = s.predict({"choice": "c"})
    assert r.status_code == 422


# ---------------------------------------------------------------- outputs


@pytest.mark.parametrize("kind,expected", [
    ("str", "hi"), ("int", 42), ("dict", {"a": 1, "nested": {"b": [1, 2]}}),
    ("list", [1, "two", 3.0]), ("none", None), ("enum", "red"),
    ("path", "data:text/plain;base64," + base64.b64encode(b"file content").decode()),
    ("one_path_list", ["data:text/plain;base64," + base64.b64encode(b"only").decode()]),
])  # fmt: skip
def test_outputs(start, kind: str, expected: Any) -> None:  # type: ignore[no-untyped-def]
    s = start("outputs")
    body = s.predict({"kind": kind}).json()
    assert body["status"] == "succeeded", body
    assert body.get("output") == expected


def test_large_inputs_and_outputs_spill(start) -> None:  # type: ignore[no-untyped-def]
    s = start("outputs")
    body = s.predict({"kind": "big"}).json()
    assert body["status"] == "succeeded" and body["output"] == "x" * 7_000_000
    body = s.predict({"kind": "big_stream"}).json()
    assert body["output"] == ["y" * 7_000_000, "z"]
    b = start("basic")
    text = "t" * 7_000_000
    assert b.predict({"text": text}).json()["output"] == f"hello {text}"


def test_upload_url(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    s = start("outputs", args=("--upload-url", f"{base}/upload/"))
    body = s.predict({"kind": "paths"}).json()
    assert body["status"] == "succeeded", body
    assert body["output"] == [f"{base}/stored/upload/a.txt", f"{base}/stored/upload/b.png"]
    puts = [r for r in recorder.requests if r["method"] == "PUT"]
    assert sorted((p["path"], p["body"]) for p in puts) == [
        ("/upload/a.txt", b"A"),
        ("/upload/b.png", b"B"),
    ]
    assert {p["headers"]["Content-Type"] for p in puts} == {"text/plain", "image/png"}


def _data(text: str, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(text.encode()).decode()


def test_returning_an_input_path_keeps_the_file_until_the_output_is_encoded(start) -> None:  # type: ignore[no-untyped-def]
    # The downloaded input file is the output: it must outlive run() until the parent has
    # read it (bug: `succeeded` with `output: null`, the temp file already deleted).
    s = start("pathout")
    body = s.predict({"kind": "same", "image": _data("pixels")}).json()
    assert body["status"] == "succeeded", body
    assert body["output"] == _data("pixels")
    body = s.predict({"kind": "list", "images": [_data("one"), _data("two", "text/plain")]})
    body = body.json()
    assert body["status"] == "succeeded", body
    assert body["output"] == [_data("one"), _data("two", "text/plain")]
    # The same input twice, and an iterator of inputs (each item resolved as it is yielded).
    body = s.predict({"kind": "stream", "images": [_data("a"), _data("b"), _data("a")]}).json()
    assert body["status"] == "succeeded", body
    assert body["output"] == [_data("a"), _data("b"), _data("a")]
    body = s.predict({"kind": "nested", "image": _data("deep")}).json()
    assert body["status"] == "succeeded", body
    assert body["output"] == {"image": _data("deep")}


def test_returning_an_input_path_with_upload_url(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    s = start("pathout", args=("--upload-url", f"{base}/upload/"))
    body = s.predict({"kind": "list", "images": [_data("one"), _data("two")]}).json()
    assert body["status"] == "succeeded", body
    assert len(body["output"]) == 2
    puts = [r for r in recorder.requests if r["method"] == "PUT"]
    assert sorted(p["body"] for p in puts) == [b"one", b"two"]
    assert all(p["path"].endswith(".png") for p in puts)


def test_downloaded_inputs_are_removed_after_the_prediction(start) -> None:  # type: ignore[no-untyped-def]
    s = start("pathout")
    body = s.predict({"kind": "where", "image": _data("x")}).json()
    assert body["status"] == "succeeded", body
    local = Path(body["output"])
    assert local.name.endswith(".png"), local
    deadline = time.monotonic() + 5
    while local.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not local.exists(), f"{local} still exists after the prediction"
    # A failed download leaves nothing behind either, and is a 422 naming the URL.
    r = s.predict({"kind": "same", "image": "data:image/png;base64,!!notbase64"})
    assert r.status_code == 422, r.text


def test_an_output_file_that_cannot_be_read_fails_the_prediction(start) -> None:  # type: ignore[no-untyped-def]
    s = start("pathout")
    r = s.predict({"kind": "deleted"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "failed", body
    assert body.get("output") is None
    assert "-gone.png" in body["error"] and "does not exist" in body["error"], body


# ---------------------------------------------------------------- async, webhooks


def test_async_prediction_with_webhooks(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    s = start("stream", env={"WEBHOOK_AUTH_TOKEN": "tok", "COG_THROTTLE_RESPONSE_INTERVAL": "0"})
    r = s.post(
        "/predictions",
        json={"id": "w1", "input": {"n": 2}, "webhook": f"{base}/hook"},
        headers={"Prefer": "respond-async", "traceparent": "00-abc-def-01"},
    )
    assert r.status_code == 202
    assert r.json()["id"] == "w1" and r.json()["status"] == "starting"
    hooks = recorder.wait_for(lambda rs: any(x["json"]["status"] == "succeeded" for x in rs))
    payloads = [h["json"] for h in hooks]
    assert payloads[0]["status"] == "processing"
    final = payloads[-1]
    assert final["status"] == "succeeded" and final["output"] == ["tok0 ", "tok1 "]
    assert final["logs"] == "yielding 0\nyielding 1\n"
    assert "predict_time" in final["metrics"] and "input" not in final
    assert all("predict_time" not in p.get("metrics", {}) for p in payloads[:-1])
    headers = hooks[-1]["headers"]
    assert headers["Authorization"] == "Bearer tok"
    assert headers["User-Agent"] == f"coglet/{coglet.__version__}"
    assert headers.get("traceparent") == "00-abc-def-01"


def test_webhook_events_filter_and_retries(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    recorder.statuses = [500, 503]  # the terminal webhook fails twice, then succeeds
    s = start("basic")
    r = s.post(
        "/predictions",
        json={
            "input": {"text": "x"},
            "webhook": f"{base}/hook",
            "webhook_events_filter": ["completed"],
        },
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 202
    hooks = recorder.wait_for(lambda rs: len(rs) >= 3)
    time.sleep(0.5)
    assert len(recorder.requests) == 3
    assert all(h["json"]["status"] == "succeeded" for h in hooks)


def test_webhook_filter_start_and_completed_only(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    s = start("stream", env={"COG_THROTTLE_RESPONSE_INTERVAL": "0"})
    r = s.post(
        "/predictions",
        json={
            "input": {"n": 3},
            "webhook": f"{base}/hook",
            "webhook_events_filter": ["start", "completed"],
        },
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 202
    recorder.wait_for(lambda rs: any(x["json"]["status"] == "succeeded" for x in rs))
    time.sleep(0.3)
    statuses = [h["json"]["status"] for h in recorder.requests]
    # No output or logs events: only start ("processing") and completed.
    assert statuses == ["processing", "succeeded"], statuses


def test_terminal_webhook_is_not_retried_on_other_4xx(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    recorder.statuses = [400]
    s = start("basic")
    r = s.post(
        "/predictions",
        json={
            "input": {"text": "x"},
            "webhook": f"{base}/h",
            "webhook_events_filter": ["completed"],
        },
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 202
    recorder.wait_for(lambda rs: len(rs) >= 1)
    time.sleep(0.6)  # a retry would come after 100 ms, then 200 ms
    assert len(recorder.requests) == 1


def test_webhook_failure_does_not_affect_prediction(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic")
    r = s.post(
        "/predictions",
        json={"input": {"text": "x"}, "webhook": "http://127.0.0.1:9/unreachable"},
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 202
    s.wait_for("READY", timeout=10)
    assert s.predict({"text": "y"}).json()["output"] == "hello y"


def test_put_is_idempotent(start) -> None:  # type: ignore[no-untyped-def]
    s = start("sleep")
    r = s.put(
        "/predictions/p1", json={"input": {"seconds": 1}}, headers={"Prefer": "respond-async"}
    )
    assert r.status_code == 202
    again = s.put(
        "/predictions/p1", json={"input": {"seconds": 1}}, headers={"Prefer": "respond-async"}
    )
    assert again.status_code == 202
    body = again.json()
    assert body["id"] == "p1" and body["input"] == {"seconds": 1}
    mismatch = s.put("/predictions/p2", json={"id": "other", "input": {}})
    assert mismatch.status_code == 422
    assert mismatch.json() == {
        "detail": [
            {
                "loc": ["body", "id"],
                "msg": "prediction ID must match the ID supplied in the URL",
                "type": "value_error",
            }
        ]
    }


# ---------------------------------------------------------------- capacity, readiness


def test_409_at_capacity(start) -> None:  # type: ignore[no-untyped-def]
    s = start("sleep")
    r = s.post("/predictions", json={"input": {"seconds": 1}}, headers={"Prefer": "respond-async"})
    assert r.status_code == 202
    busy = s.predict({"seconds": 0.1})
    assert busy.status_code == 409 and busy.json() == AT_CAPACITY
    assert s.health()["status"] == "BUSY"


def test_503_before_setup_and_setup_timeout(start) -> None:  # type: ignore[no-untyped-def]
    s = start("setup_slow", ready=False, env={"SETUP_SECONDS": "3"})
    s.wait_listening()
    assert s.health()["status"] == "STARTING"
    r = s.predict({})
    assert r.status_code == 503 and r.json() == NOT_READY
    s.wait_for("READY")

    t = start("setup_slow", ready=False, env={"SETUP_SECONDS": "30", "COG_SETUP_TIMEOUT": "1"})
    health = t.wait_for("SETUP_FAILED", timeout=20)
    assert health["setup"]["status"] == "failed"


def test_setup_failure(start) -> None:  # type: ignore[no-untyped-def]
    s = start("setup_fail", ready=False)
    health = s.wait_for("SETUP_FAILED")
    assert health["setup"]["status"] == "failed"
    assert "setup exploded" in health["setup"]["logs"]
    assert s.predict({}).status_code == 503


# ---------------------------------------------------------------- cancel


def test_cancel_sync_prediction_blocked_in_sleep(start) -> None:  # type: ignore[no-untyped-def]
    s = start("sleep")
    result: dict[str, Any] = {}

    def run() -> None:
        result["r"] = s.put("/predictions/c1", json={"input": {"seconds": 3}})
        result["t"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    c = s.post("/predictions/c1/cancel")
    assert c.status_code == 200 and c.json() == {}
    t.join(5)
    elapsed = result["t"] - started
    assert result["r"].status_code == 200
    assert result["r"].json()["status"] == "canceled"
    assert elapsed < 0.2, f"sync cancel took {elapsed:.3f}s"
    assert s.predict({"seconds": 0.1}).json()["status"] == "succeeded"


def test_sync_runner_with_concurrency_runs_one_at_a_time(start) -> None:  # type: ignore[no-untyped-def]
    # Cog: COG_MAX_CONCURRENCY slots (409 beyond), but a sync runner runs one prediction at a
    # time. The second waits in the worker; canceling it ends it at once, and the running one
    # (on the worker's main thread) is interrupted promptly even in time.sleep.
    s = start("sleep", env={"COG_MAX_CONCURRENCY": "2"})
    results: dict[str, Any] = {}

    def run(pid: str, seconds: float) -> None:
        r = requests.put(f"{s.url}/predictions/{pid}", json={"input": {"seconds": seconds}})
        results[pid] = (r, time.monotonic())

    first = threading.Thread(target=run, args=("q1", 5))
    first.start()
    time.sleep(0.3)
    second = threading.Thread(target=run, args=("q2", 0.1))
    second.start()
    time.sleep(0.3)
    assert s.health()["status"] == "BUSY"
    third = s.predict({"seconds": 0.1})
    assert third.status_code == 409 and third.json() == AT_CAPACITY

    canceled = time.monotonic()
    assert s.post("/predictions/q2/cancel").status_code == 200
    second.join(5)
    r, ended = results["q2"]
    assert r.json()["status"] == "canceled", r.json()
    assert ended - canceled < 0.3, f"queued cancel took {ended - canceled:.3f}s"
    assert first.is_alive()  # q1 still sleeps

    canceled = time.monotonic()
    assert s.post("/predictions/q1/cancel").status_code == 200
    first.join(5)
    r, ended = results["q1"]
    assert r.json()["status"] == "canceled", r.json()
    assert ended - canceled < 0.2, f"running cancel took {ended - canceled:.3f}s"

    # Both slots free again; sequential timing shows they queue rather than overlap.
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        bodies = list(pool.map(lambda _: s.predict({"seconds": 0.4}).json(), range(2)))
    assert [b["status"] for b in bodies] == ["succeeded", "succeeded"]
    assert time.monotonic() - started >= 0.8


def test_cancel_async_and_unknown(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    s = start("async_concurrent")
    r = s.post(
        "/predictions",
        json={"id": "a1", "input": {"seconds": 10}, "webhook": f"{base}/h"},
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 202
    time.sleep(0.3)
    assert s.post("/predictions/a1/cancel").status_code == 200
    hooks = recorder.wait_for(lambda rs: any(x["json"]["status"] == "canceled" for x in rs), 5)
    assert hooks[-1]["json"]["id"] == "a1"
    missing = s.post("/predictions/nope/cancel")
    assert missing.status_code == 404 and missing.json() == {}


def test_sync_client_disconnect_cancels(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = start("sleep")
    marker = tmp_path / "m"
    with pytest.raises(requests.exceptions.ReadTimeout):
        s.post("/predictions", json={"input": {"seconds": 3, "marker": str(marker)}}, timeout=0.5)
    deadline = time.monotonic() + 3
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "canceled"


# ---------------------------------------------------------------- concurrency, scope


def test_eight_overlapping_async_predictions(start) -> None:  # type: ignore[no-untyped-def]
    s = start("async_concurrent", env={"COG_MAX_CONCURRENCY": "8"})
    started = time.monotonic()

    def one(i: int) -> requests.Response:
        return requests.post(
            f"{s.url}/predictions",
            json={"input": {"seconds": 0.5, "tag": f"t{i}"}, "context": {"who": f"w{i}"}},
            timeout=30,
        )

    with ThreadPoolExecutor(9) as pool:
        futures = [pool.submit(one, i) for i in range(8)]
        time.sleep(0.2)
        ninth = pool.submit(one, 8).result()
        results = [f.result() for f in futures]
    elapsed = time.monotonic() - started
    assert ninth.status_code == 409
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    for i, r in enumerate(results):
        body = r.json()
        assert body["status"] == "succeeded"
        assert body["output"].startswith(f"t{i}:w{i}:")
        assert body["logs"] == f"start t{i}\nend t{i}\n"
        assert body["metrics"]["tag_len"] == 2
    assert max(int(r.json()["output"].split("peak=")[1]) for r in results) == 8


# ---------------------------------------------------------------- SSE


def test_sse_stream(start) -> None:  # type: ignore[no-untyped-def]
    s = start("stream")
    with s.session.post(
        f"{s.url}/predictions",
        json={"input": {"n": 3}},
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    ) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(r)
    names = [e for e, _ in events]
    assert names[0] == "start" and names[-1] == "completed"
    outputs = [d for e, d in events if e == "output"]
    assert [o["chunk"] for o in outputs] == ["tok0 ", "tok1 ", "tok2 "]
    assert [o["index"] for o in outputs] == [0, 1, 2]
    logs = [d for e, d in events if e == "log"]
    assert logs[0] == {"source": "stdout", "data": "yielding 0\n"}
    assert events[-1][1]["status"] == "succeeded"


def test_sse_requires_streaming(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic")
    r = s.post(
        "/predictions", json={"input": {"text": "x"}}, headers={"Accept": "text/event-stream"}
    )
    assert r.status_code == 406
    assert r.json() == {
        "error": "This model does not support streaming responses. Add @cog.streaming to "
        "predict() to enable SSE."
    }


# ---------------------------------------------------------------- bad input, routes


def test_bad_requests_never_kill_the_server(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic")
    bad_json = s.post("/predictions", data=b"{nope", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    wrong_type = s.post("/predictions", data=b"{}", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    wrong_shape = s.post("/predictions", json={"input": [1, 2]})
    assert wrong_shape.status_code == 422
    huge = s.post(
        "/predictions",
        data=b'{"input": {"text": "' + b"x" * (200 * 1024 * 1024) + b'"}}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert s.get("/nope").status_code == 404
    assert s.get("/predictions/abc/stream").status_code == 404
    assert s.post("/predictions/abc/nope").status_code == 404
    assert s.health()["status"] == "READY"
    assert s.predict({"text": "still"}).json()["output"] == "hello still"


def test_user_subprocess_output_cannot_corrupt_ipc(start) -> None:  # type: ignore[no-untyped-def]
    s = start("noisy")
    for n in (1, 5):
        body = s.predict({"n": n}).json()
        assert body["status"] == "succeeded" and body["output"] == f"survived {n}", body
        # fd-level output goes to the server log, not into the prediction's logs (as upstream).
        assert body["logs"] == "via print\n"
    assert s.health()["status"] == "READY"
    deadline = time.monotonic() + 5
    while "child-out-4" not in s.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "child-out-4" in s.logs() and "child-err-4" in s.logs()


def test_unhealthy_user_healthcheck(start, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    health_file = tmp_path / "h"
    health_file.write_text("ok")
    s = start("healthcheck", env={"HEALTH_FILE": str(health_file)})
    health_file.write_text("raise")
    h = s.wait_for("UNHEALTHY")
    assert "sick" in h["user_healthcheck_error"]
    health_file.write_text("ok")
    s.wait_for("READY")


# ---------------------------------------------------------------- train, legacy


def test_train_mode(start) -> None:  # type: ignore[no-untyped-def]
    s = start("train", ref="predict.py:train", train=True, args=("--x-mode", "train"))
    root = s.get("/").json()
    assert root["trainings_url"] == "/trainings"
    body = s.post("/trainings", json={"input": {"steps": 2}}).json()
    assert body["status"] == "succeeded" and body["output"] == {"weights": "trained 2"}
    sse = s.post("/trainings", json={"input": {}}, headers={"Accept": "text/event-stream"})
    assert sse.status_code == 406
    assert sse.json() == {"error": "Training endpoints do not support streaming responses."}


def test_legacy_predictor(start) -> None:  # type: ignore[no-untyped-def]
    s = start("legacy", ref="predict.py:Predictor")
    assert s.predict({"n": 3}).json()["output"] == ["legacy0", "legacy1", "legacy2"]


# ---------------------------------------------------------------- shutdown


def test_shutdown_route(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic")
    r = s.post("/shutdown")
    assert r.status_code == 200 and r.json() == {}
    assert s.proc.wait(timeout=15) == 0


def test_sigterm_waits_for_running_predictions(start, http_server) -> None:  # type: ignore[no-untyped-def]
    base, recorder = http_server
    s = start("sleep")
    r = s.post(
        "/predictions",
        json={
            "input": {"seconds": 1},
            "webhook": f"{base}/h",
            "webhook_events_filter": ["completed"],
        },
        headers={"Prefer": "respond-async"},
    )
    assert r.status_code == 202
    time.sleep(0.2)
    s.signal(signal.SIGTERM)
    hooks = recorder.wait_for(lambda rs: len(rs) >= 1, 10)
    assert hooks[0]["json"]["status"] == "succeeded"
    assert s.proc.wait(timeout=15) == 0


def test_sigterm_lets_a_running_sync_prediction_answer(start) -> None:  # type: ignore[no-untyped-def]
    s = start("sleep")
    result: dict[str, Any] = {}

    def run() -> None:
        result["r"] = requests.post(
            f"{s.url}/predictions", json={"input": {"seconds": 1}}, timeout=30
        )

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    s.signal(signal.SIGTERM)
    t.join(10)
    body = result["r"].json()
    assert body["status"] == "succeeded" and body["output"].startswith("slept 1"), body
    assert s.proc.wait(timeout=15) == 0


def test_await_explicit_shutdown_ignores_sigterm(start) -> None:  # type: ignore[no-untyped-def]
    s = start("basic", args=("--await-explicit-shutdown", "true"))
    s.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert s.proc.poll() is None
    assert s.health()["status"] == "READY"
    s.post("/shutdown")
    assert s.proc.wait(timeout=15) == 0
