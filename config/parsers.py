"""A JSON parser that refuses bodies over the configured size instead of reading them whole.

DRF reads the raw stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not protect it.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from config.exceptions import RequestTooLarge


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"The request body is over {limit} bytes.")
        if not raw:
            raise ParseError("The body is empty; a JSON object was expected.")
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ParseError(f"The body is not UTF-8: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ParseError(f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from exc
