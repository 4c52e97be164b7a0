"""`emotion-serve` as the serving benchmark runs it: a subprocess on a free loopback port,
waited for over /healthz, its memory read from /proc; and the CPU each part keeps busy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


def load_average() -> list[float]:
    """os.getloadavg(), rounded: every figure here carries the load it was measured under."""
    return [round(load, 2) for load in os.getloadavg()]


def _machine_cpu_s() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine (all cores), from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / hz, ticks[7] / hz


def _cpu_of(stat: Path) -> tuple[str, float] | None:
    """A process's parent pid and its user + system CPU seconds (all threads), from /proc."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int | None) -> float:
    """CPU seconds of a process and of its children (the worker processes of `--processes
    N`), 0 when it is gone."""
    own = _cpu_of(Path(f"/proc/{pid}/stat"))
    if own is None:
        return 0.0
    children = (_cpu_of(stat) for stat in Path("/proc").glob("[0-9]*/stat"))
    return own[1] + sum(found[1] for found in children if found and found[0] == str(pid))


class CpuUse:
    """Cores kept busy over an interval by the server, by this process (the clients, or the
    bare loop) and by everything else: the shared machine's other work, which the load average
    alone cannot tell from the benchmark's own."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self._start = self._read()

    def _read(self) -> tuple[float, float, float, float, float]:
        own = os.times()
        busy, stolen = _machine_cpu_s() if Path("/proc/stat").exists() else (0.0, 0.0)
        server = _process_cpu_s(self.server_pid) if self.server_pid else 0.0
        return time.perf_counter(), busy, stolen, server, own.user + own.system

    def cores(self) -> dict[str, float]:
        end = self._read()
        wall = max(end[0] - self._start[0], 1e-9)
        busy, stolen, server, own = (
            (b - a) / wall for a, b in zip(self._start[1:], end[1:], strict=True)
        )
        return {
            "machine": busy,
            "server": server,
            "benchmark_process": own,
            "others": max(0.0, busy - server - own),
            "stolen": stolen,
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def subprocess_env() -> dict[str, str]:
    """This checkout importable in the child, whichever directory the benchmark runs from."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{PACKAGE_ROOT}{os.pathsep}{path}"}


class Server:
    """`python -m emotion.serve MODEL --port P ...` as users start it, until the block ends."""

    def __init__(self, model: Path, *args: str, log: Path, timeout: float = 180.0) -> None:
        self.port = free_port()
        self.command = [sys.executable, "-m", "emotion.serve", str(model), "--port", str(self.port)]
        self.command += list(args)
        self.log = log
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in_s = 0.0  # from the command to the first healthy /healthz

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def __enter__(self) -> Server:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command, env=subprocess_env(), stdout=output, stderr=subprocess.STDOUT
            )
        started = time.monotonic()
        deadline = started + self.timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise SystemExit(f"emotion-serve exited {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"emotion-serve did not answer /healthz:\n{self.tail()}")
            time.sleep(0.2)
        self.started_in_s = time.monotonic() - started
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _healthy(self) -> bool:
        try:
            return self.get_json("/healthz").get("status") == "ok"
        except OSError:
            return False

    def get_json(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=5) as response:
            return json.loads(response.read())

    def rss_mb(self) -> float | None:
        """The server's resident memory (VmRSS), or None where /proc cannot say."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
