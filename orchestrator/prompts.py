"""What the phone says, in the contact's language (Korean by default)."""

from __future__ import annotations

from dataclasses import dataclass

from config.text import clean_text


@dataclass(frozen=True)
class Prompts:
    menu: str
    acknowledged: str
    escalated: str
    nobody_left: str
    already_handled: str
    invalid_key: str
    goodbye_no_input: str

    def alert(self, text: str) -> str:
        return f"{text.strip()} {self.menu}"


KOREAN = Prompts(
    menu="확인하셨으면 1번, 다음 담당자에게 넘기려면 2번을 눌러주세요.",
    acknowledged="확인되었습니다. 장애 대응을 부탁드립니다. 감사합니다.",
    escalated="다음 담당자에게 넘기겠습니다.",
    nobody_left="더 연락할 담당자가 없습니다. 장애는 미확인 상태로 남습니다.",
    already_handled="이미 처리된 장애입니다. 감사합니다.",
    invalid_key="잘못 누르셨습니다. 다시 안내해 드리겠습니다.",
    goodbye_no_input="입력이 없어 통화를 종료합니다.",
)

ENGLISH = Prompts(
    menu="Press 1 to acknowledge, or 2 to pass this to the next person.",
    acknowledged="Acknowledged. Thank you for handling this incident.",
    escalated="Passing this to the next person.",
    nobody_left="There is nobody left to call. The incident stays unacknowledged.",
    already_handled="This incident has already been handled. Thank you.",
    invalid_key="That key does nothing. Here is the message again.",
    goodbye_no_input="No key was pressed. Goodbye.",
)


def prompts_for(language: str) -> Prompts:
    return KOREAN if language.lower().startswith("ko") else ENGLISH


def speech_text(text: str) -> str:
    """Alert text as both carriers must get it: one line, no escape codes, no control characters and
    no noncharacters (one of them made Twilio's TwiML invalid XML and the call an application error)."""
    return " ".join(clean_text(text).split())
