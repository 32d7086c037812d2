"""Server benchmark: cog-rs (our cog + coglet) against upstream cog==0.23.1 + coglet==0.23.1.

    python3 benches/server/bench.py --ours /tmp/venv-ours --upstream /tmp/venv-upstream

Each venv must have `cog` and `coglet` installed (see README.md). The same predictors run on
loopback: cold start to READY (the two servers alternating), then for the sync no-op (one
connection back to back) and the async no-op (8 slots, 8 connections) both servers are started
at once and loaded with wrk in interleaved rounds (each round runs both, alternating which goes
first), so that load from elsewhere on the machine hits both alike; each round's ratios and
load average are reported beside the medians. Last, how long a cancel of `time.sleep(3)` takes.
Prints Markdown tables (and JSON with --json).
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


def interleaved_load(
    venvs: dict[str, Path],
    fixture: str,
    env: dict[str, str] | None,
    conns: int,
    threads: int,
    seconds: int,
    rounds: int,
) -> list[dict[str, Any]]:
    """Both servers up at once; each round runs wrk against each of them, alternating which
    goes first, and records the load average before the round."""
    shutil.rmtree(SCRATCH, ignore_errors=True)
    servers = {name: Server(venv, fixture, env) for name, venv in venvs.items()}
    try:
        for s in servers.values():
            s.wait_ready()
        for s in servers.values():
            wrk(s.url, conns, threads, 2)  # warm-up
        out = []
        names = list(servers)
        for i in range(rounds):
            order = names if i % 2 == 0 else names[::-1]
            row: dict[str, Any] = {"round": i + 1, "loadavg": os.getloadavg()[0]}
            for name in order:
                row[name] = wrk(servers[name].url, conns, threads, seconds)
            out.append(row)
        return out
    finally:
        for s in servers.values():
            s.close()


def interleaved_cold_start(venvs: dict[str, Path], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in venvs}
    for i in range(runs):
        names = list(venvs) if i % 2 == 0 else list(venvs)[::-1]
        for name in names:
            s = Server(venvs[name], "sync_noop")
            try:
                times[name].append(s.wait_ready())
            finally:
                s.close()
    return {name: statistics.median(t) for name, t in times.items()}


def summarize(rounds: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Medians per server, and per-round ratios of the first server to the second."""
    out: dict[str, Any] = {"rounds": rounds}
    for name in names:
        out[name] = {
            key: statistics.median(r[name][key] for r in rounds)
            for key in ("rps", "ok_rps", "p50_ms", "p99_ms", "ok_p50_ms", "ok_p99_ms")
        }
        out[name]["non2xx"] = sum(r[name]["non2xx"] for r in rounds)
        out[name]["requests"] = sum(r[name]["requests"] for r in rounds)
    if len(names) == 2:
        a, b = names
        out["ratios"] = [
            {
                "round": r["round"],
                "loadavg": r["loadavg"],
                "rps": r[a]["rps"] / r[b]["rps"] if r[b]["rps"] else float("inf"),
                "p50": r[a]["p50_ms"] / r[b]["p50_ms"] if r[b]["p50_ms"] else float("inf"),
            }
            for r in rounds
        ]
    return out


def measure(venvs: dict[str, Path], seconds: int, runs: int, rounds: int) -> dict[str, Any]:
    names = list(venvs)
    result: dict[str, Any] = {"cold_start_s": interleaved_cold_start(venvs, runs)}
    result["sync"] = summarize(
        interleaved_load(venvs, "sync_noop", None, 1, 1, seconds, rounds), names
    )
    result["async8"] = summarize(
        interleaved_load(venvs, "async_noop", {"COG_MAX_CONCURRENCY": "8"}, 8, 2, seconds, rounds),
        names,
    )
    result["cancel_s"] = {}
    for name, venv in venvs.items():
        shutil.rmtree(SCRATCH, ignore_errors=True)
        result["cancel_s"][name] = cancel_latency(venv, runs)
    return result


def table(result: dict[str, Any], names: list[str]) -> str:
    def row(label: str, fmt: Any) -> str:
        return f"| {label} | " + " | ".join(fmt(n) for n in names) + " |"

    def latency(r: dict[str, Any]) -> str:
        return f"{r['p50_ms']:.3f} / {r['p99_ms']:.3f} ms"

    sync, asy = result["sync"], result["async8"]
    lines = ["| (medians over rounds) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [
        row("cold start to READY", lambda n: f"{result['cold_start_s'][n] * 1000:.0f} ms"),
        row("sync no-op, 1 connection: req/s, all answers", lambda n: f"{sync[n]['rps']:.0f}"),
        row("sync: successful req/s", lambda n: f"{sync[n]['ok_rps']:.0f}"),
        row("sync: p50 / p99, all answers", lambda n: latency(sync[n])),
        row("sync: non-2xx / total", lambda n: f"{sync[n]['non2xx']} / {sync[n]['requests']}"),
        row("async no-op, 8 slots, 8 conns: req/s, all answers", lambda n: f"{asy[n]['rps']:.0f}"),
        row("async: successful req/s", lambda n: f"{asy[n]['ok_rps']:.0f}"),
        row("async: p50 / p99, all answers", lambda n: latency(asy[n])),
        row("async: non-2xx / total", lambda n: f"{asy[n]['non2xx']} / {asy[n]['requests']}"),
        row("cancel of time.sleep(3) (median)", lambda n: f"{result['cancel_s'][n] * 1000:.1f} ms"),
    ]  # fmt: skip
    if len(names) == 2:
        lines += ["", f"Per round ({names[0]} / {names[1]}):", ""]
        lines.append("| round | load (1 min) | sync req/s | sync p50 | async req/s | async p50 |")
        lines.append("|---|---|---|---|---|---|")
        for s_r, a_r in zip(sync["ratios"], asy["ratios"], strict=True):
            load = f"{s_r['loadavg']:.2f} / {a_r['loadavg']:.2f}"
            lines.append(
                f"| {s_r['round']} | {load} | {s_r['rps']:.2f}x | {s_r['p50']:.2f}x "
                f"| {a_r['rps']:.2f}x | {a_r['p50']:.2f}x |"
            )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--ours", type=Path, required=True, help="venv with our cog + coglet")
    p.add_argument("--upstream", type=Path, help="venv with cog==0.23.1 + coglet==0.23.1")
    p.add_argument("--seconds", type=int, default=10, help="wrk duration per server per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved load rounds")
    p.add_argument("--runs", type=int, default=5, help="repeats for cold start and cancel")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    venvs = {"cog-rs": args.ours}
    if args.upstream:
        venvs["upstream 0.23.1"] = args.upstream
    load_before = os.getloadavg()
    result = measure(venvs, args.seconds, args.runs, args.rounds)
    load_after = os.getloadavg()
    if args.json:
        print(json.dumps({**result, "loadavg": [load_before, load_after]}, indent=2))
    else:
        print(table(result, list(venvs)))
        before = " ".join(f"{x:.2f}" for x in load_before)
        after = " ".join(f"{x:.2f}" for x in load_after)
        print(f"\nload average (1/5/15 min) before: {before}, after: {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
