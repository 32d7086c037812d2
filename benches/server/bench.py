"""Server benchmark: cog-rs (our cog + coglet) against upstream cog==0.23.1 + coglet==0.23.1.

    python3 benches/server/bench.py --ours /tmp/venv-ours --upstream /tmp/venv-upstream

Each venv must have `cog` and `coglet` installed (see README.md). For each server the same
predictors run on loopback: cold start to READY, sync no-op with one connection back to back,
async no-op with 8 slots at concurrency 8 (wrk), and how long a cancel of `time.sleep(3)` takes.
Prints a Markdown table (and JSON with --json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None


class Server:
    def __init__(self, venv: Path, fixture: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("COG_")}
        full_env.update(
            PORT=str(self.port),
            COG_PREDICT_TYPE_STUB="predict.py:Runner",
            # Upstream starts its worker with `python` from PATH.
            PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
            COG_LOG_LEVEL="error",
            RUST_LOG="error",
            **(env or {}),
        )
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "python"), "-m", "cog.server.http", "--host", "127.0.0.1"],
            cwd=HERE / fixture,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status, body = http("GET", f"{self.url}/health-check", timeout=1)
                if status == 200 and body.get("status") == "READY":
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{self.url} never became READY")

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk(url: str, connections: int, threads: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(HERE / "post.lua"), f"{url}/predictions"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH "))
    fields = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
    seconds = fields["duration_us"] / 1e6
    failed = fields["non2xx"] + fields["socket_errors"]
    return {
        "rps": fields["requests"] / seconds,
        # Answers that were predictions: a fast 409 is not throughput.
        "ok_rps": (fields["requests"] - failed) / seconds,
        "p50_ms": fields["p50_us"] / 1000,
        "p99_ms": fields["p99_us"] / 1000,
        # Latency of the 2xx answers only (post.lua times each request through its id).
        "ok_p50_ms": fields["ok_p50_us"] / 1000,
        "ok_p99_ms": fields["ok_p99_us"] / 1000,
        "non2xx": failed,
        "requests": fields["requests"],
    }


def cold_start(venv: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        s = Server(venv, "sync_noop")
        try:
            times.append(s.wait_ready())
        finally:
            s.close()
    return statistics.median(times)


def cancel_latency(venv: Path, runs: int) -> float:
    s = Server(venv, "sleep")
    try:
        s.wait_ready()
        latencies = []
        for i in range(runs):
            pid = f"cancel-{i}-{time.monotonic_ns()}"
            done: dict[str, float] = {}

            def run(pid: str = pid, done: dict[str, float] = done) -> None:
                http("PUT", f"{s.url}/predictions/{pid}", {"input": {"seconds": 3}})
                done["t"] = time.monotonic()

            t = threading.Thread(target=run)
            t.start()
            time.sleep(0.5)
            sent = time.monotonic()
            http("POST", f"{s.url}/predictions/{pid}/cancel")
            t.join(10)
            latencies.append(done["t"] - sent)
            time.sleep(0.2)
        return statistics.median(latencies)
    finally:
        s.close()


# Both servers keep per-prediction scratch directories here (upstream's is hard-coded).
SCRATCH = Path("/tmp/coglet/predictions")


def scratch_entries() -> int:
    try:
        return sum(1 for _ in SCRATCH.iterdir())
    except FileNotFoundError:
        return 0


def measure(venv: Path, seconds: int, runs: int) -> dict[str, Any]:
    # Each server starts as in a fresh container: no scratch directories left by an earlier run
    # (upstream leaves one per prediction; thousands of them slow down every path lookup there).
    shutil.rmtree(SCRATCH, ignore_errors=True)
    result: dict[str, Any] = {"cold_start_s": cold_start(venv, runs)}
    s = Server(venv, "sync_noop")
    try:
        s.wait_ready()
        wrk(s.url, 1, 1, 2)  # warm-up
        result["sync"] = wrk(s.url, 1, 1, seconds)
    finally:
        s.close()
    s = Server(venv, "async_noop", env={"COG_MAX_CONCURRENCY": "8"})
    try:
        s.wait_ready()
        wrk(s.url, 8, 2, 2)
        result["async8"] = wrk(s.url, 8, 2, seconds)
    finally:
        s.close()
    result["cancel_s"] = cancel_latency(venv, runs)
    result["scratch_dirs_left"] = scratch_entries()
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    rows = [
        ("cold start to READY (median)", lambda r: f"{r['cold_start_s'] * 1000:.0f} ms"),
        ("sync no-op, 1 connection: successful req/s", lambda r: f"{r['sync']['ok_rps']:.0f}"),
        ("sync no-op: all answers/s (incl. non-2xx)", lambda r: f"{r['sync']['rps']:.0f}"),
        ("sync no-op: p50 / p99, all answers", lambda r: f"{r['sync']['p50_ms']:.2f} / {r['sync']['p99_ms']:.2f} ms"),
        ("sync no-op: p50 / p99, successful predictions", lambda r: f"{r['sync']['ok_p50_ms']:.2f} / {r['sync']['ok_p99_ms']:.2f} ms"),
        ("sync no-op: non-2xx / total", lambda r: f"{r['sync']['non2xx']} / {r['sync']['requests']}"),
        ("async no-op, 8 slots, 8 conns: successful req/s", lambda r: f"{r['async8']['ok_rps']:.0f}"),
        ("async no-op: all answers/s (incl. non-2xx)", lambda r: f"{r['async8']['rps']:.0f}"),
        ("async no-op: p50 / p99, all answers", lambda r: f"{r['async8']['p50_ms']:.2f} / {r['async8']['p99_ms']:.2f} ms"),
        ("async no-op: p50 / p99, successful predictions", lambda r: f"{r['async8']['ok_p50_ms']:.2f} / {r['async8']['ok_p99_ms']:.2f} ms"),
        ("async no-op: non-2xx / total", lambda r: f"{r['async8']['non2xx']} / {r['async8']['requests']}"),
        ("cancel of time.sleep(3) (median)", lambda r: f"{r['cancel_s'] * 1000:.1f} ms"),
        ("scratch dirs left in /tmp/coglet/predictions", lambda r: f"{r['scratch_dirs_left']}"),
    ]  # fmt: skip
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(results[n]) for n in names) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ours", type=Path, required=True, help="venv with our cog + coglet")
    p.add_argument("--upstream", type=Path, help="venv with cog==0.23.1 + coglet==0.23.1")
    p.add_argument("--seconds", type=int, default=10, help="wrk duration per load test")
    p.add_argument("--runs", type=int, default=5, help="repeats for cold start and cancel")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    load_before = os.getloadavg()
    results = {"cog-rs": measure(args.ours, args.seconds, args.runs)}
    if args.upstream:
        results["upstream 0.23.1"] = measure(args.upstream, args.seconds, args.runs)
    load_after = os.getloadavg()
    if args.json:
        print(json.dumps({**results, "loadavg": [load_before, load_after]}, indent=2))
    else:
        print(table(results))
        print(
            "\nload average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}"
            .format(*load_before, *load_after)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
