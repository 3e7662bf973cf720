"""Carrier webhook tokens stay out of the logs: our warnings, Django's request log and the web
server's access log all show /webhooks/<carrier>/<kind>/*** ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from config.logging import mask_webhook_path
from tests.embedded_services import free_port, wait_for_port

TOKEN = "att-4f2b9c1e7d-capability"
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def _everything_logged(caplog) -> str:
    return "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"/webhooks/twilio/status/{TOKEN}", "/webhooks/twilio/status/***"),
        (f"POST /webhooks/vonage/event/{TOKEN}?round=2 HTTP/1.1", "POST /webhooks/vonage/event/***?round=2 HTTP/1.1"),
        (
            f"https://oncall.example.com/webhooks/twilio/voice/{TOKEN}",
            "https://oncall.example.com/webhooks/twilio/voice/***",
        ),
        ("/api/v1/incidents/42", "/api/v1/incidents/42"),
    ],
)
def test_mask_webhook_path_hides_only_the_token(text, masked):
    assert mask_webhook_path(text) == masked


@pytest.mark.django_db
def test_a_forged_twilio_webhook_logs_no_token(client, settings, caplog):
    # given a configured Twilio account
    settings.TWILIO_AUTH_TOKEN = "twilio-auth-token-for-tests"

    # when someone posts to a callback URL without a valid signature
    response = client.post(f"/webhooks/twilio/status/{TOKEN}", {"CallStatus": "completed"})

    # then it is refused, and the warnings name the route but not the token
    assert response.status_code == 403
    logged = _everything_logged(caplog)
    assert "rejected unsigned or forged Twilio webhook" in logged
    assert "/webhooks/twilio/status/***" in logged
    assert TOKEN not in logged


@pytest.mark.django_db
def test_a_forged_vonage_webhook_logs_no_token(client, settings, caplog):
    settings.VONAGE_SIGNATURE_SECRET = "vonage-signature-secret-for-tests"

    response = client.post(
        f"/webhooks/vonage/event/{TOKEN}",
        data=b'{"status": "completed"}',
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer not-a-jwt",
    )

    assert response.status_code == 403
    logged = _everything_logged(caplog)
    assert "rejected an unsigned or forged Vonage webhook" in logged
    assert TOKEN not in logged


def test_the_web_servers_access_log_masks_the_token():
    # given the web server started as the Procfile starts it, serving the product
    port = free_port()
    command = [sys.executable, "-m", "config.web", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "1"]
    environment = {**os.environ, "LOG_LEVEL": "INFO"}
    server = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_port(port)
        # when a carrier callback comes in (unsigned: refused)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/twilio/status/{TOKEN}?round=1", b"")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 (http to loopback)
        assert refused.value.code == 403
    finally:
        server.terminate()
        access_log, error_log = server.communicate(timeout=20)

    # then its access line, JSON like every other line, shows the route with the token masked
    printed = (access_log + error_log).splitlines()
    lines = [json.loads(line) for line in printed if '"granian.access"' in line]
    assert len(lines) == 1
    assert set(lines[0]) == {"time", "level", "logger", "message"}
    assert datetime.fromisoformat(lines[0]["time"]).utcoffset() is not None  # the zone of every other line
    assert lines[0]["message"].startswith('127.0.0.1 "POST /webhooks/twilio/status/*** HTTP/1.1" 403 ')
    assert TOKEN not in access_log + error_log
