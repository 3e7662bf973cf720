"""Real processes for the tests that need them: Celery worker processes on the test database, and a
Redis server of a test's own that it can kill and start again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from config.devrun import redis_command
from tests.embedded_services import free_port, wait_for_port

PROJECT_DIR = Path(__file__).resolve().parents[1]


def database_url_for_subprocess() -> str:
    """The test database as a DATABASE_URL, so a worker process writes where the test reads."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_environment(*, broker_url: str | None = None, **overrides: str) -> dict[str, str]:
    """This process's environment (PROMETHEUS_MULTIPROC_DIR included), on the test database and the
    test's broker (or `broker_url`), with DEBUG off and the carrier settings the test configured."""
    broker = broker_url or settings.REDIS_URL
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "TWILIO_API_BASE_URL"):
        env[name] = getattr(settings, name) or ""
    env["VOICE_PROVIDER"] = settings.VOICE_PROVIDER
    env["PUBLIC_BASE_URL"] = settings.PUBLIC_BASE_URL
    env.update(overrides)
    return env


def worker_command(*, pool: str = "prefork", concurrency: int = 1, queues: str | None = None, beat: bool = False):
    """`celery worker` on every queue the app declares (or `queues`), optionally with beat in it."""
    from config.celery import app as celery_app

    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", pool, "--concurrency"]
    command += [str(concurrency), "-Q", queues or ",".join(queue.name for queue in celery_app.conf.task_queues)]
    command += ["--loglevel", "WARNING", "--without-mingle"]
    if beat:
        command.append("--beat")
    return command


def start(command: list[str], env: dict[str, str], log_path: Path | None = None) -> subprocess.Popen:
    """In a session of its own, so `stop` ends it with every child it forked."""
    output = log_path.open("w") if log_path else None
    stderr = subprocess.STDOUT if output else None
    return subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=output, stderr=stderr, start_new_session=True)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class PrivateRedis:
    """A redis-server of this test's own, which it can kill and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = Path(tempfile.mkdtemp(prefix="test-private-redis-"))
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = redis_command(self.port, self.data_dir)
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)
