"""What the simulated person at the other end of a number does, and the rule that picks it."""

from __future__ import annotations

from enum import StrEnum


class Scenario(StrEnum):
    """One behaviour of the callee (or of the carrier's API) for a whole call."""

    PRESS_1 = "press_1"
    PRESS_2 = "press_2"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    SILENT = "silent"
    HANG_UP = "hang_up"
    API_ERROR = "api_error"
    API_TIMEOUT = "api_timeout"
    PRESS_9 = "press_9"


# The last digit of a number picks its scenario when none was set for it explicitly, so a demo or a
# benchmark can choose behaviour just by choosing numbers. 0 means "the simulator's default".
LAST_DIGIT_SCENARIOS: dict[str, Scenario] = {
    "1": Scenario.PRESS_1,
    "2": Scenario.PRESS_2,
    "3": Scenario.NO_ANSWER,
    "4": Scenario.BUSY,
    "5": Scenario.VOICEMAIL,
    "6": Scenario.SILENT,
    "7": Scenario.API_ERROR,
    "8": Scenario.API_TIMEOUT,
    "9": Scenario.HANG_UP,
}

SCENARIO_DESCRIPTIONS: dict[Scenario, str] = {
    Scenario.PRESS_1: "answers, listens, presses 1",
    Scenario.PRESS_2: "answers, presses 2",
    Scenario.NO_ANSWER: "rings out: no-answer",
    Scenario.BUSY: "busy",
    Scenario.VOICEMAIL: "a machine answers, nothing is pressed",
    Scenario.SILENT: "answers, listens, presses nothing",
    Scenario.HANG_UP: "answers and hangs up at once",
    Scenario.API_ERROR: "Calls.create answers 500, no call",
    Scenario.API_TIMEOUT: "Calls.create hangs, then answers 503, no call",
    Scenario.PRESS_9: "presses 9 (meaningless), then 1 when asked again",
}

# Digits pressed at the 1st, 2nd, ... <Gather> of a call; a Gather past the end of the plan hears nothing.
DIGIT_PLANS: dict[Scenario, tuple[str, ...]] = {
    Scenario.PRESS_1: ("1",),
    Scenario.PRESS_2: ("2",),
    Scenario.PRESS_9: ("9", "1"),
}

# Scenarios where the callee picks up, so the carrier fetches and plays our TwiML.
ANSWERING_SCENARIOS = frozenset(
    {Scenario.PRESS_1, Scenario.PRESS_2, Scenario.PRESS_9, Scenario.SILENT, Scenario.HANG_UP, Scenario.VOICEMAIL}
)


def scenario_by_last_digit(number: str, default: Scenario) -> Scenario:
    """The scenario the last digit of `number` names; `default` for 0 or a number not ending in a digit."""
    last = number.strip()[-1:]
    return LAST_DIGIT_SCENARIOS.get(last, default)


def describe_last_digit_rule(default: Scenario) -> str:
    """One line per digit, for the management command's banner."""
    lines = [
        f"  ...{digit}  {scenario.value:<12} {SCENARIO_DESCRIPTIONS[scenario]}"
        for digit, scenario in LAST_DIGIT_SCENARIOS.items()
    ]
    lines.append(f"  ...0  {default.value:<12} the default scenario: {SCENARIO_DESCRIPTIONS[default]}")
    return "\n".join(lines)
