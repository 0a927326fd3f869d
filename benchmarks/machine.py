"""The machine the figures are measured on, and the service's processes on it with their memory and CPU, from /proc."""

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from media_index import face_engine

logger = logging.getLogger(__name__)


@dataclass
class ProcessFigures:
    """One process of the service: its peak resident memory and the CPU it used while photos were indexed."""

    name: str
    pid: int
    peak_rss_mb: float
    cpu_seconds: float


def machine() -> dict:
    """What the figures were measured on."""
    cpuinfo = _read("/proc/cpuinfo").splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown CPU")
    memory_kb = int(next((line.split()[1] for line in _read("/proc/meminfo").splitlines() if "MemTotal" in line), 0))
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": sys.version.split()[0],
        "torch_threads": settings.TORCH_THREADS,
        "face_model": face_engine.model_name(),
    }


def service_processes(root: int) -> list[ProcessFigures]:
    """Every process under `root` (serve) with its peak memory (VmHWM) and CPU seconds so far, from /proc."""
    parents, names = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
            names[int(stat.parent.name)] = fields
    under, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        under.append(pid)
        frontier += [child for child, parent in parents.items() if parent == pid]
    ticks = os.sysconf("SC_CLK_TCK")
    found = []
    for pid in under:
        fields = names.get(pid)
        if fields is None:
            continue
        with contextlib.suppress(OSError, ValueError):
            status = _read(f"/proc/{pid}/status")
            peak_kb = int(next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")), 0))
            cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime and stime
            found.append(ProcessFigures(process_name(pid, parents), pid, round(peak_kb / 1024, 1), round(cpu, 1)))
    return found


def process_name(pid: int, parents: dict[int, int]) -> str:
    """A short name for a service process: what it runs, and whether it is a pool child of the same program."""
    argv = _read(f"/proc/{pid}/cmdline").split("\0")
    words = " ".join(argv)
    for marker, name in (
        ("celery", "celery worker"),
        ("gunicorn", "web (gunicorn)"),
        ("redis-server", "redis"),
        ("milvus", "milvus"),
        (" watch", "watcher"),
        (" serve", "serve"),
        ("index_status", "status follower"),
    ):
        if marker in words:
            parent_words = _read(f"/proc/{parents.get(pid, 0)}/cmdline").replace("\0", " ")
            return f"{name} child" if marker in parent_words and marker != " serve" else name
    return Path(argv[0]).name if argv and argv[0] else f"pid {pid}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
