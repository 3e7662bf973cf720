"""Flower never runs open to a network: basic auth from FLOWER_BASIC_AUTH, loopback only without it.

Flower's UI and API can revoke tasks and shut workers down. These tests start the real wrapper
(`python -m config.flower`) as a process, and the real Flower behind it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from django.conf import settings

from tests.embedded_services import free_port, wait_for_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_wrapper(**variables: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
    return subprocess.run(
        [sys.executable, "-m", "config.flower"],
        cwd=PROJECT_ROOT,
        env=environment | variables,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_debug_off_and_no_credentials_flower_refuses_to_start():
    finished = run_wrapper(DEBUG="false")

    assert finished.returncode == 2
    assert "refusing to start: FLOWER_BASIC_AUTH is not set and DEBUG is off" in finished.stderr


def test_in_development_an_unauthenticated_flower_may_not_leave_loopback():
    finished = run_wrapper(DEBUG="true", FLOWER_ADDRESS="0.0.0.0")  # noqa: S104 (the address it must refuse)

    assert finished.returncode == 2
    assert "FLOWER_ADDRESS=0.0.0.0 without FLOWER_BASIC_AUTH" in finished.stderr


@pytest.mark.parametrize("credentials", ["admin", "admin:", ":secret", "admin:secret,guest"])
def test_malformed_credentials_are_refused(credentials):
    finished = run_wrapper(DEBUG="false", FLOWER_BASIC_AUTH=credentials)

    assert finished.returncode == 2
    assert "FLOWER_BASIC_AUTH must be user:password" in finished.stderr
    assert credentials not in finished.stderr.replace("FLOWER_BASIC_AUTH must be user:password", "")


def test_the_command_line_cannot_move_flower_past_the_checks():
    finished = subprocess.run(
        [sys.executable, "-m", "config.flower", "--address=0.0.0.0"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 2 and "instead of --address=0.0.0.0" in finished.stderr


def test_with_credentials_flower_answers_401_to_strangers_and_200_to_the_operator():
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
    environment |= {
        "DEBUG": "false",
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "FLOWER_BASIC_AUTH": "operator:s3cret-flower",
        "FLOWER_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "config.flower"],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, timeout=60)
        anonymous = requests.get(f"http://127.0.0.1:{port}/api/workers", timeout=10)
        wrong = requests.get(f"http://127.0.0.1:{port}/", auth=("operator", "guess"), timeout=10)
        operator = requests.get(f"http://127.0.0.1:{port}/", auth=("operator", "s3cret-flower"), timeout=10)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)

    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert operator.status_code == 200 and "Flower" in operator.text
    assert "s3cret-flower" not in stderr


def test_compose_publishes_flower_on_loopback_only_and_restarts_every_long_running_service():
    services = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]

    assert services["flower"]["command"] == ["python", "-m", "config.flower"]
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    assert "FLOWER_BASIC_AUTH" not in services["flower"]["environment"]  # a secret: it comes from .env
    long_running = {name: service for name, service in services.items() if name != "migrate"}
    assert {name: service.get("restart") for name, service in long_running.items()} == dict.fromkeys(
        long_running, "unless-stopped"
    )
