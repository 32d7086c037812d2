"""Run `python -m cog.server.http` as a real subprocess for the HTTP tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(
        self,
        fixture: Path,
        ref: str | None = "predict.py:Runner",
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        train: bool = False,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("COG_")}
        full_env = {**clean, "PORT": str(self.port), "LOG_FORMAT": "console"}
        if ref is not None:
            full_env["COG_TRAIN_TYPE_STUB" if train else "COG_PREDICT_TYPE_STUB"] = ref
        full_env.update(env or {})
        self.log = tempfile.NamedTemporaryFile(prefix="cog-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1", *args],
            cwd=fixture,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.session = requests.Session()

    def logs(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def health(self) -> dict[str, Any]:
        return self.session.get(f"{self.url}/health-check", timeout=10).json()

    def wait_for(self, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.logs()}")
            try:
                last = self.health()
                if last.get("status") in statuses:
                    return last
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"status never reached {statuses}; last {last}\n{self.logs()}")

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.health()
                return
            except requests.ConnectionError:
                time.sleep(0.02)
        raise AssertionError(f"server never listened:\n{self.logs()}")

    def post(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.post(f"{self.url}{path}", **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.put(f"{self.url}{path}", **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 30)
        return self.session.get(f"{self.url}{path}", **kw)

    def predict(self, input: dict[str, Any] | None = None, **kw: Any) -> requests.Response:
        body = {"input": input or {}, **kw}
        return self.post("/predictions", json=body)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.session.close()
        self.log.close()
        os.unlink(self.log.name)
