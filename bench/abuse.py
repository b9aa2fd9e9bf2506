"""Abuse loads against a real hived, and how `/healthz` on its Unix socket answers during each:

- `half-sent`: N TCP connections to `--listen` that send part of their request headers and stop
  (hardening item 2);
- `sse`: N `/events` streams on the socket, half of which never read, while tasks are submitted
  in batches (item 18); the batch submits are also measured alone, to tell their share;
- `cel`: workflow runs whose `when` is quadratic over a param of 1,000 numbers (item 1).

Prints p50/p99/max of `/healthz` on the socket (a fresh connection each time, from a process of its
own: in the load's process, the load's threads would hold the interpreter lock the probe waits for,
a batch's 200-task answer parsed, 250 streams drained, and the figure would partly be the client's;
`--same-process` measures it so, as before session 11) under each load, and
the max without the load's first second (the onset: 500 streams connecting at once, the first CEL
evaluation loading its parser); at the end the max over all loads, onsets included (a failed
`/healthz` counts as infinite).

    .venv/bin/python bench/abuse.py --connections 1100 --streams 500 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, percentile  # noqa: E402


def start(state: Path, fd_limit: int | None) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (state / "hived.yaml").write_text("kind: Daemon\nmax_event_streams: 1000\n")
    args = [sys.executable, "-m", "hived.main", "--state-dir", str(state)]
    args += ["--config", str(state / "hived.yaml"), "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    env = dict(os.environ, HIVE_STATE_DIR=str(state), HIVE_SOCKET=str(state / "hived.sock"))

    def limit() -> None:
        if fd_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    log = open(state / "hived.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=log, cwd=REPO, preexec_fn=limit)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if healthz(state / "hived.sock", 1.0) is not None:
            return proc, port
        time.sleep(0.05)
    raise RuntimeError(f"hived did not start; see {state / 'hived.log'}")


def healthz(sock: Path, timeout: float) -> float | None:
    """Seconds for one /healthz on a new socket connection; None if it failed or timed out."""
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=timeout) as client:
            began = time.perf_counter()
            ok = client.get("http://hived/healthz").status_code == 200
            return time.perf_counter() - began if ok else None
    except httpx.HTTPError:
        return None


SETTLE = 1.0  # seconds: the max is also given without the samples of a load's first second


SAME_PROCESS = False  # --same-process: probe from the load's process (its threads' lock waits count)


def sample(sock: Path, seconds: float) -> tuple[list[tuple[float, float]], int]:
    """(seconds into the load, seconds /healthz took) of each answer; how many failed. Measured by a
    child process (`--probe`), unless --same-process."""
    if SAME_PROCESS:
        return probe(sock, seconds)
    argv = [sys.executable, __file__, "--probe", str(sock), str(seconds)]
    found = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO).stdout)
    return [(at, took) for at, took in found["times"]], int(found["failed"])


def probe(sock: Path, seconds: float) -> tuple[list[tuple[float, float]], int]:
    times, failed = [], 0
    began = time.monotonic()
    while (at := time.monotonic() - began) < seconds:
        took = healthz(sock, 2.0)
        if took is None:
            failed += 1
        else:
            times.append((at, took))
        time.sleep(0.02)
    return times, failed


MAXIMA: list[float] = []  # each load's max (its onset included), for the line at the end


def report(name: str, times: list[tuple[float, float]], failed: int) -> None:
    ms = [took * 1000 for _at, took in times]
    MAXIMA.append(max(ms, default=float("nan")) if not failed else float("inf"))
    settled = max((took * 1000 for at, took in times if at >= SETTLE), default=float("nan"))
    print(
        f"{name:<42} /healthz on the socket: n={len(ms)} p50 {percentile(ms, 50):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms, default=float('nan')):.1f} ms "
        f"(after the first {SETTLE:g} s: {settled:.1f} ms), failed {failed}"
    )


def half_sent(port: int, count: int) -> list[socket.socket]:
    conns = []
    for _ in range(count):
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=2)
            conn.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            conns.append(conn)
        except OSError:
            continue
    return conns


def streams(sock: Path, count: int) -> list[socket.socket]:
    """`count` /events streams; the odd ones are drained by a thread, the even ones never read."""
    conns = []
    for _ in range(count):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.connect(str(sock))
        conn.sendall(b"GET /events HTTP/1.1\r\nHost: hived\r\n\r\n")
        conns.append(conn)

    def drain(readers: list[socket.socket]) -> None:
        for conn in readers:
            conn.setblocking(False)
        while readers:
            for conn in list(readers):
                try:
                    if not conn.recv(65536):
                        readers.remove(conn)
                except BlockingIOError:
                    pass
                except OSError:
                    readers.remove(conn)
            time.sleep(0.005)

    threading.Thread(target=drain, args=(conns[1::2],), daemon=True).start()
    return conns


def submitter(sock: Path, stop: threading.Event) -> None:
    tasks = [{"type": "t", "requires": ["nobody"], "payload": {"n": i}} for i in range(200)]
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=30) as client:
        while not stop.is_set():
            client.post("http://hived/tasks/batch", json={"tasks": tasks})


QUADRATIC = "params.l.all(x, params.l.all(y, x + y >= 0))"  # item 1: 10^6 steps over 1,000 numbers


def cel_runs(sock: Path, stop: threading.Event) -> None:
    """Runs whose step has a quadratic `when` over a param of 1,000 numbers, one after another."""
    step = {"id": "a", "type": "t", "when": QUADRATIC}
    workflow = {"name": "quadratic", "params": {"l": []}, "steps": [step]}
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=30) as client:
        client.post("http://hived/workflows", json=workflow)
        while not stop.is_set():
            client.post("http://hived/workflows/quadratic/execute", json={"params": {"l": list(range(1000))}})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--fd-limit", type=int, default=1024, help="hived's open-files limit (soft and hard)")
    parser.add_argument("--same-process", action="store_true", help="probe from the load's process")
    args = parser.parse_args()
    global SAME_PROCESS
    SAME_PROCESS = args.same_process
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1:] * 2)
    with tempfile.TemporaryDirectory(prefix="hive-abuse-") as tmp:
        state = Path(tmp)
        proc, port = start(state, args.fd_limit)
        sock = state / "hived.sock"
        try:
            report("idle", *sample(sock, args.seconds / 2))
            conns = half_sent(port, args.connections)
            report(f"{len(conns)} half-sent TCP requests", *sample(sock, args.seconds))
            for conn in conns:
                conn.close()
            stop = threading.Event()
            thread = threading.Thread(target=cel_runs, args=(sock, stop), daemon=True)
            thread.start()
            report("runs with a quadratic CEL `when`, non-stop", *sample(sock, args.seconds / 2))
            stop.set()
            thread.join()
            stop = threading.Event()
            thread = threading.Thread(target=submitter, args=(sock, stop), daemon=True)
            thread.start()
            report("batch submits of 200, non-stop, alone", *sample(sock, args.seconds))
            open_streams = streams(sock, args.streams)
            both = f"the same + {args.streams} /events streams (half never read)"
            report(both, *sample(sock, args.seconds))
            stop.set()
            thread.join()
            report(f"{args.streams} /events streams alone (no new events)", *sample(sock, args.seconds / 2))
            for conn in open_streams:
                conn.close()
            report("after", *sample(sock, args.seconds / 2))
            worst = max(MAXIMA)
            print(f"max of /healthz over all loads, onsets included: {worst:.1f} ms (< 100: {worst < 100})")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:  # the probe's own process: SOCK SECONDS, JSON out
        times, failed = probe(Path(sys.argv[2]), float(sys.argv[3]))
        print(json.dumps({"times": times, "failed": failed}))
    else:
        main()
