"""What the phone says, in the contact's language (Korean by default)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.text import clean_text

# An alert script that already ends by asking for 1 ("확인 후 1번을 눌러 승인해주세요.", "... press 1 to
# acknowledge."): the menu then offers only 2, instead of saying "press 1" a second time. Only an
# instruction counts ("1번을 눌러", "press 1"), never a mention ("1번 서버 다운"): a callee who is
# never told to press 1 cannot acknowledge.
_ASKS_FOR_ONE = re.compile(r"((?:1|일)\s*번\s*[을를]?\s*(?:눌|누르)|\bpress(?:ing)?\s+(?:1|one)\b)", re.IGNORECASE)
ENDING_CHARACTERS = 60  # "near the end": within the last sentence or so


def asks_for_one(text: str) -> bool:
    """Whether the text ends with its own press-1 instruction, in Korean or English."""
    return bool(_ASKS_FOR_ONE.search(text.strip()[-ENDING_CHARACTERS:]))


@dataclass(frozen=True)
class Prompts:
    preamble: str  # before an alert spoken from its summary (no tts_text): the callee knows what this is
    menu: str
    menu_after_own_instruction: str  # the alert already asked for 1: only the rest of the menu
    acknowledged: str
    escalated: str
    nobody_left: str
    already_handled: str
    invalid_key: str
    goodbye_no_input: str

    def opening(self, *, scripted: bool) -> str:
        """What comes before the alert: nothing for a written script, the preamble for a summary."""
        return "" if scripted else self.preamble

    def menu_for(self, text: str) -> str:
        return self.menu_after_own_instruction if asks_for_one(text) else self.menu

    def alert(self, text: str, *, scripted: bool = True) -> str:
        """The whole message: [preamble] alert menu."""
        text = text.strip()
        return " ".join(part for part in (self.opening(scripted=scripted), text, self.menu_for(text)) if part)


KOREAN = Prompts(
    preamble="장애 알림입니다.",
    menu_after_own_instruction="다음 담당자에게 넘기려면 2번을 눌러주세요.",
    menu="확인하셨으면 1번, 다음 담당자에게 넘기려면 2번을 눌러주세요.",
    acknowledged="확인되었습니다. 장애 대응을 부탁드립니다. 감사합니다.",
    escalated="다음 담당자에게 넘기겠습니다.",
    nobody_left="더 연락할 담당자가 없습니다. 장애는 미확인 상태로 남습니다.",
    already_handled="이미 처리된 장애입니다. 감사합니다.",
    invalid_key="잘못 누르셨습니다. 다시 안내해 드리겠습니다.",
    goodbye_no_input="입력이 없어 통화를 종료합니다.",
)

ENGLISH = Prompts(
    preamble="This is an incident alert.",
    menu_after_own_instruction="Press 2 to pass this to the next person.",
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
