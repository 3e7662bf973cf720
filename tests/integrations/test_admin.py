"""What an admin sees and can do with integrations and their messages."""

from __future__ import annotations

import pytest

from integrations.models import Integration, MessageStatus
from integrations.services import deliver, notify
from tests.integrations.conftest import EXHAUSTED_PAYLOAD, build_integration

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed_message(receiver, make_integration):
    receiver.plan((404, {}, b"no such hook"))
    make_integration(target=receiver.url)
    [message] = notify("incident.exhausted", EXHAUSTED_PAYLOAD, dedup_key="incident:42:exhausted")
    return deliver(message.pk)


def test_an_admin_adds_an_integration(admin_client):
    response = admin_client.post(
        "/admin/integrations/integration/add/",
        {
            "integration_id": "ops-slack",
            "name": "ops-slack",
            "type": "notification",
            "provider": "slack_webhook",
            "auth_type": "none",
            "options": "{}",
            "endpoint_url": "https://hooks.slack.com/services/T0/B0/XYZ",
            "events": "incident.exhausted",
            "active": "on",
            "max_attempts": "6",
        },
    )

    assert response.status_code == 302
    integration = Integration.objects.get(name="ops-slack")
    assert (integration.provider, integration.events, integration.active) == (
        "slack_webhook",
        ["incident.exhausted"],
        True,
    )


def test_an_integration_saved_with_no_events_takes_every_event(admin_client):
    response = admin_client.post(
        "/admin/integrations/integration/add/",
        {
            "integration_id": "everything",
            "name": "everything",
            "type": "webhook",
            "provider": "webhook",
            "auth_type": "none",
            "options": "{}",
            "endpoint_url": "https://a.example.com",
            "events": "",
            "max_attempts": "6",
        },
    )

    assert response.status_code == 302
    integration = Integration.objects.get(name="everything")
    assert integration.events == []
    assert integration.subscribes_to("drill.completed")


def test_an_admin_cannot_save_an_email_integration_without_addresses(admin_client):
    response = admin_client.post(
        "/admin/integrations/integration/add/",
        {
            "integration_id": "ops-email",
            "name": "ops-email",
            "type": "notification",
            "provider": "smtp",
            "auth_type": "none",
            "options": '{"to": ["ops"]}',
            "events": "",
            "max_attempts": "6",
        },
    )

    assert response.status_code == 200
    assert "Not an email address: ops" in response.content.decode()
    assert not Integration.objects.exists()


def test_the_message_list_shows_status_and_the_last_error(admin_client, failed_message):
    response = admin_client.get("/admin/integrations/outboundmessage/", {"status__exact": "failed"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "incident.exhausted" in page
    assert "Permanent failure: HTTP 404 Not Found: no such hook" in page


def test_a_message_page_is_read_only_and_lists_its_attempts(admin_client, failed_message):
    response = admin_client.get(f"/admin/integrations/outboundmessage/{failed_message.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "Delivery attempts" in page
    assert "no such hook" in page
    assert 'name="_save"' not in page


def test_an_admin_retries_a_failed_message(admin_client, failed_message, receiver, fast_retries):
    # given a message that failed because the hook was missing, and a receiver fixed since
    # when the admin retries it
    response = admin_client.post(
        "/admin/integrations/outboundmessage/",
        {"action": "retry_failed", "_selected_action": [failed_message.pk]},
        follow=True,
    )

    # then it is pending again with a fresh round of attempts, and the next delivery succeeds
    assert "Queued 1 failed message(s) for another round of attempts." in response.content.decode()
    failed_message.refresh_from_db()
    assert (failed_message.status, failed_message.attempts) == (MessageStatus.PENDING, 0)
    message = deliver(failed_message.pk)
    assert message.status == MessageStatus.DELIVERED
    assert list(message.delivery_attempts.values_list("number", "ok")) == [(1, False), (2, True)]


def test_events_are_ticked_from_a_list_and_none_ticked_is_every_event(admin_client):
    # given the add form
    page = admin_client.get("/admin/integrations/integration/add/").content.decode()

    # then each known event is a checkbox, none ticked by default, and the help says what that means
    assert 'type="checkbox" name="events" value="incident.exhausted"' in page
    assert 'name="events" value="incident.exhausted" checked' not in page
    assert "None ticked (the default): every event" in page


def test_an_event_name_outside_the_list_stays_ticked_on_the_form(admin_client):
    integration = build_integration("future", target="https://a.example.com", events=["billing.paid"])

    page = admin_client.get(f"/admin/integrations/integration/{integration.pk}/change/").content.decode()

    assert 'value="billing.paid"' in page and "checked" in page.split('value="billing.paid"')[1][:40]
