"""The API's JSON parser: bounded in size, and lenient with JSON that is odd but understandable.

DRF reads the raw stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not protect it: the
body is read up to the limit and refused beyond it.

A page must never be dropped for its shape (Alertmanager does not retry a 4xx, and a 500 on every
retry is no better), so what PostgreSQL's jsonb or Python cannot hold is cleaned rather than
refused: NUL and lone surrogates are removed, NaN and Infinity (and floats beyond range) are kept
as strings, integers too long for Python's int conversion are kept as strings, and nesting deeper
than MAX_DEPTH is cut with a marker. Only text that is not JSON at all is a 400.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.exceptions import RequestTooLarge
from config.text import storable

MAX_DEPTH = 32
TRUNCATED = f"[truncated: nested deeper than {MAX_DEPTH} levels]"

# A JSON string (possibly unterminated), or one bracket: enough to follow the nesting.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"The request body is over {limit} bytes.")
        if not raw:
            raise ParseError("The body is empty; a JSON object was expected.")
        try:
            return loads_leniently(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ParseError(f"The body is not UTF-8: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from exc


def loads_leniently(text: str) -> Any:
    """json.loads that never fails on a value's shape, only on syntax (JSONDecodeError)."""
    value = json.loads(_cut_deep_nesting(text), parse_int=_int_or_text, parse_float=_float_or_text, parse_constant=str)
    if "\\u" not in text:
        # A NUL or a lone surrogate can only come from a \u escape (the decoder refuses control
        # characters in strings, and valid UTF-8 holds no surrogates): without one there is nothing
        # to clean, and walking every string of an alert cost a tenth of the fast lane's CPU.
        return value
    return _storable(value)


def _int_or_text(digits: str) -> int | str:
    try:
        return int(digits)
    except ValueError:  # over sys.get_int_max_str_digits() (4,300): Python refuses to convert it
        return digits


def _float_or_text(number: str) -> float | str:
    value = float(number)
    return value if math.isfinite(value) else number  # 1e999 is inf, which jsonb cannot store


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): _storable(item) for key, item in value.items()}
    return value


def _cut_deep_nesting(text: str) -> str:
    """Replaces every array or object nested deeper than MAX_DEPTH with the TRUNCATED marker string,
    so the decoder (which recurses) never goes deeper. Text that is not JSON stays not JSON."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return text
    pieces, depth, kept_until, cut_from = [], 0, 0, None
    for match in _STRING_OR_BRACKET.finditer(text):
        piece = match.group()
        if piece[0] == '"':
            continue
        if piece in "[{":
            depth += 1
            if depth == MAX_DEPTH + 1 and cut_from is None:
                cut_from = match.start()
        else:
            depth -= 1
            if depth == MAX_DEPTH and cut_from is not None:
                pieces += [text[kept_until:cut_from], json.dumps(TRUNCATED)]
                kept_until, cut_from = match.end(), None
    if cut_from is not None:  # never closed: keep the marker, the text stays invalid (a 400)
        pieces += [text[kept_until:cut_from], json.dumps(TRUNCATED)]
        return "".join(pieces)
    return "".join([*pieces, text[kept_until:]])
