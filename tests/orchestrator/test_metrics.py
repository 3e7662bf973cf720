"""Carrier breakers in a scrape: 1 while a carrier is being skipped, 0 once it took a call again."""

from __future__ import annotations

import pytest
from django.test import Client

from orchestrator.voice import breaker
from tests.scrape import scrape, value

pytestmark = pytest.mark.django_db


def test_an_open_breaker_shows_in_the_scrape_until_the_carrier_succeeds(settings):
    web = Client()
    settings.VOICE_PROVIDER, settings.VOICE_FAILOVER_PROVIDER = "twilio", "vonage"
    breaker.record_success("twilio")
    try:
        # given twilio failing until its breaker opens
        for _ in range(settings.BREAKER_FAILURE_THRESHOLD):
            breaker.record_failure("twilio")
        opened = scrape(web, settings)
        # when it takes a call again
        breaker.record_success("twilio")
        closed = scrape(web, settings)
    finally:
        breaker.record_success("twilio")

    assert value(opened, "aicc_carrier_breaker_open", carrier="twilio") == 1
    assert ("aicc_carrier_breaker_open", frozenset({("carrier", "vonage")})) in opened
    assert value(opened, "aicc_carrier_breaker_open", carrier="vonage") == 0
    assert value(closed, "aicc_carrier_breaker_open", carrier="twilio") == 0
