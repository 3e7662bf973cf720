"""Rate limits: the request over the limit gets 429, a Retry-After header and our JSON error body.

Each limit is set low here (the defaults are in settings); every test starts with no counters.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests import factories
from tests.accounts.helpers import login, person

pytestmark = pytest.mark.django_db


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert "throttled" in error["message"].lower() and "seconds" in error["message"]


def test_the_login_over_the_per_address_limit_gets_429_with_retry_after(settings):
    # given: three sign-ins a minute per address
    settings.LOGIN_RATE_PER_ADDRESS = "3/min"
    person("kim")
    one_address = APIClient(REMOTE_ADDR="10.7.7.7")

    # when: one address tries three accounts, then a fourth
    answers = [login(one_address, f"guess-{n}", password="wrong-password-1").status_code for n in range(3)]
    fourth = login(one_address, "kim")

    # then: the first three are answered (wrong password), the fourth is refused before any check
    assert answers == [401, 401, 401]
    assert_throttled(fourth)
    # and another address is not affected
    assert login(APIClient(REMOTE_ADDR="10.7.7.8"), "kim").status_code == 200


def test_the_login_over_the_per_username_limit_gets_429_from_any_address(settings):
    settings.LOGIN_RATE_PER_USERNAME = "2/min"
    person("kim")

    first = login(APIClient(REMOTE_ADDR="10.8.0.1"), "kim", password="wrong-password-1")
    second = login(APIClient(REMOTE_ADDR="10.8.0.2"), "KIM", password="wrong-password-1")
    third = login(APIClient(REMOTE_ADDR="10.8.0.3"), "kim")

    assert (first.status_code, second.status_code) == (401, 401)
    assert_throttled(third)


def test_refreshing_over_the_per_account_limit_gets_429(settings):
    settings.REFRESH_RATE_PER_USER = "2/min"
    person("kim")
    refresh_token = login(APIClient(), "kim").json()["refresh_token"]
    client = APIClient()

    for _ in range(2):
        rotated = client.post("/api/v1/auth/refresh", {"refresh_token": refresh_token}, format="json")
        assert rotated.status_code == 200
        refresh_token = rotated.json()["refresh_token"]
    third = client.post("/api/v1/auth/refresh", {"refresh_token": refresh_token}, format="json")

    assert_throttled(third)


def test_refreshing_over_the_per_address_limit_gets_429(settings):
    settings.REFRESH_RATE_PER_ADDRESS = "2/min"
    client = APIClient(REMOTE_ADDR="10.9.0.1")

    made_up = [
        client.post("/api/v1/auth/refresh", {"refresh_token": f"not-a-token-{n}"}, format="json") for n in range(3)
    ]

    assert [answer.status_code for answer in made_up[:2]] == [401, 401]
    assert_throttled(made_up[2])


def test_alerts_over_the_per_key_limit_get_429_and_other_keys_still_post(settings, make_api_key):
    # given: two monitoring systems, each with its own key, and a limit of two alerts a minute per key
    settings.ALERT_RATE_PER_KEY = "2/min"
    factories.policy(factories.contact("Kim"))
    noisy, quiet = APIClient(), APIClient()
    noisy.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('alerts:write', name='noisy')}")
    quiet.credentials(HTTP_AUTHORIZATION=f"Api-Key {make_api_key('alerts:write', name='quiet')}")

    # when: the noisy one posts three alerts
    posted = [
        noisy.post("/api/v1/alerts/generic", {"summary": f"flap {n}", "dedup_key": f"flap-{n}"}, format="json")
        for n in range(3)
    ]

    # then: the third is refused; the quiet system's alert still opens an incident
    assert [answer.status_code for answer in posted[:2]] == [201, 201]
    assert_throttled(posted[2])
    assert quiet.post("/api/v1/alerts/generic", {"summary": "disk full"}, format="json").status_code == 201


def test_a_second_drill_within_the_window_gets_429(settings, system_client):
    # given: one drill an hour per caller (drills ring real phones)
    settings.DRILL_RATE = "1/hour"
    policy = factories.policy(factories.contact("Kim"), name="db-oncall")

    first = system_client.post(f"/api/v1/escalation-policies/{policy.pk}/drill")
    second = system_client.post(f"/api/v1/escalation-policies/{policy.pk}/drill")

    assert first.status_code == 202
    assert_throttled(second)
    assert int(second["Retry-After"]) > 60  # an hour's window: come back much later


def test_with_the_cache_unreachable_sign_in_still_works(settings):
    # given: the cache that holds the counters is down (nothing listens on port 1)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    settings.LOGIN_RATE_PER_ADDRESS = "1/min"
    person("kim")

    # then: the limit is skipped rather than failing the sign-in
    assert [login(APIClient(), "kim").status_code for _ in range(2)] == [200, 200]
