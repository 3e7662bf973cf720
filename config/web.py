"""The web server: Granian serving config.wsgi, as the Procfile, the Dockerfile and compose start it.

    python -m config.web --bind 127.0.0.1:8000 --workers 2 --threads 4

Granian parses HTTP and keeps connections in Rust and calls Python only for the application, where
gunicorn's threaded workers do both in Python. In an alert storm that halved the web's CPU per
duplicate alert on this 2-core machine (3.0 to 1.4 ms, and 380 to 720 duplicates a second through
the fast lane, measured side by side with the same app and database; README, Benchmarks).

What the launcher keeps from the gunicorn setup it replaced:
- metrics: the files of processes that are gone are removed at start (config/prometheus.py); each
  worker is a process of its own that counts into PROMETHEUS_MULTIPROC_DIR;
- logs: the access log is one JSON line per request on the `granian.access` logger, through the
  same handler as every other line, so carrier webhook tokens are masked (config/logging.py);
- a stop (SIGTERM, SIGINT) lets requests in flight finish for up to --graceful-timeout seconds;
- a worker that dies is started again.
"""

from __future__ import annotations

import argparse
import os

DEFAULT_BIND = "127.0.0.1:8000"
# One line per request: who, what, the answer and how long it took. `path` carries no query string
# (tokens never travel there); webhook paths are masked by the logging handler.
ACCESS_LOG_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m config.web", description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=DEFAULT_BIND, help="HOST:PORT to listen on (default %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default %(default)s)")
    parser.add_argument("--threads", type=int, default=4, help="application threads per worker (default %(default)s)")
    parser.add_argument(
        "--graceful-timeout", type=int, default=10, help="seconds a stopping worker may finish requests"
    )
    parser.add_argument("--backlog", type=int, default=2048, help="connections waiting to be accepted")
    args = parser.parse_args(argv)
    host, separator, port = args.bind.rpartition(":")
    if not separator or not port.isdigit() or not host:
        parser.error(f"--bind must be HOST:PORT, not {args.bind!r}")
    args.host, args.port = host.strip("[]"), int(port)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from granian import Granian
    from granian.constants import Interfaces

    from config.prometheus import remove_files_of_dead_processes

    remove_files_of_dead_processes()
    server = Granian(
        "config.wsgi:application",
        interface=Interfaces.WSGI,
        websockets=False,
        address=args.host,
        port=args.port,
        workers=args.workers,
        blocking_threads=args.threads,
        backlog=args.backlog,
        log_dictconfig=settings.LOGGING,
        log_level=settings.LOG_LEVEL.lower(),
        log_access=True,
        log_access_format=ACCESS_LOG_FORMAT,
        workers_kill_timeout=args.graceful_timeout,
        respawn_failed_workers=True,
    )
    server.serve()


if __name__ == "__main__":
    main()
