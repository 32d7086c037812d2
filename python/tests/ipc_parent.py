"""A minimal server side of coglet's worker IPC (docs/ipc.md), for testing the worker alone.

It spawns `python -c "import coglet; coglet._run_worker()"` exactly as the Rust server does,
speaks the length-prefixed JSON protocol on the control pipes and the slot sockets, and lets
tests drive predictions, cancels and healthchecks without the HTTP layer.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1


def _write_frame(f: Any, msg: dict[str, Any]) -> None:
    body = json.dumps(msg).encode()
    f.write(struct.pack(">I", len(body)) + body)
    f.flush()


def _read_exact(read: Any, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _read_frame(read: Any) -> dict[str, Any] | None:
    prefix = _read_exact(read, 4)
    if prefix is None:
        return None
    (length,) = struct.unpack(">I", prefix)
    body = _read_exact(read, length)
    if body is None:
        return None
    return json.loads(body)


class WorkerProcess:
    def __init__(
        self,
        fixture: Path,
        ref: str = "predict.py:Runner",
        num_slots: int = 1,
        is_train: bool = False,
        weights: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="coglet-ipc-"))
        self.listeners = []
        addresses = []
        for i in range(num_slots):
            path = str(self.tmp / f"slot-{i}.sock")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            s.listen(1)
            self.listeners.append(s)
            addresses.append(path)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import coglet; coglet._run_worker()"],
            cwd=fixture,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.control: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.logs: list[dict[str, Any]] = []
        init = {
            "type": "init",
            "protocol_version": PROTOCOL_VERSION,
            "predictor_ref": ref,
            "is_train": is_train,
            "num_slots": num_slots,
            "slot_sockets": addresses,
        }
        if weights is not None:
            init["weights"] = weights
        _write_frame(self.proc.stdin, init)
        self.slots = []
        for s in self.listeners:
            s.settimeout(30)
            conn, _ = s.accept()
            self.slots.append(conn)
        threading.Thread(target=self._read_control, daemon=True).start()

    def _read_control(self) -> None:
        assert self.proc.stdout is not None
        while True:
            msg = _read_frame(self.proc.stdout.read)
            if msg is None:
                self.control.put(None)
                return
            if msg["type"] == "log":
                self.logs.append(msg)
                continue
            self.control.put(msg)

    def next_control(self, timeout: float = 30) -> dict[str, Any] | None:
        return self.control.get(timeout=timeout)

    def wait_ready(self, timeout: float = 30) -> dict[str, Any]:
        msg = self.next_control(timeout)
        assert msg is not None, "worker exited before Ready"
        return msg

    def send_control(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        _write_frame(self.proc.stdin, msg)

    def start_predict(
        self, slot: int, pid: str, input: dict[str, Any], context: dict[str, str] | None = None
    ) -> Path:
        out = self.tmp / f"out-{pid}"
        out.mkdir()
        msg = {"type": "predict", "id": pid, "input": input, "output_dir": str(out)}
        if context:
            msg["context"] = context
        conn = self.slots[slot]
        body = json.dumps(msg).encode()
        conn.sendall(struct.pack(">I", len(body)) + body)
        return out

    def read_until_terminal(self, slot: int, timeout: float = 30) -> list[dict[str, Any]]:
        conn = self.slots[slot]
        conn.settimeout(timeout)
        events = []
        while True:
            msg = _read_frame(conn.recv)
            assert msg is not None, "slot closed"
            events.append(msg)
            if msg["type"] in ("done", "failed", "invalid_input", "cancelled"):
                return events

    def predict(
        self, input: dict[str, Any], slot: int = 0, pid: str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        pid = pid or f"p{time.monotonic_ns()}"
        self.start_predict(slot, pid, input, **kw)
        return self.read_until_terminal(slot)

    def cancel(self, slot: int, pid: str) -> None:
        self.send_control({"type": "cancel", "slot": slot, "id": pid})

    def close(self) -> None:
        try:
            self.send_control({"type": "shutdown"})
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for s in self.slots + self.listeners:
            s.close()
