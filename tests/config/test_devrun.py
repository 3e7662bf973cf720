"""`make run` on other ports: WEB_PORT and FLOWER_PORT move the processes, the printed URLs and the
development PUBLIC_BASE_URL; the demo API key survives a restart (or the output says why not)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import APIKey
from accounts.services import revoke_api_key
from config.devrun import url_lines

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def procfile_command(name: str) -> str:
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} entry in the Procfile")


def rendered(command: str, **variables: str) -> str:
    """The command line as the shell honcho starts it with expands it."""
    environment = {key: value for key, value in os.environ.items() if key not in ("WEB_PORT", "FLOWER_PORT")}
    finished = subprocess.run(
        ["sh", "-c", f"printf '%s' \"{command}\""], env=environment | variables, capture_output=True, text=True
    )
    return finished.stdout


def test_the_printed_urls_follow_the_ports():
    assert url_lines(18000, 15555) == [
        "Admin:   http://127.0.0.1:18000/admin/",
        "API:     http://127.0.0.1:18000/api/docs/",
        "Flower:  http://127.0.0.1:15555/",
    ]


def test_devrun_prints_the_urls_for_the_ports_in_the_environment():
    environment = dict(os.environ, WEB_PORT="18001", FLOWER_PORT="15556")

    printed = subprocess.run(
        [sys.executable, "-m", "config.devrun", "urls"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
    ).stdout

    assert "http://127.0.0.1:18001/admin/" in printed
    assert "http://127.0.0.1:15556/" in printed


def test_the_procfile_binds_the_web_process_to_web_port_and_8000_by_default():
    web = procfile_command("web")

    assert "--bind 127.0.0.1:18002 " in rendered(web, WEB_PORT="18002")
    assert "--bind 127.0.0.1:8000 " in rendered(web)


def test_the_development_public_base_url_follows_web_port_unless_set():
    code = "import django; django.setup(); from django.conf import settings; print(settings.PUBLIC_BASE_URL)"
    environment = {key: value for key, value in os.environ.items() if key != "PUBLIC_BASE_URL"}
    environment |= {"DJANGO_SETTINGS_MODULE": "config.settings", "WEB_PORT": "18003"}

    def public_base_url(**variables: str) -> str:
        finished = subprocess.run(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment | variables, capture_output=True, text=True
        )
        assert finished.returncode == 0, finished.stderr
        return finished.stdout.strip()

    assert public_base_url() == "http://127.0.0.1:18003"
    assert public_base_url(PUBLIC_BASE_URL="https://oncall.example.com/") == "https://oncall.example.com"


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    settings.WEB_PORT, settings.FLOWER_PORT = 18004, 15557
    return settings


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_key(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("API key: ")).split()[2]


@pytest.mark.django_db
def test_make_run_keeps_the_demo_api_key_across_restarts(demo_settings):
    # given: a first start printed a demo key
    first = seed()
    key = printed_key(first)

    # when: make run starts again
    second = seed()

    # then: the same key, said to be the same, on the configured ports; only one demo key exists
    assert printed_key(second) == key
    assert f"API key: {key}  (the same as last time, kept in var/demo-api-key)" in second
    assert "curl -X POST http://127.0.0.1:18004/api/v1/alerts/generic" in second
    assert "Flower:  http://127.0.0.1:15557/" in second
    assert APIKey.objects.filter(name="demo (make run)", revoked_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_a_revoked_demo_key_is_replaced_and_the_output_says_so(demo_settings):
    key = printed_key(seed())
    revoke_api_key(APIKey.objects.get(name="demo (make run)"))

    output = seed()

    assert printed_key(output) != key
    assert "the previous demo key no longer works (This API key has been revoked.), so it was replaced" in output
