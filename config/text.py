"""Text from outside (alerts, payloads) made safe to store and to speak.

PostgreSQL refuses NUL in text and jsonb, and no database can encode a lone surrogate (JSON's
"\\ud800"). XML (the TwiML a carrier reads) allows no C0 control but tab and newlines, no surrogate
and no U+FFFE/U+FFFF: one such character in an alert made the whole call an "application error".
Terminal output pasted into an alert brings ANSI colour codes (ESC [ 31 m), which speech would spell.
"""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI (colours, cursor moves), OSC (titles, links) up to BEL or ST, the
# DCS/SOS/PM/APC strings, and the short two- or three-character escapes; also CSI as one C1 character.
_ANSI_ESCAPES = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]
    | \x9b[0-?]*[ -/]*[@-~]
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?
    | \x1b[ -/]*[0-~]?
    """,
    re.VERBOSE,
)
# Control characters other than tab, newline and carriage return (C0, DEL, C1).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Lone surrogates and Unicode noncharacters (U+FDD0..U+FDEF and the last two of every plane).
_NONCHARACTERS = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17))
    + "]"
)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SPACES = re.compile(r"[ \t]{2,}")


def storable(text: str) -> str:
    """The text without what no database can keep (NUL, lone surrogates); nothing else changes."""
    return _UNSTORABLE.sub("", text)


def clean_text(text: str) -> str:
    """Human text (a summary, what the phone says): no escape sequences, no control characters
    (each becomes a space), no noncharacters; line breaks kept, runs of spaces made one."""
    text = _ANSI_ESCAPES.sub("", text)
    text = _CONTROLS.sub(" ", text.replace("\x00", ""))
    text = _NONCHARACTERS.sub("", text)
    return _SPACES.sub(" ", text).strip()
