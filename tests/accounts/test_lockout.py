"""Lockout is by account: an address trying many made-up usernames cannot lock a real person out, and
the client's address is read from the proxy header only when proxies are configured."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from rest_framework.test import APIClient

from accounts.models import LoginSession, Role
from tests.accounts.helpers import login, person

pytestmark = pytest.mark.django_db

SHARED_PROXY_ADDRESS = "10.20.30.40"


def test_failures_with_random_usernames_from_one_address_do_not_lock_the_admin_out(settings):
    # given: everyone comes through one proxy address, the admin among them
    settings.MFA_REQUIRED_ROLES = []
    person("boss", Role.ADMIN)
    behind_the_proxy = APIClient(REMOTE_ADDR=SHARED_PROXY_ADDRESS)

    # when: someone there tries three times the failure limit of made-up usernames
    for attempt in range(settings.AXES_FAILURE_LIMIT * 3):
        refused = login(behind_the_proxy, f"nobody-{attempt}", password="wrong-password-1")
        assert refused.status_code == 401

    # then: the admin, from that same address, still signs in
    assert login(APIClient(REMOTE_ADDR=SHARED_PROXY_ADDRESS), "boss").status_code == 200


def test_an_account_is_locked_whatever_address_the_failures_come_from(settings):
    person("kim")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        login(APIClient(REMOTE_ADDR=f"10.0.0.{attempt + 1}"), "kim", password="wrong-password-1")

    locked = login(APIClient(REMOTE_ADDR="10.0.9.9"), "kim")

    assert locked.status_code == 429
    assert "this account is locked" in locked.json()["error"]["message"]


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    person("kim")
    client = APIClient(REMOTE_ADDR="10.1.1.1")

    assert login(client, "kim", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 200
    login(client, "kim", password="wrong-password-1", HTTP_X_FORWARDED_FOR="203.0.113.7")

    assert LoginSession.objects.get().ip == "10.1.1.1"
    assert AccessAttempt.objects.get(username="kim").ip_address == "10.1.1.1"


def test_behind_a_trusted_proxy_the_client_address_comes_from_the_header(settings):
    # given: one proxy of ours appends the address it saw; the client wrote a spoofed entry before it
    settings.TRUSTED_PROXY_COUNT = 1
    person("kim")
    client = APIClient(REMOTE_ADDR="10.1.1.1")
    forwarded = "198.51.100.66, 203.0.113.7"

    assert login(client, "kim", HTTP_X_FORWARDED_FOR=forwarded).status_code == 200
    login(client, "kim", password="wrong-password-1", HTTP_X_FORWARDED_FOR=forwarded)

    # then: the address our proxy saw is the client's, not the spoofed one
    assert LoginSession.objects.get().ip == "203.0.113.7"
    assert AccessAttempt.objects.get(username="kim").ip_address == "203.0.113.7"
