"""CPU and memory of the processes involved and of the machine, from ``/proc``; profiling."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds_of_stat(stat_text: str, ticks: int = CLOCK_TICKS) -> float:
    """utime + stime of a process, in seconds, from the text of ``/proc/<pid>/stat``."""
    fields = stat_text.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat(5)); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / ticks


def status_kilobytes(status_text: str, field: str) -> int:
    """A ``kB`` field (``VmHWM``, ``VmRSS``) of ``/proc/<pid>/status``; 0 when absent."""
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return 0


def machine_busy_seconds(proc_stat_text: str, ticks: int = CLOCK_TICKS) -> float:
    """CPU seconds all cores spent not idle, from the ``cpu`` line of ``/proc/stat``."""
    first = proc_stat_text.splitlines()[0].split()
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    # guest time is already included in user time (proc(5)).
    return (sum(values[:8]) - idle) / ticks


def process_cpu_seconds(pid: int) -> float:
    try:
        return cpu_seconds_of_stat(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return 0.0


def wait_for_idle(
    pid: int, *, busy_below: float = 0.05, interval: float = 1.0, timeout: float = 120.0
) -> bool:
    """Waits until process ``pid`` used under ``busy_below`` of a core for ``interval`` s.

    Returns:
        Whether it went idle before ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    previous = process_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(interval)  # the sampling interval of an idleness check
        current = process_cpu_seconds(pid)
        if current - previous < busy_below * interval:
            return True
        previous = current
    return False


def process_memory_mb(pid: int, field: str = "VmHWM") -> float:
    try:
        return status_kilobytes(Path(f"/proc/{pid}/status").read_text(), field) / 1024
    except OSError:
        return 0.0


def _self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclasses.dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by the machine and by each process we know."""

    wall: float
    machine: float
    processes: Mapping[str, float]

    @staticmethod
    def take(pids: Mapping[str, int]) -> CpuSnapshot:
        processes = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        processes["bench"] = _self_cpu_seconds()
        processes["finished children"] = _children_cpu_seconds()
        return CpuSnapshot(
            time.time(), machine_busy_seconds(Path("/proc/stat").read_text()), processes
        )

    def until(self, later: CpuSnapshot) -> dict[str, float]:
        """CPU seconds per process between two snapshots, with ``others`` (the noise)."""
        used = {
            name: later.processes.get(name, 0.0) - self.processes.get(name, 0.0)
            for name in later.processes
        }
        busy = later.machine - self.machine
        used = {name: round(value, 2) for name, value in used.items()}
        used["others"] = round(busy - sum(used.values()), 2)
        used["machine busy"] = round(busy, 2)
        used["wall"] = round(later.wall - self.wall, 2)
        return used


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "loadavg_at_start": [round(v, 2) for v in os.getloadavg()],
    }


@contextlib.contextmanager
def sampling_profiler(output: Path | None, phase: str, pid: int) -> Iterator[None]:
    """Samples ``pid`` with py-spy while it holds the GIL, into ``<output>-<phase>``.

    Collapsed stacks, or speedscope for a ``.json`` output. py-spy costs CPU on a
    machine this small: never compare timings of a profiled run with unprofiled ones.
    """
    if output is None:
        yield
        return
    kind = "speedscope" if output.suffix == ".json" else "raw"
    path = output.with_stem(f"{output.stem}-{phase}")
    spy = subprocess.Popen(
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "100", "--format", kind,
         "--output", str(path), "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
