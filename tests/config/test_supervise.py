"""`python -m config.supervise`: a worker that exits is started again, and a stop request stops it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import wait_until

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Counts its starts in a file; crashes on the first two, then runs until it is told to stop.
CHILD = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
runs = pathlib.Path(sys.argv[1])
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
if len(runs.read_text()) < 3:
    sys.exit(1)
while True:
    time.sleep(0.1)
"""


def test_a_crashed_process_is_started_again_and_sigterm_stops_it_for_good(tmp_path):
    runs = tmp_path / "runs"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "config.supervise", sys.executable, "-c", CHILD, str(runs)],
        cwd=PROJECT_DIR,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # when the child crashes twice, it is started a third time (after 1 s, then 2 s)
        wait_until(lambda: runs.exists() and len(runs.read_text()) == 3, timeout=30, what="a third start")

        # and a stop request reaches the child and ends the supervisor with it
        supervisor.send_signal(signal.SIGTERM)
        _, stderr = supervisor.communicate(timeout=30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()

    assert supervisor.returncode == 0
    assert stderr.count("exited with status 1; starting it again") == 2
    assert len(runs.read_text()) == 3
