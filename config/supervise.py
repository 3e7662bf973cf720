"""`python -m config.supervise COMMAND...`: run a process and start it again whenever it exits.

honcho (`make run`) stops every process as soon as one exits, so a worker that died would take the
whole development stack down with it, and on a server nothing would bring it back. This keeps the
worker and beat running: it restarts the command after an exit, waiting 1 s, then twice as long after
each quick failure, up to 30 s (a run that lasted a minute resets the wait). SIGTERM and SIGINT are
passed to the child, and then this exits with the child's status instead of restarting it.
docker-compose uses `restart: unless-stopped` for the same purpose.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
HEALTHY_RUN_SECONDS = 60.0


def supervise(command: Sequence[str], stopping: threading.Event) -> int:
    delay = FIRST_DELAY_SECONDS
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)  # noqa: S603 (the command line we were given)
        forward_stop_signals(child, stopping)
        status = child.wait()
        if stopping.is_set():
            return status
        if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
            delay = FIRST_DELAY_SECONDS
        say(f"{command[0]} exited with status {status}; starting it again in {delay:g} s")
        if stopping.wait(delay):
            return status
        delay = min(delay * 2, MAX_DELAY_SECONDS)


def forward_stop_signals(child: subprocess.Popen, stopping: threading.Event) -> None:
    def forward(signal_number: int, _frame: object) -> None:
        stopping.set()
        if child.poll() is None:
            child.send_signal(signal_number)

    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, forward)


def say(line: str) -> None:
    print(f"supervise: {line}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    command = argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    return supervise(command, threading.Event())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
