"""Test utilities: a real hived in a temporary state dir, polling with deadlines, cleanup of agents."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.02, what: str = "condition"
) -> T:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


class Hived:
    """A real `hived` process in its own state dir, with an HTTP client on its socket."""

    def __init__(
        self,
        state_dir: Path,
        db_url: str | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        socket: Path | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.prefix = prefix or []  # e.g. `ip netns exec NS`: run hived inside a network namespace
        self.socket = socket or state_dir / "hived.sock"  # container agents need it in a folder of its own
        self.db_url = db_url
        self.extra_args = extra_args or []
        self.env = dict(os.environ)
        for key in ("HIVE_URL", "HIVE_TOKEN", "HIVE_SOCKET", "HIVE_DB"):
            self.env.pop(key, None)
        self.env["HIVE_STATE_DIR"] = str(state_dir)
        self.env["HIVE_SOCKET"] = str(self.socket)
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = state_dir / "hived.log"
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://hived", timeout=30
        )

    def start(self, timeout: float = 30.0) -> Hived:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        args = [
            *self.prefix,
            sys.executable,
            "-m",
            "hived.main",
            "--state-dir",
            str(self.state_dir),
            "--socket",
            str(self.socket),
            "--stop-grace",
            "5",
            "--drain-grace",
            "2",
            *self.extra_args,
        ]
        if self.db_url:
            args += ["--db", self.db_url]
        if self.socket.exists():  # left by a daemon this test killed; hived would replace it too
            self.socket.unlink()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=log, cwd=REPO)
        wait_for(self._healthy, timeout, interval=0.05, what=f"hived healthz (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"hived exited with {self.proc.returncode}:\n{self.log()}")
        # A failed connect inside httpcore leaks its socket (a ResourceWarning, an error here): probe
        # with a socket of our own first, closed whatever happens.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket))
        except OSError:
            return False
        finally:
            probe.close()
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def agent_pids(self) -> list[int]:
        """Every live hive-agent process attached to this daemon's socket."""
        pids = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if "hivectl.agent.main" in " ".join(proc.info["cmdline"] or []) and proc.environ().get(
                    "HIVE_SOCKET"
                ) == str(self.socket):
                    pids.append(proc.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return pids

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        for pid in self.agent_pids():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.client.close()

    # --- small API helpers ------------------------------------------------------------------------

    def api(self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        resp = self.client.request(method, path, **kw)
        expected = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in expected, f"{method} {path}: {resp.status_code} {resp.text}"
        return (
            resp.json() if resp.headers.get("content-type", "").startswith("application/json") else resp.text
        )

    def spawn(
        self, name: str, handler: dict[str, Any], wait_active: bool = True, **spec: Any
    ) -> dict[str, Any]:
        agent = self.api("POST", "/agents", json={"name": name, "handler": handler, **spec})
        if wait_active:
            wait_for(
                lambda: self.api("GET", f"/agents/{name}")["status"] in ("active", "busy"),
                what=f"agent {name} active",
            )
        return agent

    def submit(self, type: str = "noop", **fields: Any) -> dict[str, Any]:
        return self.api("POST", "/tasks", json={"type": type, **fields})

    def task(self, task_id: str) -> dict[str, Any]:
        return self.api("GET", f"/tasks/{task_id}")

    def wait_task(
        self,
        task_id: str,
        timeout: float = 30.0,
        states: tuple[str, ...] = ("completed", "failed", "cancelled"),
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (t := self.task(task_id))["status"] in states and t,
            timeout,
            interval=0.05,
            what=f"task {task_id} in {states}",
        )
