"""Plain data the simulator's parts exchange: call records and HTTP replies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.scenarios import Scenario


@dataclass
class SimulatedCall:
    """What tests and benchmarks assert on: the request we received and everything the carrier did.

    `params` holds the form fields of Calls.create: a field sent once maps to its string, a repeated
    field (StatusCallbackEvent) to the list of its values. `says` keeps the text of every <Say> with its
    language and voice, since `events` only carries the text.

    A Vonage call (`carrier` "vonage") has the call uuid as `sid`, the scalar fields of POST /v1/calls
    as strings in `params` (event_url and answer_url unwrapped from their one-element lists, an inline
    NCCO as JSON text), and `says` entries with the talk's language and style.
    """

    sid: str | None
    to: str
    from_: str
    scenario: Scenario
    requested_at: float
    params: dict[str, str | list[str]]
    api_status: int
    events: list[str] = field(default_factory=list)
    digits: str = ""
    finished: bool = False
    callback_responses: list[tuple[str, int]] = field(default_factory=list)
    says: list[dict[str, str]] = field(default_factory=list)
    carrier: str = "twilio"

    def as_json(self) -> dict[str, Any]:
        """The shape served by GET /_simulator/calls (lists copied: a call thread may still append)."""
        return {
            "sid": self.sid,
            "to": self.to,
            "from": self.from_,
            "scenario": self.scenario.value,
            "requested_at": self.requested_at,
            # The URL whose last segment names our attempt: Twilio's voice Url, Vonage's event_url.
            "url": self.params.get("event_url" if self.carrier == "vonage" else "Url", ""),
            "api_status": self.api_status,
            "events": list(self.events),
            "digits": self.digits,
            "finished": self.finished,
        }


@dataclass
class ApiReply:
    """An HTTP answer from a protocol module; `after_reply` runs once it was written (or the client left).

    A `bytes` payload is sent as it is, with `content_type` (a recording's audio); anything else is JSON.
    """

    status: int
    payload: Any
    after_reply: Callable[[], None] | None = None
    content_type: str = "application/octet-stream"
