"""Incoming social messages as the contact center sees them: every message lands in its conversation's
chat log, a keyword from a VIP opens one incident that rings like any alert, and a conversation gone
quiet is closed and stored encrypted. Meta's webhooks bring the messages (meta_server.py signs them as
Meta does); the X provider calls the same service, integrations.social.record_incoming_message."""

from __future__ import annotations

import gzip
import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents.models import Incident
from integrations.social import record_incoming_message
from integrations.tasks import close_idle_social_chats
from orchestrator.models import CallAttempt
from recordings import services as recording_services
from recordings.models import ChatMessage, Recording, Status
from tests import factories
from tests.integrations.meta_server import MetaGraphServer, customer_message
from tests.integrations.test_meta import APP_SECRET, PAGE_ID, PAGE_TOKEN, post_webhook, social_integration
from tests.recordings.conftest import TEST_MASTER_KEYS
from tests.recordings.helpers import download

pytestmark = pytest.mark.django_db

VIP = "6209999999999999"
STRANGER = "6201111111111111"
VIP_RULES = [{"keywords": ["환불", "refund"], "senders": [VIP], "policy": "vip-care", "severity": "critical"}]


@pytest.fixture
def messenger_api():
    with MetaGraphServer(page_id=PAGE_ID, token=PAGE_TOKEN, app_secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def policies():
    """The default policy, and the VIP care team's (Kim first)."""
    default = factories.policy(factories.contact("Park", 1), name="default")
    vip_care = factories.policy(
        factories.contact("Kim", 1), factories.contact("Lee", 1), name="vip-care", is_default=False
    )
    return default, vip_care


@pytest.fixture
def recording_store(settings, tmp_path):
    settings.RECORDINGS_MASTER_KEYS = TEST_MASTER_KEYS
    settings.RECORDINGS_S3_BUCKET = ""
    settings.RECORDINGS_LOCAL_DIR = tmp_path / "recordings"


def message_from(client, server: MetaGraphServer, sender: str, text: str, mid: str):
    body, signature = server.signed(server.messenger_update(customer_message(sender, PAGE_ID, text, mid)))
    response = post_webhook(client, "fb_page", body, signature)
    assert response.status_code == 200, response.content
    return response


def test_a_keyword_from_a_vip_opens_one_incident_and_queues_its_first_call(api_client, messenger_api, policies):
    # given our Page, with a rule: a refund request from a VIP pages the VIP care team
    _, vip_care = policies
    social_integration(messenger_api, incident_rules=VIP_RULES)

    # when the VIP writes ten times about a refund
    for n in range(1, 11):
        message_from(api_client, messenger_api, VIP, f"환불 아직인가요? ({n}번째 문의)", f"m_vip_{n}")

    # then one incident was opened, with the VIP care policy, naming the channel, the sender and the text
    [incident] = Incident.objects.all()
    assert (incident.policy, incident.severity, incident.state) == (vip_care, "critical", "triggered")
    assert incident.summary == f"Messenger 메시지, 보낸 사람 {VIP}: 환불 아직인가요? (1번째 문의)"
    # and its first call is queued to Kim, as for any alert; the nine later messages joined it
    [attempt] = CallAttempt.objects.filter(incident=incident)
    assert (attempt.step, attempt.contact.name, attempt.status) == (1, "Kim", "queued")
    assert incident.alerts.count() == 10
    assert incident.alerts.order_by("pk").first().payload["recording_id"] == Recording.objects.get().pk
    # and the conversation's chat log holds all ten messages
    assert ChatMessage.objects.count() == 10


@pytest.mark.parametrize(
    ("sender", "text"),
    [(STRANGER, "환불해 주세요"), (VIP, "배송은 언제 오나요?")],
    ids=["keyword-from-someone-else", "vip-without-keyword"],
)
def test_other_messages_are_recorded_and_open_no_incident(api_client, messenger_api, policies, sender, text):
    social_integration(messenger_api, incident_rules=VIP_RULES)

    message_from(api_client, messenger_api, sender, text, "m_other")

    assert not Incident.objects.exists()
    assert list(ChatMessage.objects.values_list("text", flat=True)) == [text]


def test_an_x_message_from_a_listed_handle_opens_an_incident_through_the_shared_service(messenger_api, policies):
    # given a rule naming a VIP by handle, with no policy (the default one calls)
    default, _ = policies
    integration = social_integration(messenger_api, incident_rules=[{"keywords": ["장애"], "senders": ["@KimVIP"]}])
    message = {
        "channel": "x",
        "account_id": "1460000000000000000",
        "sender_id": "99887766",
        "sender_name": "@kimvip",
        "text": "앱 로그인 장애 있나요?",
        "external_id": "1760000000000000001",
        "sent_at": timezone.now(),
    }

    # when the X provider records the DM, and X delivers it again
    first = record_incoming_message(integration, **message)
    again = record_incoming_message(integration, **message)

    # then one line in the X conversation's log, and one incident at the default severity
    assert (first.recorded, first.incident_created) == (True, True)
    assert (again.recorded, again.incident_id) == (False, None)
    chat = Recording.objects.get(pk=first.recording_id)
    assert (chat.channel, chat.session_id) == ("x", "x:1460000000000000000:99887766")
    assert list(chat.messages.values_list("sender", "text")) == [("@kimvip", "앱 로그인 장애 있나요?")]
    incident = Incident.objects.get(pk=first.incident_id)
    assert (incident.policy, incident.severity) == (default, "high")
    assert incident.summary == "X 메시지, 보낸 사람 @kimvip (99887766): 앱 로그인 장애 있나요?"


def test_a_matching_message_is_still_recorded_when_nobody_could_be_called(api_client, messenger_api, caplog):
    # given a rule, and (since) no escalation policy at all
    social_integration(messenger_api, incident_rules=[{"keywords": ["환불"]}])
    caplog.set_level(logging.ERROR, logger="integrations.social")

    # when a matching message arrives
    message_from(api_client, messenger_api, STRANGER, "환불해 주세요", "m_no_policy")

    # then Meta is answered 200 (a retry could not help), the line is kept, and the failure is logged
    assert list(ChatMessage.objects.values_list("text", flat=True)) == ["환불해 주세요"]
    assert not Incident.objects.exists()
    assert "no incident could be opened" in caplog.text


def test_an_idle_conversation_is_closed_and_stored_and_a_late_redelivery_adds_nothing(
    api_client, system_client, messenger_api, recording_store, settings, django_capture_on_commit_callbacks
):
    # given a conversation of two messages, recorded (and committed: the redelivery memory is kept then)
    social_integration(messenger_api)
    settings.SOCIAL_CHAT_IDLE_SECONDS = 600
    update = messenger_api.messenger_update(
        customer_message(STRANGER, PAGE_ID, "카드 결제가 두 번 됐어요", "m_twice_1"),
        customer_message(STRANGER, PAGE_ID, "취소 부탁드립니다", "m_twice_2"),
    )
    body, signature = messenger_api.signed(update)
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(api_client, "fb_page", body, signature)
    [chat] = Recording.objects.all()

    # when the beat task runs while the conversation is fresh, nothing is closed
    assert close_idle_social_chats() == 0
    # and once nobody wrote for longer than SOCIAL_CHAT_IDLE_SECONDS, the log is closed
    ChatMessage.objects.filter(recording=chat).update(received_at=timezone.now() - timedelta(minutes=11))
    assert close_idle_social_chats() == 1
    chat.refresh_from_db()
    assert chat.status == Status.PROCESSING

    # then the worker stores it encrypted, and its lines leave the database
    recording_services.process(chat.pk)
    chat.refresh_from_db()
    assert chat.status == Status.STORED
    assert not ChatMessage.objects.exists()
    _, stored = download(system_client, chat.pk)
    log = json.loads(gzip.decompress(stored))
    assert [line["text"] for line in log["messages"]] == ["카드 결제가 두 번 됐어요", "취소 부탁드립니다"]
    assert (log["channel"], log["customer_id"]) == ("messenger", STRANGER)

    # and when Meta delivers the old update once more, no new conversation is opened
    again = post_webhook(api_client, "fb_page", body, signature)
    assert again.status_code == 200
    assert Recording.objects.count() == 1 and not ChatMessage.objects.exists()
