"""Production settings: with DEBUG off and nothing but the required variables set, Django's deployment
check has nothing to say (HTTPS redirect, HSTS, secure cookies...)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Variables the test run sets to speak plain http: a production deployment does not set them.
TEST_ONLY = ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")


def production_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in TEST_ONLY and key != "DEBUG"}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="oncall.example.com",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        **overrides,
    )
    return env


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_deployment_check_is_clean_with_production_defaults():
    # given: DEBUG off and only the variables production must set
    # when: Django's deployment check runs, failing on any warning
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

    # then: it finds nothing
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"SECURE_SSL_REDIRECT": True, "SESSION_COOKIE_SECURE": True, "SECURE_PROXY_SSL_HEADER": None}),
        (
            {"USE_X_FORWARDED_PROTO": "true", "SECURE_SSL_REDIRECT": "false"},
            {"SECURE_SSL_REDIRECT": False, "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"]},
        ),
    ],
)
def test_the_hardening_settings_come_from_the_environment(overrides, expected):
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name, None) for name in {sorted(expected)!r}}}))"
    )
    result = run_manage("shell", "-c", code, env=production_env(**overrides))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
