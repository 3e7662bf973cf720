"""Amazon Connect's real-time metrics: beat's poll asks a local server speaking Connect's REST-JSON
protocol (moto does not implement these calls) through the real boto3 client, and /metrics shows what
that server reported, per queue. A throttled, failing or garbled answer is counted and logged, and the
scrape still works."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client

from config.redis import redis_client
from contactcenter.services import SNAPSHOT_KEY
from contactcenter.tasks import poll_connect
from tests.contactcenter.connect_server import ConnectServer
from tests.scrape import scrape, value

INSTANCE = "a1b2c3d4-0000-4000-8000-00000000cafe"
SUPPORT, BILLING = "11111111-aaaa-4000-8000-000000000001", "22222222-bbbb-4000-8000-000000000002"


@pytest.fixture
def connect(settings, monkeypatch):
    """Given a Connect instance with two queues and three agents, on loopback; credentials for SigV4."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTCONNECT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    redis_client().delete(SNAPSHOT_KEY)
    with ConnectServer(INSTANCE) as server:
        settings.CONNECT_INSTANCE_ID = INSTANCE
        settings.CONNECT_ENDPOINT_URL = server.url
        settings.CONNECT_QUEUE_IDS = []
        settings.CONNECT_MAX_ATTEMPTS = 1
        server.state.queues = {SUPPORT: "Support", BILLING: "Billing"}
        server.state.metrics = {
            SUPPORT: {
                "AGENTS_ONLINE": 5,
                "AGENTS_AVAILABLE": 2,
                "AGENTS_ON_CALL": 3,
                "CONTACTS_IN_QUEUE": 4,
                "OLDEST_CONTACT_AGE": 95,
            },
            BILLING: {
                "AGENTS_ONLINE": 1,
                "AGENTS_AVAILABLE": 0,
                "AGENTS_ON_CALL": 1,
                "CONTACTS_IN_QUEUE": 0,
                "OLDEST_CONTACT_AGE": 0,
            },
        }
        server.state.agents = [("u-1", "Available"), ("u-2", "Available"), ("u-3", "Lunch")]
        yield server.state
    redis_client().delete(SNAPSHOT_KEY)


def support(**extra):
    return {"queue": "Support", "queue_id": SUPPORT, **extra}


@pytest.mark.django_db
def test_the_scrape_shows_what_connect_reported_per_queue(connect, settings):
    # when: beat's task polls
    poll_connect.apply()

    # then: the scrape shows each queue's numbers with its name, and the agents by status
    samples = scrape(Client(), settings)
    assert value(samples, "aicc_connect_agents_online", **support()) == 5
    assert value(samples, "aicc_connect_agents_available", **support()) == 2
    assert value(samples, "aicc_connect_agents_on_call", **support()) == 3
    assert value(samples, "aicc_connect_contacts_in_queue", **support()) == 4
    assert value(samples, "aicc_connect_oldest_contact_age_seconds", **support()) == 95
    assert value(samples, "aicc_connect_agents_on_call", queue="Billing", queue_id=BILLING) == 1
    assert value(samples, "aicc_connect_agents_by_status", status="Available") == 2
    assert value(samples, "aicc_connect_agents_by_status", status="Lunch") == 1
    assert value(samples, "aicc_connect_snapshot_age_seconds") >= 0


@pytest.mark.django_db
def test_the_requests_are_connects_own_signed_and_shaped_as_its_api_wants(connect):
    poll_connect.apply()

    # the queues are listed, then the metrics asked for those queues, grouped by queue
    (listing,) = connect.requests("queues")
    (current,) = connect.requests("current")
    (userdata,) = connect.requests("userdata")
    assert (listing.method, listing.path) == ("GET", f"/queues-summary/{INSTANCE}")
    assert (current.method, current.path) == ("POST", f"/metrics/current/{INSTANCE}")
    assert (userdata.method, userdata.path) == ("POST", f"/metrics/userdata/{INSTANCE}")
    for seen in (listing, current, userdata):
        assert seen.authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDTESTCONNECT/")
        assert "/connect/aws4_request" in seen.authorization
    assert sorted(current.body["Filters"]["Queues"]) == sorted([SUPPORT, BILLING])
    assert current.body["Groupings"] == ["QUEUE"]
    assert [metric["Name"] for metric in current.body["CurrentMetrics"]] == [
        "AGENTS_ONLINE",
        "AGENTS_AVAILABLE",
        "AGENTS_ON_CALL",
        "CONTACTS_IN_QUEUE",
        "OLDEST_CONTACT_AGE",
    ]
    assert {"Name": "OLDEST_CONTACT_AGE", "Unit": "SECONDS"} in current.body["CurrentMetrics"]
    assert sorted(userdata.body["Filters"]["Queues"]) == sorted([SUPPORT, BILLING])


@pytest.mark.django_db
def test_with_queue_ids_set_only_those_are_asked_for_and_no_listing_is_needed(connect, settings):
    settings.CONNECT_QUEUE_IDS = [BILLING]

    poll_connect.apply()

    assert connect.requests("queues") == []
    assert connect.requests("current")[0].body["Filters"]["Queues"] == [BILLING]
    samples = scrape(Client(), settings)
    assert value(samples, "aicc_connect_agents_online", queue=BILLING, queue_id=BILLING) == 1


@pytest.mark.django_db
def test_a_throttled_poll_is_counted_retried_and_the_scrape_keeps_working(connect, settings, caplog):
    # given: a first good poll, then Connect throttles (botocore retries once, then gives up)
    poll_connect.apply()
    settings.CONNECT_MAX_ATTEMPTS = 2
    connect.fail["current"] = (429, "ThrottlingException")
    before = scrape(Client(), settings)

    # when: beat polls again
    result = poll_connect.apply()

    # then: the task did not fail, the throttling was counted and logged, and the last numbers are still served
    assert result.successful()
    assert len(connect.requests("current")) == 1 + 2
    after = scrape(Client(), settings)
    reason = {"reason": "ThrottlingException"}
    assert (
        value(after, "aicc_connect_poll_errors_total", **reason)
        - value(before, "aicc_connect_poll_errors_total", **reason)
        == 1
    )
    assert "amazon connect poll failed" in caplog.text
    assert value(after, "aicc_connect_contacts_in_queue", **support()) == 4
    assert ("system_cpu_usage_percent", frozenset()) in after


@pytest.mark.parametrize(
    ("failure", "reason"),
    [((500, "InternalServiceException"), "InternalServiceException"), ("garbage", "bad_response")],
)
@pytest.mark.django_db
def test_a_broken_answer_is_counted_by_reason_and_nothing_is_exported_from_it(connect, settings, failure, reason):
    connect.fail["current"] = failure
    before = scrape(Client(), settings)

    assert poll_connect.apply().successful()

    after = scrape(Client(), settings)
    counted = value(after, "aicc_connect_poll_errors_total", reason=reason)
    assert counted - value(before, "aicc_connect_poll_errors_total", reason=reason) == 1
    assert not any(name.startswith("aicc_connect_agents") for name, _ in after)  # no snapshot was ever stored


@pytest.mark.django_db
def test_when_only_the_agents_status_fails_the_queue_numbers_are_still_exported(connect, settings):
    connect.fail["userdata"] = (403, "AccessDeniedException")
    before = scrape(Client(), settings)

    poll_connect.apply()

    after = scrape(Client(), settings)
    reason = {"reason": "AccessDeniedException"}
    errors = value(after, "aicc_connect_poll_errors_total", **reason) - value(
        before, "aicc_connect_poll_errors_total", **reason
    )
    assert errors == 1
    assert value(after, "aicc_connect_agents_online", **support()) == 5
    assert not any(name == "aicc_connect_agents_by_status" for name, _ in after)


@pytest.mark.django_db
def test_an_unreachable_connect_is_counted_and_the_scrape_still_answers(connect, settings):
    settings.CONNECT_ENDPOINT_URL = "http://127.0.0.1:1"
    before = scrape(Client(), settings)

    assert poll_connect.apply().successful()

    after = scrape(Client(), settings)
    reason = {"reason": "unreachable"}
    assert (
        value(after, "aicc_connect_poll_errors_total", **reason)
        - value(before, "aicc_connect_poll_errors_total", **reason)
        == 1
    )


def test_beat_polls_only_when_an_instance_is_configured():
    # the test settings set no CONNECT_INSTANCE_ID: nothing is scheduled
    assert not django_settings.CONNECT_INSTANCE_ID
    assert "poll-amazon-connect" not in django_settings.CELERY_BEAT_SCHEDULE
