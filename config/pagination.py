"""Paging parameters shared by every list endpoint.

PostgreSQL's OFFSET and LIMIT are bigints: a larger offset was a database error (a 500). The
largest accepted offset leaves room for the largest limit, so offset + limit still fits.
"""

from __future__ import annotations

from rest_framework import serializers

BIGINT_MAX = 2**63 - 1
MAX_LIMIT = 500
MAX_OFFSET = BIGINT_MAX - MAX_LIMIT


def limit_field(*, default: int, maximum: int) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=min(maximum, MAX_LIMIT), required=False, default=default)


def offset_field() -> serializers.IntegerField:
    return serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False, default=0)
