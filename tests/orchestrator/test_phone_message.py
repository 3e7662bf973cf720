"""What the callee hears, on both carriers: an alert that already asks for 1 is not followed by a
second "press 1"; an alert with no script of its own is introduced before its summary is read."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twilio.request_validator import RequestValidator

from incidents.models import Language
from incidents.services import open_incident
from orchestrator.models import CallAttempt
from orchestrator.prompts import asks_for_one
from orchestrator.selectors import call_script
from orchestrator.voice.vonage import message_ncco
from tests import factories

pytestmark = pytest.mark.django_db

AUTH_TOKEN = "phone-message-token"
BASE = "https://oncall.example.com"
# The seed's own example (../shared/seeds/000_…): its tts_text ends with the press-1 instruction.
SEED_TTS = "긴급 알림입니다. 서버 A에서 CPU 사용량이 95퍼센트입니다. 확인 후 1번을 눌러 승인해주세요."


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = BASE


def attempt_for(language: str, *, summary: str, tts_text: str = "") -> CallAttempt:
    factories.policy(factories.contact("Kim", language=language), message_repeats=2)
    incident = open_incident(summary=summary, tts_text=tts_text).incident
    return CallAttempt.objects.get(incident=incident)


def twilio_heard(client, attempt: CallAttempt) -> str:
    """Everything Twilio is told to say inside the gather when it fetches the call's TwiML."""
    path = f"/webhooks/twilio/voice/{attempt.token}"
    params = {"CallSid": "CA" + "0" * 32, "CallStatus": "in-progress"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{BASE}{path}", params)
    response = client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    gather = ET.fromstring(response.content).find("Gather")  # noqa: S314 (our own TwiML)
    return " ".join(say.text or "" for say in gather.iter("Say"))


def vonage_heard(attempt: CallAttempt) -> str:
    ncco = message_ncco(attempt.token, call_script(attempt.token), round_number=1)
    return ncco[0]["text"]


CARRIERS = ["twilio", "vonage"]


def heard(carrier: str, client, attempt: CallAttempt) -> str:
    return twilio_heard(client, attempt) if carrier == "twilio" else vonage_heard(attempt)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_the_seed_alert_that_asks_for_1_is_not_followed_by_a_second_press_1(client, carrier):
    # given: the seed's alert, whose own text ends "확인 후 1번을 눌러 승인해주세요."
    attempt = attempt_for(Language.KOREAN, summary="서버 A CPU 95%", tts_text=SEED_TTS)

    # when: the carrier asks what to say
    spoken = heard(carrier, client, attempt)

    # then: the alert as written, then only the rest of the menu (2 passes it on)
    assert spoken == f"{SEED_TTS} 다음 담당자에게 넘기려면 2번을 눌러주세요."
    assert spoken.count("1번") == 1


@pytest.mark.parametrize("carrier", CARRIERS)
def test_an_english_alert_that_says_press_1_is_not_followed_by_a_second_one(client, carrier):
    text = "Database primary is down. Press 1 to acknowledge."
    attempt = attempt_for(Language.ENGLISH, summary="db down", tts_text=text)

    spoken = heard(carrier, client, attempt)

    assert spoken == f"{text} Press 2 to pass this to the next person."


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            Language.KOREAN,
            "장애 알림입니다. 디스크 90% 사용 확인하셨으면 1번, 다음 담당자에게 넘기려면 2번을 눌러주세요.",
        ),
        (
            Language.ENGLISH,
            "This is an incident alert. 디스크 90% 사용 Press 1 to acknowledge, or 2 to pass this to the next person.",
        ),
    ],
)
def test_an_alert_with_no_script_gets_a_preamble_before_its_summary(client, carrier, language, expected):
    # given: an alert with a summary only (no tts_text)
    attempt = attempt_for(language, summary="디스크 90% 사용")

    # then: the callee first hears what this call is, then the summary and the whole menu
    assert heard(carrier, client, attempt) == expected


@pytest.mark.parametrize("carrier", CARRIERS)
def test_a_script_that_only_mentions_1_still_gets_the_whole_menu(client, carrier):
    # "1번 서버" names a server; it tells nobody to press anything
    attempt = attempt_for(Language.KOREAN, summary="x", tts_text="긴급 알림입니다. 1번 서버가 다운되었습니다.")

    spoken = heard(carrier, client, attempt)

    assert (
        spoken
        == "긴급 알림입니다. 1번 서버가 다운되었습니다. 확인하셨으면 1번, 다음 담당자에게 넘기려면 2번을 눌러주세요."
    )


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        (SEED_TTS, True),
        ("확인 후 1 번 누르세요", True),
        ("승인하려면 일번을 눌러주세요.", True),
        ("Disk full on web-1. Press one to acknowledge", True),
        ("press 1 for help. " + "x" * 80, False),  # an instruction far from the end is not the ending
        ("1번 서버 다운", False),
        ("Press 10 times", False),
    ],
)
def test_what_counts_as_an_ending_press_1_instruction(text, asks):
    assert asks_for_one(text) is asks
