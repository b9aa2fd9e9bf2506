"""Separate hosts for the nodes tests: a network namespace per hived (its own address, reaching
PostgreSQL through a veth pair), a TCP forwarder in this process from each namespace's gateway address
to the real server, and a handler that records when each attempt starts and ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

PREFIX = "hivet"  # namespaces and links of these tests: hivetN, hvtN


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def namespaces_problem() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (`ip`)"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    try:
        run("ip", "netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.strip()}"
    run("ip", "netns", "del", probe)
    return None


class Host:
    """A network namespace with a veth pair to this one: 10.77.N.2 inside, 10.77.N.1 outside."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.ns = f"{PREFIX}{os.getpid() % 10000}n{index}"
        self.link = f"hvt{os.getpid() % 10000}n{index}"
        self.gateway = f"10.77.{index}.1"
        self.address = f"10.77.{index}.2"

    def create(self) -> Host:
        peer = self.link + "p"
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", self.link, "type", "veth", "peer", "name", peer)
        run("ip", "link", "set", peer, "netns", self.ns)
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.link)
        run("ip", "link", "set", self.link, "up")
        run("ip", "netns", "exec", self.ns, "ip", "addr", "add", f"{self.address}/24", "dev", peer)
        run("ip", "netns", "exec", self.ns, "ip", "link", "set", peer, "up")
        run("ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
        return self

    def cut(self) -> None:
        """Its network goes silent (packets dropped, no reset): a cable pulled."""
        run("ip", "link", "set", self.link, "down")

    def restore(self) -> None:
        run("ip", "link", "set", self.link, "up")

    def delete(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            run("ip", "link", "del", self.link)
        with contextlib.suppress(subprocess.CalledProcessError):
            run("ip", "netns", "del", self.ns)

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns]


class Forwarder(threading.Thread):
    """Forwards TCP connections from `listen` addresses to the real server (in this namespace)."""

    def __init__(self, listen: list[str], port: int, target: tuple[str, int]) -> None:
        super().__init__(daemon=True, name="pg-forwarder")
        self.listen, self.port, self.target = listen, port, target
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._open: set[asyncio.StreamWriter] = set()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        servers = [await asyncio.start_server(self._handle, host, self.port) for host in self.listen]
        self.ready.set()
        await self._stopping.wait()
        for server in servers:
            server.close()
        for writer in self._open:  # a cut link's unsent bytes would keep a close pending forever
            writer.transport.abort()
        await asyncio.sleep(0)  # the aborts take effect on the next turn

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._open.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open.difference_update((writer, up_writer))

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)


RECORDER = """\
import os, time, uuid


def run(payload):
    log = os.environ["HIVE_RUN_LOG"]
    tag = f"{payload['k']} {uuid.uuid4().hex} {os.environ['NODE']}"
    with open(log, "a") as f:
        f.write(f"start {tag} {time.time():.6f}\\n")
    time.sleep(payload.get("ms", 5) / 1000)
    with open(log, "a") as f:
        f.write(f"end {tag} {time.time():.6f}\\n")
    return {"node": os.environ["NODE"]}
"""


def write_recorder(folder: Path) -> Path:
    """A Python handler (`recorder:run`, in `folder`) that records each attempt's start and end."""
    (folder / "recorder.py").write_text(RECORDER)
    return folder


def runs_by_task(log: Path) -> dict[str, list[tuple[str, float, float | None]]]:
    """task (its payload's `k`) -> [(node, start, end or None)] of every run the handlers recorded."""
    starts: dict[tuple[str, str, str], float] = {}
    ends: dict[tuple[str, str, str], float] = {}
    for line in log.read_text().splitlines():
        kind, task, run, node, at = line.split()
        (starts if kind == "start" else ends)[(task, run, node)] = float(at)
    runs: dict[str, list[tuple[str, float, float | None]]] = {}
    for key, start in starts.items():
        runs.setdefault(key[0], []).append((key[2], start, ends.get(key)))
    return runs


def overlaps(runs: list[tuple[str, float, float | None]], longest: float) -> bool:
    """Whether two runs of one task on different nodes overlapped in time (a run with no recorded
    end was killed: it lasted at most `longest` s)."""
    spans = sorted((start, end if end is not None else start + longest, node) for node, start, end in runs)
    return any(b[0] < a[1] and a[2] != b[2] for a, b in zip(spans, spans[1:], strict=False))
