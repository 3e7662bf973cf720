"""prometheus-client's multiprocess mode, set up once per process before any metric is counted.

Every process that counts (web workers, Celery pool processes, beat) writes its counters and
histograms to memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and a scrape of /metrics in any web
worker adds them all up. Each file is named by host and pid (`counter_web-1-4242.db`), so containers
sharing one directory (a volume) never write the same file even when their pids are equal.

At start, the web server (config/web.py) and each Celery worker and beat remove the files
of processes of this host that are gone (a previous run): the sums then restart from zero, which
Prometheus reads as a counter reset. The files of live processes, and of other hosts, are kept.
We use no "live" gauges (what is current is read at scrape time), so a worker that exits leaves only
its counters, which must stay in the sum.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from pathlib import Path

from django.conf import settings
from prometheus_client import values

logger = logging.getLogger(__name__)

HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:60] or "host"


def process_identifier() -> str:
    """Distinct for every running process, including across containers sharing the directory."""
    return f"{HOST}-{os.getpid()}"


def multiprocess_dir() -> Path:
    return Path(settings.PROMETHEUS_MULTIPROC_DIR)


def enable_multiprocess() -> Path:
    """Points prometheus-client's values at the shared directory (idempotent)."""
    directory = multiprocess_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    if not getattr(values.ValueClass, "_oncall_multiprocess", False):
        values.ValueClass = values.MultiProcessValue(process_identifier)
        values.ValueClass._oncall_multiprocess = True
        os.register_at_fork(after_in_child=forget_inherited_files)
    return directory


def _pid_of_this_host(path: Path) -> int | None:
    """The pid in `<type>_<host>-<pid>.db` when the file was written on this host, else None."""
    identifier = path.stem.rsplit("_", 1)[-1]
    host, _, pid = identifier.rpartition("-")
    return int(pid) if host == HOST and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but alive
    return True


def remove_files_of_dead_processes(directory: Path | None = None) -> int:
    """Called at the start of the web, worker and beat processes. Returns how many files went."""
    directory = directory or multiprocess_dir()
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for path in directory.glob("*.db"):
        pid = _pid_of_this_host(path)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass  # another process starting at the same moment removed it
    if removed:
        logger.info("removed metrics files of stopped processes", extra={"files": removed, "dir": str(directory)})
    return removed


def forget_inherited_files() -> None:
    """Right after a fork, in the child: close the parent's metric files and forget them, so the
    next count opens this process's own. prometheus-client would do the same on the child's first
    count, but by then billiard may have closed every inherited descriptor (it does for the beat
    process of `celery worker --beat`), and closing them again fails with EBADF on every count.

    prometheus-client keeps that state in the closure of MultiProcessValue (pinned version); if its
    shape ever changes, this does nothing and says so."""
    check = getattr(values.ValueClass, "_MmapedValue__check_for_pid_change", None)
    try:
        cells = dict(zip(check.__code__.co_freevars, (cell.cell_contents for cell in check.__closure__), strict=True))
        files, pid, identify = cells["files"], cells["pid"], cells["process_identifier"]
    except (AttributeError, KeyError, TypeError, ValueError):
        logger.warning("prometheus-client's multiprocess state has an unknown shape; inherited files kept")
        return
    if pid["value"] == identify():
        return  # not a fork child, or this process already counted with its own files
    for inherited in files.values():
        with contextlib.suppress(OSError):  # already closed under us: forgetting it is all there is to do
            inherited.close()
    files.clear()


enable_multiprocess()
